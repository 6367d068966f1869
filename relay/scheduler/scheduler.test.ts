// The scheduler's pure decisions under an injected clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableAt, fullBucket, take, windowAllowsAt } from './bucket.ts';
import { limitsFor, otpReserve, KUMO_DEFAULTS } from './limits.ts';
import { matchBackoff } from './backoff.ts';
import { addUsage, checkQuota, windowEnd } from './quota.ts';
import { decide, type IpView } from './decide.ts';
import { rollupProvider } from './providers.ts';
import { Shaper } from './shaper.ts';
import { ShapingSchema } from '../config/schema.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);

test('provider rollup: MX names, config suffixes first, the rest is default', () => {
  assert.equal(rollupProvider('aspmx.l.google.com.'), 'google');
  assert.equal(rollupProvider('alt1.aspmx.l.google.com'), 'google');
  assert.equal(rollupProvider('example-com.mail.protection.outlook.com'), 'microsoft');
  assert.equal(rollupProvider('mx-aol.mail.gm0.yahoodns.net'), 'yahoo');
  assert.equal(rollupProvider('mx01.mail.icloud.com'), 'apple');
  assert.equal(rollupProvider('mx.example.net'), 'default');
  assert.equal(rollupProvider('notgoogle.com'), 'default');
  assert.equal(rollupProvider(undefined), 'default');
  assert.equal(rollupProvider('mx1.mailhost.example', [{ name: 'corp', mxSuffixes: ['mailhost.example'] }]), 'corp');
  assert.equal(rollupProvider('aspmx.l.google.com', [{ name: 'gsuite', mxSuffixes: ['google.com'] }]), 'gsuite');
});

test('token bucket: burst, then one token per 1/rate', () => {
  let b = fullBucket(3, T0);
  for (let i = 0; i < 3; i++) {
    assert.equal(availableAt(b, T0, 2, 3), T0);
    b = take(b, T0, 2, 3);
  }
  assert.equal(availableAt(b, T0, 2, 3), T0 + 500);
  assert.equal(availableAt(b, T0 + 499, 2, 3), T0 + 500);
  assert.equal(availableAt(b, T0 + 500, 2, 3), T0 + 500);
  // Refill never exceeds the burst.
  const later = T0 + 60_000;
  assert.equal(availableAt(take(take(b, later, 2, 3), later, 2, 3), later, 2, 3), later);
  assert.equal(availableAt(take(take(take(b, later, 2, 3), later, 2, 3), later, 2, 3), later, 2, 3), later + 500);
});

test('sliding window: at most n opens in any minute', () => {
  const opens = [T0, T0 + 10_000, T0 + 20_000];
  assert.equal(windowAllowsAt(opens, T0 + 30_000, 3, 60_000), T0 + 60_000);
  assert.equal(windowAllowsAt(opens, T0 + 60_001, 3, 60_000), T0 + 60_001);
  assert.equal(windowAllowsAt(opens, T0 + 30_000, 4, 60_000), T0 + 30_000);
});

test('limits: KumoMTA defaults, built-in profiles only tighten, config wins, throttle caps', () => {
  assert.deepEqual(limitsFor('default', []), KUMO_DEFAULTS);
  assert.equal(limitsFor('google', []).maxConnections, 5);
  assert.equal(limitsFor('google', []).messagesPerConnection, 50);
  assert.equal(limitsFor('yahoo', []).messagesPerConnection, 20);
  // Legacy delivery.maxConnectionsPerHost below Google's 5 still applies.
  assert.equal(limitsFor('google', [], { maxConnections: 2 }).maxConnections, 2);
  const cfg = ShapingSchema.parse({ providers: [{ name: 'default', messagesPerSecond: 10 }, { name: 'google', maxConnections: 8, messagesPerSecond: 3, burst: 6 }] }).providers;
  assert.equal(limitsFor('default', cfg).burst, 10);
  assert.equal(limitsFor('yahoo', cfg).messagesPerSecond, 10);
  assert.deepEqual(limitsFor('google', cfg), { maxConnections: 8, newConnectionsPerMinute: 100, messagesPerConnection: 50, messagesPerSecond: 3, burst: 6 });
  const t = limitsFor('google', cfg, {}, { messagesPerMinute: 1, maxConnections: 1 });
  assert.equal(t.maxConnections, 1);
  assert.equal(t.messagesPerSecond, 1 / 60);
  assert.equal(t.burst, 1);
  assert.equal(otpReserve(10, 0.2), 2);
  assert.equal(otpReserve(5, 0.2), 1);
  assert.equal(otpReserve(1, 0.2), 0);
  assert.equal(otpReserve(2, 0.9), 1);
});

test('backoff: built-in replies, provider filter, config rules first and can ignore a built-in', () => {
  const r = (code: number, text: string, enhanced?: string, provider = 'yahoo') => ({ code, text, enhanced, provider });
  assert.equal(matchBackoff(r(421, '[TS04] Messages from 1.2.3.4 permanently deferred'), [])?.action, 'suspend');
  assert.equal(matchBackoff(r(421, '[TS04] x'), [])?.durationSeconds, 7200);
  assert.equal(matchBackoff(r(421, '[TS01] Messages temporarily deferred due to unexpected volume'), [])?.action, 'throttle');
  const rep = matchBackoff(r(550, 'Service unavailable; client host blocked using Spamhaus', '5.7.1', 'microsoft'), []);
  assert.deepEqual([rep?.action, rep?.messagesPerMinute, rep?.maxConnections, rep?.durationSeconds], ['throttle', 1, 1, 5400]);
  assert.equal(matchBackoff(r(421, 'Our system has detected an unusual rate of unsolicited mail', '4.7.28', 'google'), [])?.action, 'suspend');
  assert.equal(matchBackoff(r(451, 'Rate limit exceeded, try later', '4.7.1', 'default'), [])?.action, 'suspend');
  assert.equal(matchBackoff(r(550, 'no such user', '5.1.1'), []), undefined);
  assert.equal(matchBackoff(r(250, 'rate limit ok'), []), undefined);
  const rules = ShapingSchema.parse({
    backoffRules: [
      { text: 'rate limit', providers: ['microsoft'], action: 'ignore' },
      { code: '452', text: 'mailbox disabled', action: 'bounce' },
    ],
  }).backoffRules;
  assert.equal(matchBackoff(r(451, 'rate limit exceeded', undefined, 'microsoft'), rules)?.action, 'ignore');
  assert.equal(matchBackoff(r(451, 'rate limit exceeded', undefined, 'google'), rules)?.action, 'suspend');
  assert.equal(matchBackoff(r(452, '4.2.1 mailbox disabled', undefined, 'apple'), rules)?.action, 'bounce');
});

test('warm-up quota: hourly, daily, per provider; a full window waits for the next one', () => {
  const caps = ShapingSchema.parse({ warmup: [{ address: '192.0.2.1', hourly: 10, daily: 15, providers: [{ name: 'google', hourly: 4 }] }] }).warmup[0]!;
  let u = addUsage(new Map(), 'yahoo', T0, 6);
  assert.deepEqual(checkQuota(caps, u, 'yahoo', T0, 4), { ok: true });
  assert.equal(checkQuota(caps, u, 'yahoo', T0, 5).ok, false);
  u = addUsage(u, 'google', T0, 4);
  const g = checkQuota(caps, u, 'google', T0, 1);
  assert.ok(!g.ok && g.until === windowEnd('hour', T0) && /hourly cap 10/.test(g.reason));
  // Next hour: hourly caps are fresh, the daily one (15) is not.
  const nextHour = windowEnd('hour', T0);
  assert.deepEqual(checkQuota(caps, u, 'yahoo', nextHour, 5), { ok: true });
  const d = checkQuota(caps, u, 'yahoo', nextHour, 6);
  assert.ok(!d.ok && d.until === windowEnd('day', T0));
  // A group bigger than the cap still goes in a fresh window.
  assert.deepEqual(checkQuota(caps, new Map(), 'yahoo', T0, 50), { ok: true });
  assert.deepEqual(checkQuota(undefined, u, 'yahoo', T0, 1000), { ok: true });
});

function ip(address: string, over: Partial<IpView> = {}): IpView {
  return {
    address, weight: 100, limits: { ...KUMO_DEFAULTS, maxConnections: 5 },
    path: { active: 0, activeOtp: 0, bucket: undefined }, suspension: undefined, quota: { ok: true }, ...over,
  };
}
const global = { active: 0, activeOtp: 0, concurrency: 50 };

test('decide: weighted choice among IPs with headroom; suspended or capped IPs are skipped', () => {
  const ips = [ip('a', { weight: 100 }), ip('b', { weight: 300 })];
  assert.deepEqual(decide({ now: T0, cls: 'bulk', ips, global, otpShare: 0.2, random: 0.1 }), { kind: 'send', ip: 'a' });
  assert.deepEqual(decide({ now: T0, cls: 'bulk', ips, global, otpShare: 0.2, random: 0.5 }), { kind: 'send', ip: 'b' });
  const suspended = [ip('a', { suspension: { until: T0 + 1000, reason: '421 [TS04]' } }), ip('b')];
  for (const random of [0, 0.3, 0.99]) assert.deepEqual(decide({ now: T0, cls: 'bulk', ips: suspended, global, otpShare: 0.2, random }), { kind: 'send', ip: 'b' });
  const capped = [ip('a'), ip('b', { quota: { ok: false, until: T0 + 3600_000, reason: 'hourly cap 10 reached' } })];
  assert.deepEqual(decide({ now: T0, cls: 'bulk', ips: capped, global, otpShare: 0.2, random: 0.99 }), { kind: 'send', ip: 'a' });
  // Both out: the earliest end wins; an event-bound wait (connections) wins over any timed one.
  const both = [ip('a', { suspension: { until: T0 + 5000, reason: 'x' } }), ip('b', { quota: { ok: false, until: T0 + 3600_000, reason: 'cap' } })];
  assert.deepEqual(decide({ now: T0, cls: 'bulk', ips: both, global, otpShare: 0.2, random: 0 }), { kind: 'wait', until: T0 + 5000, reason: 'suspended', detail: 'x' });
  const busy = [ip('a', { suspension: { until: T0 + 5000, reason: 'x' } }), ip('b', { path: { active: 5, activeOtp: 0, bucket: undefined } })];
  const w = decide({ now: T0, cls: 'otp', ips: busy, global, otpShare: 0.2, random: 0 });
  assert.equal(w.kind === 'wait' && w.reason, 'connections');
  assert.equal(w.kind === 'wait' && w.until, undefined);
  // The suspension is over at its end.
  assert.deepEqual(decide({ now: T0 + 5000, cls: 'bulk', ips: both, global, otpShare: 0.2, random: 0 }), { kind: 'send', ip: 'a' });
  assert.equal(decide({ now: T0, cls: 'bulk', ips: [ip('a', { weight: 0 })], global, otpShare: 0.2, random: 0 }).kind, 'wait');
});

test('decide: the split follows the weights; weight 0 is never chosen', () => {
  const ips = [ip('a', { weight: 100 }), ip('b', { weight: 300 }), ip('c', { weight: 0 })];
  const counts = new Map<string, number>();
  for (let i = 0; i < 4000; i++) {
    const d = decide({ now: T0, cls: 'bulk', ips, global, otpShare: 0.2, random: i / 4000 });
    assert.equal(d.kind, 'send');
    if (d.kind === 'send') counts.set(d.ip, (counts.get(d.ip) ?? 0) + 1);
  }
  assert.deepEqual([...counts].sort(), [['a', 1000], ['b', 3000]]);
});

test('decide: bulk never takes the connections or concurrency kept for otp', () => {
  const full = [ip('a', { path: { active: 4, activeOtp: 0, bucket: undefined } })];
  assert.equal(decide({ now: T0, cls: 'bulk', ips: full, global, otpShare: 0.2, random: 0 }).kind, 'wait');
  assert.equal(decide({ now: T0, cls: 'transactional', ips: full, global, otpShare: 0.2, random: 0 }).kind, 'wait');
  assert.deepEqual(decide({ now: T0, cls: 'otp', ips: full, global, otpShare: 0.2, random: 0 }), { kind: 'send', ip: 'a' });
  const g = { active: 40, activeOtp: 0, concurrency: 50 };
  assert.equal(decide({ now: T0, cls: 'bulk', ips: [ip('a')], global: g, otpShare: 0.2, random: 0 }).kind, 'wait');
  assert.equal(decide({ now: T0, cls: 'otp', ips: [ip('a')], global: g, otpShare: 0.2, random: 0 }).kind, 'send');
  assert.equal(decide({ now: T0, cls: 'otp', ips: [ip('a')], global: { ...g, active: 50 }, otpShare: 0.2, random: 0 }).kind, 'wait');
});

test('decide: message rate waits until the next token', () => {
  const l = { ...KUMO_DEFAULTS, messagesPerSecond: 4, burst: 1 };
  const a = ip('a', { limits: l, path: { active: 0, activeOtp: 0, bucket: take(fullBucket(1, T0), T0, 4, 1) } });
  assert.deepEqual(decide({ now: T0, cls: 'bulk', ips: [a], global, otpShare: 0.2, random: 0 }), { kind: 'wait', until: T0 + 250, reason: 'rate', detail: '4 messages/s' });
  assert.deepEqual(decide({ now: T0 + 250, cls: 'bulk', ips: [a], global, otpShare: 0.2, random: 0 }), { kind: 'send', ip: 'a' });
});

test('Shaper: a reply suspends one IP toward one provider until the clock passes it', () => {
  let now = T0;
  const shaping = ShapingSchema.parse({ providers: [{ name: 'default', messagesPerSecond: 1000 }] });
  const s = new Shaper({
    shaping,
    delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test', weight: 100 }, { address: '192.0.2.2', hostname: 'b.test', weight: 100 }], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 },
    clock: () => now,
    random: () => 0,
  });
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.observe('192.0.2.1', { code: 421, enhanced: '4.7.0', text: '[TS04] deferred', provider: 'yahoo' })?.action, 'suspend');
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.2' });
  assert.deepEqual(s.decide('google', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.restrictions().length, 1);
  // A milder reply does not shorten it.
  s.observe('192.0.2.1', { code: 451, text: 'rate limit exceeded', provider: 'yahoo' });
  assert.equal(s.restrictions()[0]!.until, T0 + 7200_000);
  now = T0 + 7200_000;
  assert.deepEqual(s.decide('yahoo', 'bulk', 1), { kind: 'send', ip: '192.0.2.1' });
  assert.equal(s.restrictions().length, 0);
});

test('Shaper: connections booked per path are released; throttle lowers limits', () => {
  let now = T0;
  const s = new Shaper({
    shaping: ShapingSchema.parse({}),
    delivery: { egressIps: [], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 },
    clock: () => now,
    random: () => 0,
  });
  for (let i = 0; i < 4; i++) {
    const d = s.decide('google', 'bulk', 1);
    assert.deepEqual(d, { kind: 'send', ip: 'default' });
    s.begin('default', 'google', 'bulk', 1);
  }
  assert.equal(s.decide('google', 'bulk', 1).kind, 'wait'); // 5 for Google, 1 kept for otp
  assert.equal(s.decide('google', 'otp', 1).kind, 'send');
  s.end('default', 'google', 'bulk');
  assert.equal(s.decide('google', 'bulk', 1).kind, 'send');
  s.observe('default', { code: 421, text: 'Blocked: poor reputation of the sending IP', provider: 'google' });
  assert.equal(s.limits('default', 'google').maxConnections, 1);
  now += 90 * 60_000;
  assert.equal(s.limits('default', 'google').maxConnections, 5);
});

test('intake: pool burst then 451 with a retry hint; per-credential buckets; queue mode books late', async () => {
  const { IntakeLimiter } = await import('./intake-rate.ts');
  const { IntakeRateSchema } = await import('../config/schema.ts');
  let now = T0;
  const l = new IntakeLimiter(IntakeRateSchema.parse({ pool: { messagesPerSecond: 2, burst: 3 }, perCredential: { messagesPerSecond: 1, burst: 1 }, users: [{ user: 'big', messagesPerSecond: 100 }] }), () => now);
  assert.deepEqual(l.admit('a'), { ok: true, notBefore: undefined });
  assert.deepEqual(l.admit('a'), { ok: false, scope: 'credential', retryAfterSeconds: 1 });
  assert.deepEqual(l.admit('big'), { ok: true, notBefore: undefined });
  assert.deepEqual(l.admit('big'), { ok: true, notBefore: undefined });
  assert.deepEqual(l.admit('big'), { ok: false, scope: 'pool', retryAfterSeconds: 1 });
  now += 500;
  assert.deepEqual(l.admit(undefined), { ok: true, notBefore: undefined });
  const q = new IntakeLimiter(IntakeRateSchema.parse({ pool: { messagesPerSecond: 10, burst: 1 }, whenOver: 'queue' }), () => now);
  assert.deepEqual(q.admit(undefined), { ok: true, notBefore: undefined });
  assert.deepEqual(q.admit(undefined), { ok: true, notBefore: now + 100, scope: 'pool' });
  assert.deepEqual(q.admit(undefined), { ok: true, notBefore: now + 200, scope: 'pool' });
});

test('class header: taken from the header block (folded too), removed, body untouched', async () => {
  const { takeClassHeader } = await import('./class-header.ts');
  const msg = Buffer.from('Subject: hi\r\nX-Mailfleet-Class: OTP\r\nTo: <a@b.test>\r\n\r\nX-Mailfleet-Class: bulk\r\n');
  const r = takeClassHeader(msg);
  assert.equal(r.class, 'otp');
  assert.equal(r.body.toString(), 'Subject: hi\r\nTo: <a@b.test>\r\n\r\nX-Mailfleet-Class: bulk\r\n');
  const folded = takeClassHeader(Buffer.from('x-mailfleet-class:\r\n bulk\r\nSubject: x\r\n\r\nbody'));
  assert.equal(folded.body.toString(), 'Subject: x\r\n\r\nbody');
  assert.equal(takeClassHeader(Buffer.from('X-Mailfleet-Class: urgent\r\n\r\n')).class, undefined);
  const none = Buffer.from('Subject: x\r\n\r\nbody');
  assert.equal(takeClassHeader(none).body, none);
});

test('warm-up config: addresses must be egress IPs; an entry without address caps an unbound relay', async () => {
  const { RelayConfigSchema } = await import('../config/schema.ts');
  const base = { dataDir: '/tmp/x', listeners: [{ name: 'sub', port: 0, tls: 'none' }] };
  const typo = RelayConfigSchema.safeParse({ ...base, delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] }, shaping: { warmup: [{ address: '192.0.2.9', hourly: 5 }] } });
  assert.ok(!typo.success && typo.error.issues.some((i) => i.path.join('.') === 'shaping.warmup.0.address' && /not one of delivery.egressIps/.test(i.message)));
  const which = RelayConfigSchema.safeParse({ ...base, delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] }, shaping: { warmup: [{ hourly: 5 }] } });
  assert.ok(!which.success);
  const unbound = RelayConfigSchema.parse({ ...base, shaping: { warmup: [{ hourly: 2 }] } });
  const s = new Shaper({ shaping: unbound.shaping, delivery: unbound.delivery, clock: () => T0, random: () => 0 });
  s.begin('default', 'google', 'bulk', 2);
  s.end('default', 'google', 'bulk');
  const d = s.decide('google', 'bulk', 1);
  assert.ok(d.kind === 'wait' && d.reason === 'quota');
});

test('Shaper: idle paths to unrecognised sites are forgotten, busy ones kept', () => {
  let now = T0;
  const s = new Shaper({
    shaping: ShapingSchema.parse({}),
    delivery: { egressIps: [], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 },
    clock: () => now,
    random: () => 0,
  });
  for (let i = 0; i <= 10_000; i++) {
    s.decide(`default/mx${i}.test`, 'bulk', 1);
    s.begin('default', `default/mx${i}.test`, 'bulk', 1);
    s.end('default', `default/mx${i}.test`, 'bulk');
  }
  s.begin('default', 'default/busy.test', 'bulk', 1);
  assert.equal(s.pathCount(), 10_002);
  now += 61_000;
  s.decide('google', 'bulk', 1);
  assert.equal(s.pathCount(), 2); // the busy one, and google's
  s.end('default', 'default/busy.test', 'bulk');
});

test('Shaper with a warm-up plan: the plan caps the day, per provider too, the lower of fixed and planned wins, midnight moves on', async () => {
  const { RelayConfigSchema } = await import('../config/schema.ts');
  const { DAY_MS } = await import('../warmup/plan.ts');
  let now = T0;
  const cfg = RelayConfigSchema.parse({
    dataDir: '/tmp/x',
    listeners: [{ name: 'sub', port: 0, tls: 'none' }],
    delivery: { egressIps: [{ address: '192.0.2.1', hostname: 'a.test' }] },
    shaping: {
      warmup: [{
        address: '192.0.2.1',
        daily: 100,
        plan: { steps: [{ day: 0, dailyLimit: 4, providers: [{ name: 'google', dailyLimit: 1 }] }, { day: 1, dailyLimit: 500 }] },
      }],
    },
  });
  const s = new Shaper({ shaping: cfg.shaping, delivery: cfg.delivery, clock: () => now, random: () => 0 });
  const send = (provider: string) => {
    const d = s.decide(provider, 'bulk', 1);
    if (d.kind === 'send') {
      s.begin(d.ip, provider, 'bulk', 1);
      s.end(d.ip, provider, 'bulk');
    }
    return d.kind === 'send' ? 'sent' : d.reason;
  };
  assert.deepEqual(['google', 'google', 'yahoo', 'yahoo', 'yahoo', 'yahoo'].map(send), ['sent', 'quota', 'sent', 'sent', 'sent', 'quota']);
  assert.deepEqual([s.warmup('192.0.2.1')!.day, s.warmup('192.0.2.1')!.sentToday], [0, 4]);
  // Midnight: 4 of 4 sent yesterday, a warm-up day: 500 planned, the fixed 100 is lower.
  now = (Math.floor(T0 / DAY_MS) + 1) * DAY_MS + 1000;
  assert.equal(s.warmup('192.0.2.1')!.capToday, 500);
  const sent = Array.from({ length: 101 }, () => send('yahoo'));
  assert.deepEqual([sent.filter((x) => x === 'sent').length, sent.at(-1)], [100, 'quota']);
  // A new config (live reload) lifts the fixed cap: the plan's 500 applies at once.
  s.reconfigure({ ...cfg.shaping, warmup: [{ ...cfg.shaping.warmup[0]!, daily: undefined }] }, cfg.delivery);
  now += 1000; // the token bucket refills (100 messages/s)
  assert.equal(send('yahoo'), 'sent');
});

test('Shaper: the warm-up history is durable: a restarted relay continues the plan where it was', async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { ShapingLedger } = await import('./ledger.ts');
  const { DAY_MS } = await import('../warmup/plan.ts');
  const db = join(mkdtempSync(join(tmpdir(), 'mailfleet-ledger-')), 'queue.db');
  const shaping = ShapingSchema.parse({ warmup: [{ address: '192.0.2.1', plan: { steps: [{ day: 0, dailyLimit: 2 }, { day: 1, dailyLimit: 50 }] } }] });
  const delivery = { egressIps: [{ address: '192.0.2.1', hostname: 'a.test', weight: 100 }], concurrency: 50, maxConnectionsPerHost: 10, maxMessagesPerConnection: 100 };
  let now = T0;
  const first = new ShapingLedger(db);
  const a = new Shaper({ shaping, delivery, ledger: first, clock: () => now, random: () => 0 });
  a.begin('192.0.2.1', 'google', 'bulk', 2);
  a.end('192.0.2.1', 'google', 'bulk');
  first.close();
  // The next day, a new process on the same store: yesterday counted, today's cap is day 1's.
  now = T0 + DAY_MS;
  const second = new ShapingLedger(db);
  const b = new Shaper({ shaping, delivery, ledger: second, clock: () => now, random: () => 0 });
  assert.deepEqual([b.warmup('192.0.2.1')!.day, b.warmup('192.0.2.1')!.capToday, b.warmup('192.0.2.1')!.startedOn], [1, 50, new Date(T0).toISOString().slice(0, 10)]);
  second.close();
});
