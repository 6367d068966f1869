import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideOutcome, type OutcomeInput } from './outcome.ts';
import { RetrySchema } from '../config/schema.ts';

const base: OutcomeInput = { code: 250, text: 'ok', phase: 'eom', attempts: 0, createdAt: 0, now: 1000, retry: RetrySchema.parse({}), rules: [], shuttingDown: false };

test('2xx delivered; 5xx bounced with a category', () => {
  assert.deepEqual(decideOutcome(base), { outcome: { kind: 'delivered' }, category: undefined });
  assert.deepEqual(decideOutcome({ ...base, code: 550, enhanced: '5.1.1', text: 'no such user', phase: 'rcpt' }), { outcome: { kind: 'bounced' }, category: 'unknown-user' });
});

test('4xx deferred on the schedule, or expired at max age', () => {
  assert.deepEqual(decideOutcome({ ...base, code: 451, text: 'later', attempts: 1 }).outcome, { kind: 'deferred', at: 1000 + 600_000 });
  assert.deepEqual(decideOutcome({ ...base, code: 451, text: 'later', now: 5 * 86400_000 }).outcome, { kind: 'expired' });
});

test('a shutdown defers to now, even past max age', () => {
  assert.deepEqual(decideOutcome({ ...base, code: 451, text: 'stopped', now: 9 * 86400_000, shuttingDown: true }).outcome, { kind: 'deferred', at: 9 * 86400_000 });
});

test('config rules reach the classifier', () => {
  const r = decideOutcome({ ...base, code: 451, text: 'odd wording Q9', rules: [{ category: 'reputation', text: 'Q9' }] });
  assert.equal(r.category, 'reputation');
});
