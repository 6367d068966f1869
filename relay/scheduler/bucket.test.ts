import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableAt, fullBucket, take, windowAllowsAt } from './bucket.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);

test('token bucket: the burst goes at once, then one token per 1/rate', () => {
  let b = fullBucket(3, T0);
  for (let i = 0; i < 3; i++) {
    assert.equal(availableAt(b, T0, 2, 3), T0);
    b = take(b, T0, 2, 3);
  }
  assert.equal(availableAt(b, T0, 2, 3), T0 + 500);
  assert.equal(availableAt(b, T0 + 499, 2, 3), T0 + 500);
  assert.equal(availableAt(b, T0 + 500, 2, 3), T0 + 500);
});

test('token bucket: refill never exceeds the burst', () => {
  let b = fullBucket(3, T0);
  for (let i = 0; i < 3; i++) b = take(b, T0, 2, 3);
  const later = T0 + 60_000;
  assert.equal(availableAt(take(take(b, later, 2, 3), later, 2, 3), later, 2, 3), later);
  assert.equal(availableAt(take(take(take(b, later, 2, 3), later, 2, 3), later, 2, 3), later, 2, 3), later + 500);
});

const opens = [T0, T0 + 10_000, T0 + 20_000];
const windowCases: { name: string; now: number; max: number; allowedAt: number }[] = [
  { name: 'a full minute waits for its oldest open to leave the window', now: T0 + 30_000, max: 3, allowedAt: T0 + 60_000 },
  { name: 'past the oldest open, a new one may go', now: T0 + 60_001, max: 3, allowedAt: T0 + 60_001 },
  { name: 'below the limit, at once', now: T0 + 30_000, max: 4, allowedAt: T0 + 30_000 },
];
for (const c of windowCases) {
  test(`sliding window (at most n opens in any minute): ${c.name}`, () => {
    assert.equal(windowAllowsAt(opens, c.now, c.max, 60_000), c.allowedAt);
  });
}
