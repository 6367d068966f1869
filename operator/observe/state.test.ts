// Merging relay reads: reading twice, a relay restart (same instance) and a replaced volume (new
// instance) never count anything twice; old hours are settled and kept; a crashed relay's lower
// numbers do not take back what was read before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyCounts, type StatsDocumentV1, type StatsBucket } from '../../relay/stats/contract.ts';
import { emptyState, mergeRead, compact, poolBuckets, hoursToRead, LIVE_HOURS } from './state.ts';
import { HOUR_MS } from '../control/rates.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 30);
const H = (ago: number) => new Date(Math.floor(T0 / HOUR_MS) * HOUR_MS - ago * HOUR_MS).toISOString();
const b = (hour: string, attempted: number, extra: Partial<StatsBucket> = {}): StatsBucket => ({ hour, ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk', ...emptyCounts(), attempted, delivered: attempted, ...extra });
const doc = (instance: string, buckets: StatsBucket[]): StatsDocumentV1 => ({
  schemaVersion: 1, instance, instanceCreated: H(100), now: new Date(T0).toISOString(), queued: 0, pausedDomains: [], bucketSeconds: 3600, hoursFrom: H(24), buckets,
});
const total = (s: ReturnType<typeof emptyState>) => poolBuckets(s).reduce((n, x) => n + x.attempted, 0);

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
    let s = emptyState();
    for (const [pod, inst, buckets] of r.reads) s = mergeRead(s, pod, doc(inst, buckets), T0);
    assert.equal(total(s), r.want, r.name);
  }
});

test('a pod seen with a new instance replaces its relay record; old hours settle past the relay retention', () => {
  let s = mergeRead(emptyState(), 'pod-0', doc('A', [b(H(LIVE_HOURS + 2), 100), b(H(0), 1)]), T0);
  s = mergeRead(s, 'pod-0', doc('B', [b(H(0), 2)]), T0);
  assert.deepEqual(Object.keys(s.relays), ['B']);
  s = compact(s, T0);
  assert.equal(total(s), 103);
  assert.equal(Object.keys(s.settled).length, 1, 'the old hour is settled');
  // Reading A's old hour again after it settled cannot happen (the relay dropped it), and B's live hour stays live.
  assert.equal(total(compact(s, T0)), 103, 'compacting twice changes nothing');
  assert.equal(total(compact(s, T0 + 10 * 24 * HOUR_MS)), 0, 'past KEEP_HOURS everything is dropped');
  assert.equal(s.lastMail['192.0.2.1'], Date.parse(H(0)));
});

test('incremental reads: the hours since the last read, merged, count as a full read does', () => {
  // The relay's counts over 25 hours; between two reads 30 s apart only the current hour grew.
  const first = Array.from({ length: 25 }, (_, i) => b(H(24 - i), 10 + i));
  const later = first.map((x, i) => (i === 24 ? { ...x, attempted: x.attempted + 5, delivered: x.delivered + 5 } : x));
  const full = mergeRead(mergeRead(emptyState(), 'pod-0', doc('A', first), T0), 'pod-0', doc('A', later), T0 + 30_000);
  const s1 = mergeRead(emptyState(), 'pod-0', doc('A', first), T0);
  const n = hoursToRead(s1.relays['A']!.lastSeen, T0 + 30_000)!;
  assert.equal(n, 2, 'read 30 s after the last: this hour and the one before');
  const incremental = mergeRead(s1, 'pod-0', doc('A', later.slice(-n)), T0 + 30_000);
  assert.deepEqual(poolBuckets(incremental), poolBuckets(full));
  assert.equal(total(incremental), total(full));
});

test('hours to ask a relay for', () => {
  const rows: { name: string; lastSeen: number | undefined; now: number; want: number | undefined }[] = [
    { name: 'never read: its default (25)', lastSeen: undefined, now: T0, want: undefined },
    { name: '30 s ago, same hour', lastSeen: T0 - 30_000, now: T0, want: 2 },
    { name: 'last read in the previous hour', lastSeen: T0 - HOUR_MS, now: T0, want: 3 },
    { name: '10 hours ago', lastSeen: T0 - 10 * HOUR_MS, now: T0, want: 12 },
    { name: '23 hours ago: everything the default serves', lastSeen: T0 - 23 * HOUR_MS, now: T0, want: undefined },
    { name: 'two days ago', lastSeen: T0 - 48 * HOUR_MS, now: T0, want: undefined },
  ];
  for (const r of rows) assert.equal(hoursToRead(r.lastSeen, r.now), r.want, r.name);
});
