import { test } from 'node:test';
import assert from 'node:assert/strict';
import { electionStep, microTime } from './leader.ts';

test('no lease or an empty holder: acquire at once', () => {
  assert.equal(electionStep(undefined, 'a', 0, undefined).action, 'acquire');
  assert.equal(electionStep({ holderIdentity: '', leaseDurationSeconds: 15 }, 'a', 0, undefined).action, 'acquire');
  assert.equal(electionStep({ holderIdentity: null }, 'a', 0, undefined).action, 'acquire');
});

test('our own lease: renew', () => {
  assert.equal(electionStep({ holderIdentity: 'a', renewTime: 'x' }, 'a', 0, undefined).action, 'renew');
});

test("another holder's lease expires a full duration after we last saw it change, on our clock", () => {
  const lease = { holderIdentity: 'b', leaseDurationSeconds: 10, renewTime: '2000-01-01T00:00:00.000000Z' };
  // Even though renewTime is ancient by any clock, we start counting when we first see it.
  let s = electionStep(lease, 'a', 1000, undefined);
  assert.equal(s.action, 'wait');
  s = electionStep(lease, 'a', 10_999, s.observation);
  assert.equal(s.action, 'wait');
  s = electionStep(lease, 'a', 11_000, s.observation);
  assert.equal(s.action, 'acquire');
});

test('a renewal by the holder restarts the count', () => {
  let s = electionStep({ holderIdentity: 'b', leaseDurationSeconds: 10, renewTime: 't1' }, 'a', 0, undefined);
  s = electionStep({ holderIdentity: 'b', leaseDurationSeconds: 10, renewTime: 't2' }, 'a', 9000, s.observation);
  assert.equal(s.action, 'wait');
  s = electionStep({ holderIdentity: 'b', leaseDurationSeconds: 10, renewTime: 't2' }, 'a', 18_000, s.observation);
  assert.equal(s.action, 'wait');
  s = electionStep({ holderIdentity: 'b', leaseDurationSeconds: 10, renewTime: 't2' }, 'a', 19_000, s.observation);
  assert.equal(s.action, 'acquire');
});

test('MicroTime has six fractional digits', () => {
  assert.equal(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05.678000Z');
});
