// Table tests of the control loop's pure decisions: rates and windows, domain guardrails, warm-up
// advance/hold/step-back and idle loss. One named row per case; the clock is an argument.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyCounts, type Counts } from '../../relay/stats/contract.ts';
import { ratesOf, windowCounts, recentEligible, percent, HOUR_MS, type HourBucket } from './rates.ts';
import { decideDomain, DEFAULT_HEALTH, type DomainGuard } from './guardrails.ts';
import { decideStageDay, decideIdle, DEFAULT_WARMUP_LIMITS } from './warmup-decide.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 30); // 12:30 UTC
const c = (p: Partial<Counts>): Counts => ({ ...emptyCounts(), ...p });
const bucket = (hoursAgo: number, p: Partial<Counts>, extra: Partial<HourBucket> = {}): HourBucket => ({
  hour: Math.floor(T0 / HOUR_MS) * HOUR_MS - hoursAgo * HOUR_MS, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...c(p), ...extra,
});

test('rates: bounce over final outcomes, deferral over attempts, complaint over delivered, throttle over attempts', () => {
  const rows: [string, Partial<Counts>, Partial<Record<'bounceRate' | 'deferralRate' | 'complaintRate' | 'throttleRate', number | undefined>>][] = [
    ['nothing sent', {}, { bounceRate: undefined, deferralRate: undefined, complaintRate: undefined }],
    ['12 hard of 100', { attempted: 100, delivered: 88, bouncedHard: 12 }, { bounceRate: 0.12, deferralRate: 0 }],
    ['soft and policy bounces are final but not "hard"', { attempted: 100, delivered: 90, bouncedSoft: 5, bouncedPolicy: 5 }, { bounceRate: 0, throttleRate: 0.05 }],
    ['deferrals do not dilute the bounce rate', { attempted: 200, delivered: 90, bouncedHard: 10, deferred: 100 }, { bounceRate: 0.1, deferralRate: 0.5 }],
    ['3 complaints of 1,000 delivered', { attempted: 1000, delivered: 1000, complained: 3 }, { complaintRate: 0.003 }],
    ['rate-limited and policy deferrals are throttling', { attempted: 100, delivered: 70, deferred: 30, deferredRateLimited: 10, deferredPolicy: 20 }, { throttleRate: 0.3 }],
  ];
  for (const [name, counts, want] of rows) {
    const r = ratesOf(c(counts));
    for (const [k, v] of Object.entries(want)) assert.equal(r[k as keyof typeof want], v, `${name}: ${k}`);
  }
});

test('windows: hour buckets overlapping the window, never before a resume', () => {
  const buckets = [bucket(0, { attempted: 1 }), bucket(1, { attempted: 10 }), bucket(2, { attempted: 100 }), bucket(24, { attempted: 1000 }), bucket(25, { attempted: 10000 })];
  const all = () => true;
  const rows: [string, number, number, number][] = [
    ['1 h: current and previous hour', HOUR_MS, -Infinity, 11],
    ['24 h: 24.5 h of buckets back to 12:00 yesterday', 24 * HOUR_MS, -Infinity, 1111],
    ['24 h since a resume 90 minutes ago', 24 * HOUR_MS, T0 - 1.5 * HOUR_MS, 11],
  ];
  for (const [name, w, since, want] of rows) assert.equal(windowCounts(buckets, all, T0, w, since).attempted, want, name);
  assert.equal(windowCounts(buckets, (b) => b.provider === 'outlook', T0, HOUR_MS).attempted, 0, 'the filter applies');
});

test('recent eligible volume: 24 h, widened into the past until the minimum volume; below it no judgement', () => {
  const rows: [string, HourBucket[], number, number | undefined, number, boolean][] = [
    ['enough in 24 h: the 24 h only', [bucket(0, { delivered: 600 }), bucket(30, { delivered: 900 })], 500, undefined, 600, true],
    ['too little in 24 h: widened to 30 h ago', [bucket(0, { delivered: 100 }), bucket(30, { delivered: 900 }), bucket(40, { delivered: 900 })], 500, undefined, 1000, true],
    ['too little anywhere', [bucket(0, { delivered: 100 }), bucket(30, { delivered: 100 })], 500, undefined, 200, false],
    ['not before the resume (re-armed)', [bucket(0, { delivered: 100 }), bucket(30, { delivered: 900 })], 500, T0 - 2 * HOUR_MS, 100, false],
  ];
  for (const [name, buckets, min, since, want, judged] of rows) {
    const e = recentEligible(buckets, () => true, T0, { windowMs: 24 * HOUR_MS, minimumVolume: min, ...(since !== undefined ? { since } : {}) });
    assert.equal(e.counts.delivered, want, name);
    assert.equal(e.judged, judged, `${name}: judged`);
  }
});

test('domain guardrails: review, pause, recover, resume by annotation or cool-down', () => {
  const paused: DomainGuard = { state: 'Paused', since: T0 - 2 * HOUR_MS, reason: 'PausedHighBounces', message: '', resumeToken: 'old' };
  const review: DomainGuard = { state: 'Review', since: T0 - HOUR_MS, reason: 'ReviewHighBounces', message: '' };
  const judged = (p: Partial<Counts>) => ({ counts: c(p), judged: true });
  const rows: { name: string; eligible: { counts: Counts; judged: boolean }; previous?: DomainGuard; annotation?: string; auto?: number; state: string; kind: string; reason: string; message?: RegExp }[] = [
    { name: 'healthy', eligible: judged({ attempted: 1000, delivered: 990, bouncedHard: 10 }), state: 'Healthy', kind: 'none', reason: 'Healthy' },
    { name: '5 % bounces → review', eligible: judged({ attempted: 1000, delivered: 950, bouncedHard: 50 }), state: 'Review', kind: 'review', reason: 'ReviewHighBounces', message: /5\.0 % hard bounces over 1,000 messages \(review at 5 %, pause at 10 %\)/ },
    { name: '12 % bounces → pause', eligible: judged({ attempted: 1240, delivered: 1091, bouncedHard: 149 }), state: 'Paused', kind: 'pause', reason: 'PausedHighBounces', message: /bulk mail paused: 12\.0 % hard bounces over 1,240 messages \(pause at 10 %\); resume: kubectl annotate maildomain <name> mailfleet\.io\/resume=/ },
    { name: '0.3 % complaints → pause (Gmail line)', eligible: judged({ attempted: 1000, delivered: 1000, complained: 3 }), state: 'Paused', kind: 'pause', reason: 'PausedHighComplaints', message: /0\.30 % complaints over 1,000 delivered/ },
    { name: '0.1 % complaints → review', eligible: judged({ attempted: 1000, delivered: 1000, complained: 1 }), state: 'Review', kind: 'review', reason: 'ReviewHighComplaints' },
    { name: 'too little volume: nothing changes', eligible: { counts: c({ attempted: 10, delivered: 5, bouncedHard: 5 }), judged: false }, state: 'Healthy', kind: 'none', reason: 'Healthy' },
    { name: 'review → healthy again', eligible: judged({ attempted: 1000, delivered: 1000 }), previous: review, state: 'Healthy', kind: 'recover', reason: 'Healthy' },
    { name: 'paused stays paused however good the rates', eligible: judged({ attempted: 1000, delivered: 1000 }), previous: paused, annotation: 'old', state: 'Paused', kind: 'none', reason: 'PausedHighBounces' },
    { name: 'a new annotation value resumes', eligible: judged({}), previous: paused, annotation: '1765000000', state: 'Healthy', kind: 'resume', reason: 'ResumedByAnnotation', message: /mailfleet\.io\/resume=1765000000/ },
    { name: 'cool-down not over', eligible: judged({}), previous: paused, auto: 3, state: 'Paused', kind: 'none', reason: 'PausedHighBounces' },
    { name: 'cool-down over resumes', eligible: judged({}), previous: paused, auto: 2, state: 'Healthy', kind: 'resume', reason: 'ResumedAfterCoolDown' },
  ];
  for (const r of rows) {
    const d = decideDomain({
      domain: 'brand.test', eligible: r.eligible, thresholds: { ...DEFAULT_HEALTH, ...(r.auto !== undefined ? { autoResumeAfterHours: r.auto } : {}) },
      previous: r.previous, resumeAnnotation: r.annotation, now: T0,
    });
    assert.equal(d.guard.state, r.state, `${r.name}: state`);
    assert.equal(d.kind, r.kind, `${r.name}: kind`);
    assert.equal(d.guard.reason, r.reason, `${r.name}: reason`);
    assert.equal(d.changed, r.kind !== 'none', `${r.name}: changed`);
    if (r.message) assert.match(d.guard.message, r.message, r.name);
    if (r.kind === 'resume') assert.equal(d.guard.resumedAt, T0, `${r.name}: the detector is re-armed`);
  }
});

test('an annotation present before the pause does not resume it', () => {
  const first = decideDomain({ domain: 'd', eligible: { counts: c({ attempted: 1000, delivered: 850, bouncedHard: 150 }), judged: true }, thresholds: DEFAULT_HEALTH, previous: undefined, resumeAnnotation: 'last-week', now: T0 });
  assert.equal(first.guard.state, 'Paused');
  const again = decideDomain({ domain: 'd', eligible: { counts: c({}), judged: false }, thresholds: DEFAULT_HEALTH, previous: first.guard, resumeAnnotation: 'last-week', now: T0 + HOUR_MS });
  assert.equal(again.guard.state, 'Paused');
});

test('warm-up stage day: advance, hold with the numbers, step back toward a provider', () => {
  const day = (total: Partial<Counts>, byProvider: Record<string, Partial<Counts>>, stage = 2, providerStages: Record<string, number> = {}) => ({
    stage, steps: 6, cap: 2000, total: c(total), byProvider: Object.fromEntries(Object.entries(byProvider).map(([k, v]) => [k, c(v)])), providerStages,
  });
  const rows: { name: string; d: ReturnType<typeof day>; kind: string; stage: number; reason: string; message?: RegExp; providerStages?: Record<string, number> }[] = [
    { name: 'healthy day → next stage', d: day({ attempted: 1500, delivered: 1490, bouncedHard: 10 }, { gmail: { attempted: 1500, delivered: 1490, bouncedHard: 10 } }), kind: 'advance', stage: 3, reason: 'Advanced', message: /^Advanced to stage 3: 0\.67 % bounces, 0\.0 % deferred, 0\.0 % complaints over 1,500 attempts$/ },
    { name: 'too little mail → hold', d: day({ attempted: 40, delivered: 40 }, { gmail: { attempted: 40, delivered: 40 } }), kind: 'hold', stage: 2, reason: 'HeldLowVolume', message: /40 attempts, fewer than the 100 needed/ },
    { name: 'a small cap needs half of it only', d: { ...day({ attempted: 30, delivered: 30 }, { gmail: { attempted: 30, delivered: 30 } }), cap: 50 }, kind: 'advance', stage: 3, reason: 'Advanced' },
    {
      name: '18.2 % deferred by outlook → hold naming outlook',
      d: day({ attempted: 2240, delivered: 1999, deferred: 241 }, { gmail: { attempted: 1000, delivered: 990, deferred: 10 }, outlook: { attempted: 1240, delivered: 1009, deferred: 231 } }),
      kind: 'hold', stage: 2, reason: 'HeldHighDeferrals', message: /^HeldHighDeferrals: 18\.6 % deferred by outlook over 1,240 attempts$/,
    },
    { name: 'bounces → hold', d: day({ attempted: 1000, delivered: 900, bouncedHard: 100 }, { gmail: { attempted: 1000, delivered: 900, bouncedHard: 100 } }), kind: 'hold', stage: 2, reason: 'HeldHighBounces', message: /10\.0 % hard bounces at gmail over 1,000 messages/ },
    { name: 'complaints → hold', d: day({ attempted: 1000, delivered: 1000, complained: 2 }, { yahoo: { attempted: 1000, delivered: 1000, complained: 2 } }), kind: 'hold', stage: 2, reason: 'HeldHighComplaints', message: /0\.20 % complaints at yahoo/ },
    {
      name: '30 % 421 4.7.0 from outlook → step back toward outlook only',
      d: day({ attempted: 1300, delivered: 1000, deferred: 300, deferredPolicy: 300 }, { gmail: { attempted: 300, delivered: 300 }, outlook: { attempted: 1000, delivered: 700, deferred: 300, deferredPolicy: 300 } }),
      kind: 'stepBack', stage: 2, reason: 'SteppedBack', message: /outlook refused 30\.0 % for rate or reputation over 1,000 attempts \(stage 2 → 1\)/, providerStages: { outlook: 1 },
    },
    {
      name: 'a healthy day lifts a step-back by one',
      d: day({ attempted: 1500, delivered: 1500 }, { outlook: { attempted: 1500, delivered: 1500 } }, 3, { outlook: 1 }),
      kind: 'advance', stage: 4, reason: 'Advanced', providerStages: { outlook: 2 },
    },
    { name: 'the last stage healthy → completed', d: { ...day({ attempted: 1500, delivered: 1500 }, { gmail: { attempted: 1500, delivered: 1500 } }), stage: 5 }, kind: 'advance', stage: 5, reason: 'Completed' },
  ];
  for (const r of rows) {
    const got = decideStageDay(r.d, DEFAULT_WARMUP_LIMITS);
    assert.equal(got.kind, r.kind, `${r.name}: kind (${got.message})`);
    assert.equal(got.stage, r.stage, `${r.name}: stage`);
    assert.equal(got.reason, r.reason, `${r.name}: reason`);
    if (r.message) assert.match(got.message, r.message, r.name);
    if (r.providerStages) assert.deepEqual(got.providerStages, r.providerStages, `${r.name}: provider stages`);
  }
});

test('idle IPs lose stages: one per 7 idle days, all of them at 30 (the same answer when asked again)', () => {
  const rows: [number, number, number | undefined][] = [
    [4, 3, undefined], [4, 7, 3], [4, 8, 3], [4, 14, 2], [4, 29, 0], [9, 29, 5], [9, 30, 0], [0, 60, undefined],
  ];
  for (const [stage, idle, want] of rows) assert.equal(decideIdle(stage, idle)?.stage, want, `stage ${stage}, ${idle} idle days`);
});

test('percent formatting', () => {
  assert.deepEqual([percent(0.182), percent(0.003), percent(0), percent(undefined), percent(0.1)], ['18.2 %', '0.30 %', '0.0 %', '-', '10.0 %']);
});

test('warm-up loop: one judgement per UTC day, from the day that ended; idle days fade stages once', async () => {
  const { judgeWarmupDay, DAY_MS } = await import('./warmup-loop.ts');
  const steps = [{ day: 0, dailyLimit: 500 }, { day: 1, dailyLimit: 1000 }, { day: 2, dailyLimit: 2000 }, { day: 3, dailyLimit: 4000 }];
  const day0 = Date.UTC(2026, 11, 1);
  const hb = (dayStart: number, provider: string, p: Partial<Counts>): HourBucket => ({ hour: dayStart + 10 * HOUR_MS, ip: '192.0.2.1', provider, domain: 'brand.test', class: 'bulk', ...c(p) });
  const buckets = [
    hb(day0, 'gmail', { attempted: 480, delivered: 478, bouncedHard: 2 }),
    hb(day0 + DAY_MS, 'outlook', { attempted: 1240, delivered: 1014, deferred: 226 }),
  ];
  // Day 0 still running: nothing to judge.
  let r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: undefined, lastMail: undefined, now: day0 + 12 * HOUR_MS });
  assert.equal(r.decision, undefined);
  assert.equal(r.state.stage, 0);
  // Day 1 begins: day 0 was healthy → stage 1.
  r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: r.state, lastMail: day0 + 10 * HOUR_MS, now: day0 + DAY_MS + 60_000 });
  assert.equal(r.decision?.reason, 'Advanced');
  assert.equal(r.state.stage, 1);
  // Asked again the same day: no second judgement.
  const again = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: r.state, lastMail: day0 + 10 * HOUR_MS, now: day0 + DAY_MS + 3_600_000 });
  assert.equal(again.decision, undefined);
  // Day 2 begins: day 1 had 18.2 % deferred by outlook → hold at stage 1, with the numbers.
  r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: r.state, lastMail: day0 + DAY_MS + 10 * HOUR_MS, now: day0 + 2 * DAY_MS + 60_000 });
  assert.equal(r.decision?.message, 'HeldHighDeferrals: 18.2 % deferred by outlook over 1,240 attempts');
  assert.equal(r.state.stage, 1);
  // Then silence: after 7 idle days one stage is lost, once.
  let s = r.state;
  const lost: string[] = [];
  for (let d = 3; d <= 12; d++) {
    const x = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: s, lastMail: day0 + DAY_MS + 10 * HOUR_MS, now: day0 + d * DAY_MS + 60_000 });
    if (x.decision) lost.push(`${d}:${x.decision.stage}`);
    s = x.state;
  }
  assert.deepEqual(lost, ['9:0'], 'day 9 is the 7th idle day after the last mail (day 1)');
});

test('warm-up loop: a healthy last stage is warm, kept as a stage past the last step (the relay reads it as no cap)', async () => {
  const { judgeWarmupDay, DAY_MS } = await import('./warmup-loop.ts');
  const steps = [{ day: 0, dailyLimit: 500 }, { day: 1, dailyLimit: 1000 }];
  const day0 = Date.UTC(2026, 11, 1);
  const buckets: HourBucket[] = [{ hour: day0 + 10 * HOUR_MS, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...c({ attempted: 900, delivered: 900 }) }];
  const r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: { stage: 1, providerStages: {}, judgedDay: day0 - DAY_MS, stageAtLastMail: 1 }, lastMail: day0 + 10 * HOUR_MS, now: day0 + DAY_MS + 60_000 });
  assert.equal(r.decision?.reason, 'Completed');
  assert.equal(r.state.stage, 2);
});

test('ATTENTION: paused domains first, then quarantined IPs, then IPs whose warm-up was held or stepped back, or whose relay was not read; nothing → absent', async () => {
  const { poolAttention, ATTENTION_MAX } = await import('./attention.ts');
  const warm = (stage: number, last: string, providerStages: Record<string, number> = {}) => ({ stage, providerStages, judgedDay: 0, stageAtLastMail: stage, last });
  assert.equal(poolAttention([], [{ address: '192.0.2.1', warmup: warm(2, 'Advanced to stage 2: 0.1 % bounces') }, { address: '192.0.2.2' }]), undefined);
  assert.equal(
    poolAttention(
      [
        { domain: 'b.test', reason: 'ReviewHighComplaints', bounceRate: '0.2 %', complaintRate: '0.12 %' },
        { domain: 'a.test', reason: 'PausedHighBounces', bounceRate: '12.0 %', complaintRate: '0.0 %' },
      ],
      [
        { address: '192.0.2.1', warmup: warm(1, 'SteppedBack: outlook refused 33.3 % for rate or reputation over 150 attempts (stage 1 → 0)', { outlook: 0 }) },
        { address: '192.0.2.2', warmup: warm(0, 'HeldLowVolume: 10 attempts, fewer than the 100 needed to judge the day'), unread: 'Unauthorized' },
        { address: '192.0.2.3', quarantine: { reason: 'Listed', list: 'zen', answer: '127.0.0.2' } },
      ],
    ),
    'a.test PausedHighBounces (12.0 % bounces); b.test ReviewHighComplaints (0.12 % complaints); 192.0.2.3 Quarantined (zen 127.0.0.2); 192.0.2.1 SteppedBack (stage 1; outlook stage 0); 192.0.2.2 relay Unauthorized; 192.0.2.2 HeldLowVolume (stage 0)',
  );
  assert.equal(poolAttention([], [{ address: '192.0.2.4', quarantine: { reason: 'Manual' } }]), '192.0.2.4 Quarantined (by annotation)');
  const many = Array.from({ length: 20 }, (_, i) => ({ domain: `d${i}.example.com`, reason: 'PausedHighBounces', bounceRate: '12.0 %', complaintRate: '0.0 %' }));
  const line = poolAttention(many, [])!;
  assert.equal(line.length, ATTENTION_MAX);
  assert.ok(line.endsWith('…'));
});

test('warm-up loop: healthy days count as warm-up days; the stage is the plan\'s for the days counted (a step every 2 days takes 2)', async () => {
  const { judgeWarmupDay, DAY_MS } = await import('./warmup-loop.ts');
  const steps = [{ day: 0, dailyLimit: 500 }, { day: 2, dailyLimit: 1000 }, { day: 4, dailyLimit: 2000 }];
  const day0 = Date.UTC(2026, 11, 1);
  const healthy = (d: number): HourBucket => ({ hour: day0 + d * DAY_MS + 10 * HOUR_MS, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...c({ attempted: 300, delivered: 300 }) });
  const buckets = [0, 1, 2, 3, 4].map(healthy);
  let s = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: undefined, lastMail: undefined, now: day0 + 60_000 }).state;
  const seen: string[] = [];
  for (let d = 1; d <= 5; d++) {
    const r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets, previous: s, lastMail: day0 + (d - 1) * DAY_MS + 10 * HOUR_MS, now: day0 + d * DAY_MS + 60_000 });
    s = r.state;
    seen.push(`${r.decision!.reason} ${s.day}/${s.stage}`);
  }
  assert.deepEqual(seen, ['DayCounted 1/0', 'Advanced 2/1', 'DayCounted 3/1', 'Advanced 4/2', 'Completed 5/3']);
  const r = judgeWarmupDay({ ip: '192.0.2.1', steps, buckets: [healthy(0)], previous: { stage: 0, day: 0, providerStages: {}, judgedDay: day0 - DAY_MS, stageAtLastMail: 0 }, lastMail: day0, now: day0 + DAY_MS + 60_000 });
  assert.equal(r.decision!.message, 'DayCounted: warm-up day 1 at stage 0, stage 1 from day 2: 0.0 % bounces, 0.0 % deferred, 0.0 % complaints over 300 attempts');
});

test('a resume re-arms from the moment of the resume, not from the start of its hour (the mail that paused the domain is not judged again)', async () => {
  const { resumeBaseline, afterResume, recentEligible } = await import('./rates.ts');
  const hour = Date.UTC(2026, 11, 6, 20);
  const b = (p: Partial<Counts>): HourBucket => ({ hour, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...c(p) });
  const mine = (x: HourBucket) => x.domain === 'brand.test';
  // 200 messages, 24 hard bounces: paused; resumed 10 minutes later in the same hour.
  const before = [b({ attempted: 200, delivered: 176, bouncedHard: 24 })];
  const resumedAt = hour + 10 * 60_000;
  const base = resumeBaseline(before, mine, resumedAt);
  assert.equal(recentEligible(afterResume(before, 'brand.test', base), mine, resumedAt + 1000, { windowMs: 86_400_000, minimumVolume: 100, since: resumedAt }).judged, false, 'nothing after the resume yet');
  // 150 more after the resume, 3 of them hard bounces: 2 %, judged over those 150 only.
  const later = [b({ attempted: 350, delivered: 323, bouncedHard: 27 })];
  const e = recentEligible(afterResume(later, 'brand.test', base), mine, resumedAt + 600_000, { windowMs: 86_400_000, minimumVolume: 100, since: resumedAt });
  assert.deepEqual([e.judged, e.counts.attempted, e.counts.bouncedHard], [true, 150, 3]);
});
