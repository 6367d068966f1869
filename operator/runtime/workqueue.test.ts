import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue, RateLimiter } from './workqueue.ts';
import { ManualClock } from './clock.ts';

test('adding a key many times queues it once', async () => {
  const q = new WorkQueue({ clock: new ManualClock() });
  for (let i = 0; i < 10; i++) q.add('ns/a');
  q.add('ns/b');
  assert.equal(q.len(), 2);
  assert.equal(await q.get(), 'ns/a');
  assert.equal(await q.get(), 'ns/b');
  assert.equal(q.len(), 0);
});

test('a key added while it is processed is re-queued once, after done()', async () => {
  const q = new WorkQueue({ clock: new ManualClock() });
  q.add('k');
  const k = await q.get();
  assert.equal(k, 'k');
  q.add('k');
  q.add('k');
  // Not handed to a second worker while the first holds it.
  assert.equal(q.len(), 0);
  q.done('k');
  assert.equal(q.len(), 1);
  assert.equal(await q.get(), 'k');
  q.done('k');
  assert.equal(q.len(), 0);
});

test('a waiting get() receives the next key added', async () => {
  const q = new WorkQueue({ clock: new ManualClock() });
  const p = q.get();
  q.add('x');
  assert.equal(await p, 'x');
  assert.ok(q.isProcessing('x'));
});

test('addAfter waits for the clock; the earliest delay per key wins', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  q.addAfter('k', 1000);
  q.addAfter('k', 5000);
  q.addAfter('k', 200);
  clock.advance(199);
  assert.equal(q.len(), 0);
  clock.advance(1);
  assert.equal(q.len(), 1);
  clock.advance(10_000);
  assert.equal(q.len(), 1, 'the superseded timers do not add it again');
  assert.equal(clock.pending(), 0);
});

test('per-key exponential backoff, reset by forget()', () => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock, baseDelayMs: 100, maxDelayMs: 1000, qps: 1000, burst: 1000 });
  assert.equal(q.addRateLimited('a'), 100);
  assert.equal(q.addRateLimited('a'), 200);
  assert.equal(q.addRateLimited('a'), 400);
  assert.equal(q.addRateLimited('a'), 800);
  assert.equal(q.addRateLimited('a'), 1000, 'capped');
  assert.equal(q.retries('a'), 5);
  assert.equal(q.addRateLimited('b'), 100, 'other keys unaffected');
  q.forget('a');
  assert.equal(q.retries('a'), 0);
  assert.equal(q.addRateLimited('a'), 100);
});

test('the overall token bucket throttles a burst of failures across keys', () => {
  const rl = new RateLimiter({ baseDelayMs: 1, maxDelayMs: 1000, qps: 10, burst: 3 });
  const now = 0;
  assert.equal(rl.when('a', now), 1);
  assert.equal(rl.when('b', now), 1);
  assert.equal(rl.when('c', now), 1);
  // Bucket empty: the 4th waits one token (100 ms at 10/s), the 5th two.
  assert.equal(rl.when('d', now), 100);
  assert.equal(rl.when('e', now), 200);
  // Refill after a second.
  assert.equal(rl.when('f', 2000), 1);
});

test('shutdown releases waiting workers and drops delayed keys', async () => {
  const clock = new ManualClock();
  const q = new WorkQueue({ clock });
  const p = q.get();
  q.addAfter('later', 1000);
  q.shutdown();
  assert.equal(await p, undefined);
  assert.equal(await q.get(), undefined);
  q.add('x');
  assert.equal(q.len(), 0);
  assert.equal(clock.pending(), 0);
});

test('queue depth is reported', async () => {
  const depths: number[] = [];
  const q = new WorkQueue({ clock: new ManualClock(), onDepth: (d) => depths.push(d) });
  q.add('a');
  q.add('b');
  await q.get();
  assert.deepEqual(depths, [1, 2, 1]);
});
