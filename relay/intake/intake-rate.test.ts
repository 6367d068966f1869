import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IntakeLimiter } from './intake-rate.ts';
import { IntakeRateSchema } from '../config/schema.ts';

const T0 = Date.UTC(2026, 10, 29, 20, 0, 0);

test('intake: pool burst then 451 with a retry hint; per-credential buckets; queue mode books late', () => {
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
