import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthThrottle } from './auth-throttle.ts';

test('an address is blocked after max failures in the window and freed when they age out', () => {
  let now = 1_000_000;
  const t = new AuthThrottle(3, 60, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(t.blockedFor('192.0.2.1'), 0);
    t.recordFailure('192.0.2.1');
    now += 1000;
  }
  assert.equal(t.blockedFor('192.0.2.1'), 57);
  assert.equal(t.blockedFor('192.0.2.2'), 0, 'other addresses are not affected');
  now += 57_000;
  assert.equal(t.blockedFor('192.0.2.1'), 0);
});

test('a success clears the failures', () => {
  const t = new AuthThrottle(2, 60, () => 0);
  t.recordFailure('a');
  t.recordSuccess('a');
  t.recordFailure('a');
  assert.equal(t.blockedFor('a'), 0);
});
