// Merging relay reads: reading twice, a relay restart (same instance) and a replaced volume (new
// instance) never count anything twice; hours are kept 8 days; a crashed relay's lower numbers do
// not take back what was read before; hours the relay's clock has left are sealed; the sums judge
// as the full bucket list does; state saved by earlier operators is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyCounts, COUNT_FIELDS, type StatsDocumentV1, type StatsBucket, type Counts } from '../../relay/stats/contract.ts';
import { emptyState, PoolObservations, hoursToRead, readCovers, LIVE_HOURS, KEEP_HOURS, type ObservationState } from './state.ts';
import { HOUR_MS, windowCounts, recentEligible, type HourBucket } from '../control/rates.ts';
import { judgeWarmupDay } from '../control/warmup-loop.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 30);
const H = (ago: number) => new Date(Math.floor(T0 / HOUR_MS) * HOUR_MS - ago * HOUR_MS).toISOString();
const b = (hour: string, attempted: number, extra: Partial<StatsBucket> = {}): StatsBucket => ({ hour, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...emptyCounts(), attempted, delivered: attempted, ...extra });
const doc = (instance: string, buckets: StatsBucket[], now = T0): StatsDocumentV1 => ({
  schemaVersion: 1, instance, instanceCreated: H(100), now: new Date(now).toISOString(), queued: 0, pausedDomains: [], bucketSeconds: 3600, hoursFrom: H(24), buckets,
});
const total = (s: PoolObservations) => s.totalCounts().attempted;
const reload = (s: PoolObservations) => PoolObservations.from(JSON.parse(JSON.stringify(s.toState())) as ObservationState);

test('merging reads: idempotent per instance and hour, additive across instances', () => {
  const rows: { name: string; reads: [string, string, StatsBucket[]][]; want: number }[] = [
    { name: 'one read', reads: [['pod-0', 'A', [b(H(0), 10)]]], want: 10 },
    { name: 'the same read twice', reads: [['pod-0', 'A', [b(H(0), 10)]], ['pod-0', 'A', [b(H(0), 10)]]], want: 10 },
    { name: 'the hour grew', reads: [['pod-0', 'A', [b(H(0), 10)]], ['pod-0', 'A', [b(H(0), 15)]]], want: 15 },
    { name: 'a crash lost the last second: the higher count stays', reads: [['pod-0', 'A', [b(H(0), 15)]], ['pod-0', 'A', [b(H(0), 14)]]], want: 15 },
    { name: 'restart, same volume: continues', reads: [['pod-0', 'A', [b(H(1), 10)]], ['pod-0', 'A', [b(H(1), 10), b(H(0), 5)]]], want: 15 },
    { name: 'replaced volume: a new instance from zero, the old hours kept', reads: [['pod-0', 'A', [b(H(1), 10)]], ['pod-0', 'B', [b(H(0), 3)]]], want: 13 },
    { name: 'two relays', reads: [['pod-0', 'A', [b(H(0), 10)]], ['pod-1', 'C', [b(H(0), 7, { ip: '192.0.2.2' })]]], want: 17 },
  ];
  for (const r of rows) {
    const s = PoolObservations.from(emptyState());
    for (const [pod, inst, buckets] of r.reads) s.merge(pod, doc(inst, buckets), T0);
    assert.equal(total(s), r.want, r.name);
    assert.equal(total(reload(s)), r.want, `${r.name}: saved and loaded`);
  }
});

test('a pod seen with a new instance replaces its relay record; hours are kept 8 days, then dropped', () => {
  const s = PoolObservations.from(emptyState());
  s.merge('pod-0', doc('A', [b(H(LIVE_HOURS + 2), 100), b(H(0), 1)]), T0);
  s.merge('pod-0', doc('B', [b(H(0), 2)]), T0);
  assert.deepEqual(Object.keys(s.relays), ['B']);
  s.compact(T0);
  assert.equal(total(s), 103);
  assert.equal(s.cellCount(), 2, 'per instance, only the hour its relay\'s clock is in');
  s.compact(T0);
  assert.equal(total(s), 103, 'compacting twice changes nothing');
  const r = reload(s);
  assert.equal(total(r), 103, 'saved and loaded');
  r.compact(T0 + 10 * 24 * HOUR_MS);
  assert.equal(total(r), 0, 'past KEEP_HOURS everything is dropped');
  assert.equal(r.cellCount(), 0);
  assert.equal(s.lastMail['192.0.2.1'], Date.parse(H(0)));
});

test('hours the relay\'s clock has left are sealed: read again (a full read after a restart, the first read of a new hour), they count once', () => {
  const s = PoolObservations.from(emptyState());
  s.merge('pod-0', doc('A', [b(H(2), 7), b(H(1), 10), b(H(0), 5)]), T0);
  s.merge('pod-0', doc('A', [b(H(2), 7), b(H(1), 10), b(H(0), 6)]), T0 + 30_000);
  s.merge('pod-0', doc('A', [b(H(1), 10), b(H(0), 8)]), T0 + 60_000);
  assert.equal(total(s), 25);
  assert.equal(s.cellCount(), 1);
  const r = reload(s);
  r.merge('pod-0', doc('A', [b(H(2), 7), b(H(1), 10), b(H(0), 9)]), T0 + 90_000);
  assert.equal(total(r), 26, 'after a restart of the operator, a full read adds only what grew');
});

test('state saved by an earlier operator (every hour a cell, old hours settled) is read, and counted once after', () => {
  const arr = (attempted: number) => COUNT_FIELDS.map((f) => (f === 'attempted' || f === 'delivered' ? attempted : 0));
  const key = (ago: number) => `${Date.parse(H(ago))}|192.0.2.1|gmail|brand.test|bulk`;
  const old: ObservationState = {
    live: { A: { [key(1)]: arr(10), [key(0)]: arr(5) } },
    settled: { [key(50)]: arr(100) },
    relays: { A: { pod: 'pod-0', instance: 'A', lastSeen: T0 - 30_000, queued: 0, pausedDomains: [] } },
    lastMail: {}, warmup: {},
  };
  const s = PoolObservations.from(old);
  assert.equal(total(s), 115);
  assert.equal(hoursToRead(s.lastReadByPod().get('pod-0'), T0), 2, 'no relay clock kept: the old rule');
  s.merge('pod-0', doc('A', [b(H(1), 10), b(H(0), 6)]), T0);
  assert.equal(total(s), 116);
  const saved = s.toState();
  assert.deepEqual(saved.settled, {});
  assert.equal(total(PoolObservations.from(saved)), 116);
  assert.equal(windowCounts(s.domainBuckets('brand.test'), () => true, T0, KEEP_HOURS * HOUR_MS).attempted, 116);
});

test('incremental reads: the hours since the last read, merged, count as a full read does', () => {
  // The relay's counts over 25 hours; between two reads 30 s apart only the current hour grew.
  const first = Array.from({ length: 25 }, (_, i) => b(H(24 - i), 10 + i));
  const later = first.map((x, i) => (i === 24 ? { ...x, attempted: x.attempted + 5, delivered: x.delivered + 5 } : x));
  const full = PoolObservations.from(emptyState());
  full.merge('pod-0', doc('A', first), T0);
  full.merge('pod-0', doc('A', later, T0 + 30_000), T0 + 30_000);
  const incremental = PoolObservations.from(emptyState());
  incremental.merge('pod-0', doc('A', first), T0);
  const n = hoursToRead(incremental.lastReadByPod().get('pod-0'), T0 + 30_000)!;
  assert.equal(n, 1, 'read 30 s after the last, in the same hour of the relay\'s clock: this hour');
  incremental.merge('pod-0', doc('A', later.slice(-n), T0 + 30_000), T0 + 30_000);
  assert.deepEqual(incremental.toState().sums, full.toState().sums);
  assert.equal(total(incremental), total(full));
});

test('hours to ask a relay for, by the relay\'s clock: from the hour of its last answer on', () => {
  const rows: { name: string; relayNow: number; lastSeen: number; now: number; want: number | undefined }[] = [
    { name: '30 s ago, same hour', relayNow: T0 - 30_000, lastSeen: T0 - 30_000, now: T0, want: 1 },
    { name: 'its clock 20 min ahead of ours, still in its hour: one', relayNow: T0 - 30_000 + 20 * 60_000 + 1000, lastSeen: T0 - 30_000, now: T0, want: 1 },
    { name: 'within the margin of its next hour: two', relayNow: Date.UTC(2026, 11, 6, 12, 59, 40), lastSeen: T0, now: T0 + 17_000, want: 2 },
    { name: 'last answer in its previous hour', relayNow: T0 - HOUR_MS, lastSeen: T0 - HOUR_MS, now: T0, want: 2 },
    { name: '10 hours ago', relayNow: T0 - 10 * HOUR_MS, lastSeen: T0 - 10 * HOUR_MS, now: T0, want: 11 },
    { name: 'two days ago', relayNow: T0 - 48 * HOUR_MS, lastSeen: T0 - 48 * HOUR_MS, now: T0, want: undefined },
  ];
  for (const r of rows) assert.equal(hoursToRead({ lastSeen: r.lastSeen, relayNow: r.relayNow }, r.now), r.want, r.name);
  // The answer is checked: one that starts after the hour of the last answer (its clock jumped, or it answered late) is read again.
  const last = { lastSeen: T0, relayNow: Date.UTC(2026, 11, 6, 12, 59, 50) };
  assert.equal(readCovers(last, { hoursFrom: H(0) }), true);
  assert.equal(readCovers(last, { hoursFrom: new Date(Date.parse(H(0)) + HOUR_MS).toISOString() }), false);
  assert.equal(readCovers({ lastSeen: T0 }, { hoursFrom: H(0) }), true, 'no relay clock kept: the old rule\'s extra hour covers');
});

test('hours to ask a relay for, from state saved before the relay\'s clock was kept (the operator\'s clock, one hour more)', () => {
  const rows: { name: string; lastSeen: number | undefined; now: number; want: number | undefined }[] = [
    { name: 'never read: its default (25)', lastSeen: undefined, now: T0, want: undefined },
    { name: '30 s ago, same hour', lastSeen: T0 - 30_000, now: T0, want: 2 },
    { name: 'last read in the previous hour', lastSeen: T0 - HOUR_MS, now: T0, want: 3 },
    { name: '10 hours ago', lastSeen: T0 - 10 * HOUR_MS, now: T0, want: 12 },
    { name: '23 hours ago: everything the default serves', lastSeen: T0 - 23 * HOUR_MS, now: T0, want: undefined },
    { name: 'two days ago', lastSeen: T0 - 48 * HOUR_MS, now: T0, want: undefined },
  ];
  for (const r of rows) assert.equal(hoursToRead(r.lastSeen === undefined ? undefined : { lastSeen: r.lastSeen }, r.now), r.want, r.name);
});

test('the running sums by domain, IP and IP × provider judge as the pool\'s full bucket list does, across instances, hours, compaction and a save', () => {
  // A seeded walk: 3 pods over 60 hours of reads, a replaced volume, relays binding no address
  // ("default", counted under the pod's IP), counts that grow and a crashed relay's lower ones.
  let seed = 17;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const domains = ['a.test', 'b.test', 'c.test', '(other)'];
  const providers = ['gmail', 'outlook', 'yahoo'];
  const pods = [{ pod: 'p0', ip: '192.0.2.1', inst: 'A' }, { pod: 'p1', ip: '192.0.2.2', inst: 'C' }, { pod: 'p2', ip: '192.0.2.3', inst: 'D' }];
  const counts = new Map<string, StatsBucket>();
  // The oracle: per instance and key, the largest counts any answer gave; summed per key.
  const answered = new Map<string, HourBucket>();
  const oracle = (now: number): HourBucket[] => {
    const keepFrom = Math.floor(now / HOUR_MS) * HOUR_MS - KEEP_HOURS * HOUR_MS;
    const sum = new Map<string, HourBucket>();
    for (const [k, x] of answered) {
      if (x.hour < keepFrom) continue;
      const key = k.slice(k.indexOf('|') + 1);
      const cur = sum.get(key);
      if (!cur) sum.set(key, { ...x });
      else for (const f of COUNT_FIELDS) cur[f] += x[f];
    }
    return [...sum.values()];
  };
  let s = PoolObservations.from(emptyState());
  const start = T0 - 60 * HOUR_MS;
  const check = (now: number, what: string) => {
    const all = oracle(now);
    const same = (a: HourBucket[] | readonly HourBucket[], filter: (b: HourBucket) => boolean, b: readonly HourBucket[], label: string) => {
      for (const [w, ms] of [['1 h', HOUR_MS], ['24 h', 24 * HOUR_MS], ['8 d', KEEP_HOURS * HOUR_MS]] as const) {
        assert.deepEqual(windowCounts(b, () => true, now, ms), windowCounts(a, filter, now, ms), `${what}: ${label} ${w}`);
      }
      const e = (x: readonly HourBucket[], f: (b: HourBucket) => boolean) => recentEligible(x, f, now, { windowMs: 24 * HOUR_MS, minimumVolume: 500 });
      assert.deepEqual(e(b, () => true), e(a, filter), `${what}: ${label} eligible`);
    };
    for (const d of domains) same(all, (b) => b.domain === d, s.domainBuckets(d), d);
    for (const { ip } of pods) {
      same(all, (b) => b.ip === ip, s.ipBuckets(ip), ip);
      const steps = [{ day: 0, dailyLimit: 100 }, { day: 1, dailyLimit: 1000 }];
      const previous = { stage: 0, day: 0, providerStages: {}, judgedDay: Math.floor(now / 86_400_000) * 86_400_000 - 2 * 86_400_000, stageAtLastMail: 0 };
      const judge = (b: readonly HourBucket[]) => judgeWarmupDay({ ip, steps, buckets: b, previous, lastMail: s.lastMail[ip], now });
      assert.deepEqual(judge(s.ipProviderBuckets(ip)), judge(all), `${what}: ${ip} warm-up day`);
    }
  };
  for (let step = 0; step < 240; step++) {
    const now = start + step * 15 * 60_000;
    const hour = new Date(Math.floor(now / HOUR_MS) * HOUR_MS).toISOString();
    const p = pods[rnd(3)]!;
    if (step === 150) p.inst = 'B'; // its volume replaced: a new store from zero
    const buckets: StatsBucket[] = [];
    // Now and then the previous hour again, as it ended (the first answer of a new hour).
    if (rnd(5) === 0) for (const [key, x] of counts) if (key.startsWith(`${p.inst}|`) && Date.parse(x.hour) === Date.parse(hour) - HOUR_MS) buckets.push(x);
    for (let k = 0; k < 6; k++) {
      const domain = domains[rnd(domains.length)]!;
      const provider = providers[rnd(providers.length)]!;
      const ip = rnd(4) === 0 ? 'default' : p.ip;
      const key = `${p.inst}|${hour}|${ip}|${provider}|${domain}`;
      const cur = counts.get(key) ?? b(hour, 0, { ip, provider, domain, delivered: 0 });
      const n = 1 + rnd(40);
      const next = { ...cur, attempted: cur.attempted + n, delivered: cur.delivered + n - (n >> 3), bouncedHard: cur.bouncedHard + (n >> 3), deferred: cur.deferred + rnd(3), complained: cur.complained + (rnd(10) === 0 ? 1 : 0) };
      // Now and then a relay lost its last second (a crash): it answers, and goes on, from less
      // than it counted; max keeps what an earlier answer said.
      const crashed = rnd(8) === 0;
      counts.set(key, crashed ? cur : next);
      buckets.push(crashed ? { ...cur } : next);
    }
    s.merge(p.pod, doc(p.inst, buckets, now), now, p.ip);
    for (const x of buckets) {
      const ip = x.ip === 'default' ? p.ip : x.ip;
      const k = `${p.inst}|${x.hour}|${ip}|${x.provider}|${x.domain}|${x.class}`;
      const cur = answered.get(k) ?? { ...x, ip, hour: Date.parse(x.hour), ...emptyCounts() };
      for (const f of COUNT_FIELDS) cur[f] = Math.max(cur[f], x[f]);
      answered.set(k, cur);
    }
    s.compact(now);
    if (step % 40 === 39) check(now, `step ${step}`);
    if (step === 200) s = reload(s);
  }
  check(start + 239 * 15 * 60_000, 'the end');
  assert.ok(s.cellCount() <= 3 * 4 * 3 * 4, `only the current hours' cells are kept (${s.cellCount()})`);
});
