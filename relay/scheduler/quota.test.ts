import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addUsage, addUsageTo, checkQuota, currentCount, windowEnd } from './quota.ts';
import { ShapingSchema } from '../config/schema.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);
const caps = ShapingSchema.parse({ warmup: [{ address: '192.0.2.1', hourly: 10, daily: 15, providers: [{ name: 'google', hourly: 4 }] }] }).warmup[0]!;
const yahoo6 = addUsage(new Map(), 'yahoo', T0, 6);
const plusGoogle4 = addUsage(yahoo6, 'google', T0, 4);

test('warm-up quota: below the hourly cap a group goes', () => {
  assert.deepEqual(checkQuota(caps, yahoo6, 'yahoo', T0, 4), { ok: true });
});

test('warm-up quota: a group past the hourly cap waits', () => {
  assert.equal(checkQuota(caps, yahoo6, 'yahoo', T0, 5).ok, false);
});

test('warm-up quota: the IP\'s hourly cap counts every provider, and the wait ends with the hour', () => {
  const g = checkQuota(caps, plusGoogle4, 'google', T0, 1);
  assert.ok(!g.ok && g.until === windowEnd('hour', T0) && /hourly cap 10/.test(g.reason));
});

test('warm-up quota: next hour the hourly caps are fresh, the daily one is not', () => {
  const nextHour = windowEnd('hour', T0);
  assert.deepEqual(checkQuota(caps, plusGoogle4, 'yahoo', nextHour, 5), { ok: true });
  const d = checkQuota(caps, plusGoogle4, 'yahoo', nextHour, 6);
  assert.ok(!d.ok && d.until === windowEnd('day', T0));
});

test('warm-up quota: a group bigger than the cap still goes in a fresh window', () => {
  assert.deepEqual(checkQuota(caps, new Map(), 'yahoo', T0, 50), { ok: true });
});

test('warm-up quota: no caps, no limit', () => {
  assert.deepEqual(checkQuota(undefined, plusGoogle4, 'yahoo', T0, 1000), { ok: true });
});

test('warm-up usage: counted in place gives what the copy gives, and a new hour starts over', () => {
  // addUsageTo counts the current window's counters up in place: the map and its counters are its own.
  const u = new Map([...yahoo6].map(([k, c]) => [k, { ...c }]));
  addUsageTo(u, 'google', T0, 4);
  assert.deepEqual([...u].sort(), [...plusGoogle4].sort());
  assert.equal(yahoo6.get('*|hour')!.count, 6, 'addUsage leaves its input alone');
  addUsageTo(u, 'google', T0 + 3_600_000, 1);
  assert.deepEqual([currentCount(u, '*', 'hour', T0 + 3_600_000), currentCount(u, '*', 'day', T0 + 3_600_000), currentCount(u, 'yahoo', 'day', T0 + 3_600_000)], [1, 11, 6]);
});
