import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextAttemptAt, retryDelaySeconds, retryHintSeconds } from './retry.ts';
import { RetrySchema } from '../config/schema.ts';

const retry = RetrySchema.parse({});
const H = 3600_000;

test('defaults: 5 min, doubling, capped at 1 h', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 20].map((n) => retryDelaySeconds(n, retry)), [300, 600, 1200, 2400, 3600, 3600, 3600]);
});

test('next attempt is now + delay', () => {
  assert.deepEqual(nextAttemptAt({ failedAttempts: 2, createdAt: 0, now: 1000, retry }), { kind: 'retry', at: 1000 + 600_000 });
});

test('the last attempt is made at the deadline, then the message expires', () => {
  const createdAt = 0;
  const deadline = 120 * H;
  assert.deepEqual(nextAttemptAt({ failedAttempts: 50, createdAt, now: deadline - 60_000, retry }), { kind: 'retry', at: deadline });
  assert.deepEqual(nextAttemptAt({ failedAttempts: 51, createdAt, now: deadline, retry }), { kind: 'expire' });
});

test('a reply hint is honoured within bounds', () => {
  assert.deepEqual(nextAttemptAt({ failedAttempts: 1, createdAt: 0, now: 0, retry, hintSeconds: 900 }), { kind: 'retry', at: 900_000 });
  assert.deepEqual(nextAttemptAt({ failedAttempts: 1, createdAt: 0, now: 0, retry, hintSeconds: 1 }), { kind: 'retry', at: 60_000 });
  assert.deepEqual(nextAttemptAt({ failedAttempts: 1, createdAt: 0, now: 0, retry, hintSeconds: 86400 }), { kind: 'retry', at: 3600_000 });
});

test('retry hints are read from reply text', () => {
  assert.equal(retryHintSeconds('451 4.7.1 Greylisted, please try again in 5 minutes'), 300);
  assert.equal(retryHintSeconds('421 retry after 120 seconds'), 120);
  assert.equal(retryHintSeconds('451 try again later'), undefined);
});

test('custom config', () => {
  const r = RetrySchema.parse({ firstRetrySeconds: 60, multiplier: 3, maxRetrySeconds: 1000, maxAgeSeconds: 3600 });
  assert.deepEqual([1, 2, 3, 4].map((n) => retryDelaySeconds(n, r)), [60, 180, 540, 1000]);
});
