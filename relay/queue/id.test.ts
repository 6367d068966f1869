import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQueueId, newQueueId } from './id.ts';

test('ids of one millisecond are all distinct and keep their order', () => {
  const ids = Array.from({ length: 100_000 }, () => newQueueId(1_700_000_000_000));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
  assert.ok(ids.every(isQueueId));
});

test('ids sort by creation time, also when the clock steps back', () => {
  const a = newQueueId(1_800_000_000_000);
  const b = newQueueId(1_800_000_000_001);
  const c = newQueueId(1_799_999_999_000); // stepped back: still after b
  assert.ok(a < b && b < c, `${a} ${b} ${c}`);
  assert.equal(b.slice(0, 10), c.slice(0, 10));
});
