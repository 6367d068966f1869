import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryCounters, HOUR_MS, RETAIN_HOURS } from './counters.ts';

const key = { ip: '192.0.2.1', provider: 'gmail', domain: 'brand.test', class: 'bulk' as const };

test('counters are kept per UTC hour, survive a reopen (same instance), and old hours are dropped', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'mailfleet-counters-')), 'queue.db');
  let now = Date.UTC(2026, 11, 6, 10, 59, 0);
  let c = new DeliveryCounters(file, { clock: () => now });
  const instance = c.instance;
  c.add(key, ['attempted', 'delivered'], 3);
  c.add(key, ['attempted', 'bouncedHard']);
  // Unflushed counts already show.
  assert.deepEqual(c.buckets(now).map((b) => [b.hour, b.attempted, b.delivered, b.bouncedHard]), [['2026-12-06T10:00:00.000Z', 4, 3, 1]]);
  now += 2 * 60_000; // 11:01, the next hour
  c.add({ ...key, class: 'otp' }, ['attempted', 'deferred', 'deferredPolicy']);
  c.close();

  c = new DeliveryCounters(file, { clock: () => now });
  assert.equal(c.instance, instance, 'the same store keeps its identity');
  c.add(key, ['attempted', 'delivered']);
  const b = c.buckets(now - 2 * HOUR_MS);
  assert.deepEqual(b.map((x) => [x.hour, x.class, x.attempted, x.delivered, x.deferred, x.deferredPolicy]), [
    ['2026-12-06T10:00:00.000Z', 'bulk', 4, 3, 0, 0],
    ['2026-12-06T11:00:00.000Z', 'bulk', 1, 1, 0, 0],
    ['2026-12-06T11:00:00.000Z', 'otp', 1, 0, 1, 1],
  ]);
  // Reading twice gives the same numbers (the reader's polls are idempotent).
  assert.deepEqual(c.buckets(now - 2 * HOUR_MS), b);
  now += RETAIN_HOURS * HOUR_MS;
  c.add(key, ['attempted']);
  c.flush();
  assert.deepEqual(c.buckets(0).map((x) => x.hour), ['2026-12-08T11:00:00.000Z']);
  c.close();

  const fresh = new DeliveryCounters(join(mkdtempSync(join(tmpdir(), 'mailfleet-counters-')), 'queue.db'), { clock: () => now });
  assert.notEqual(fresh.instance, instance, 'a new volume is a new instance');
  fresh.close();
});
