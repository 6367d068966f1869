import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullBucket, take } from './bucket.ts';
import { KUMO_DEFAULTS } from './limits.ts';
import { decide, type IpView } from './decide.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);

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
