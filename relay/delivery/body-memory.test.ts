import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryBodyMemory, SMALL_BODY_BYTES } from './body-memory.ts';

const MiB = 1024 * 1024;

test('bodies are read while less than the limit is held; a large one then waits for a release, one at a time', async () => {
  const m = new DeliveryBodyMemory(() => 16 * MiB);
  let asked = 0;
  assert.equal(m.admit(() => (asked++, 25 * MiB)), undefined, 'nothing held: read at once, size not asked');
  assert.equal(asked, 0);
  m.hold(25 * MiB);
  const order: string[] = [];
  const second = m.admit(() => 25 * MiB)!.then(() => order.push('second'));
  const third = m.admit(() => 20 * MiB)!.then(() => order.push('third'));
  assert.equal(m.admit(() => SMALL_BODY_BYTES), undefined, 'a small body never waits behind large ones');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'both large bodies wait while 25 MiB are held');
  m.release(25 * MiB);
  await second;
  m.hold(25 * MiB);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['second'], 'the next waits until the first let in holds its body and lets it go');
  m.release(25 * MiB);
  await third;
  assert.deepEqual(order, ['second', 'third']);
});
