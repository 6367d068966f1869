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

test('the id spells the milliseconds and the counter in Crockford base32, digit by digit', () => {
  // The plain encoding the packed one replaced (10 digits of milliseconds, 6 of the counter).
  const spell = (n: number, digits: number) => {
    let s = '';
    for (let i = 0; i < digits; i++, n = Math.floor(n / 32)) s = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[n % 32] + s;
    return s;
  };
  // Ascending and later than the ids of the tests above, so each starts a fresh counter.
  for (const t of [2e12, 2e12 + 2 ** 25 - 1, 2 ** 41 + 12345, 2 ** 45 + 2 ** 25, 2 ** 50 - 1]) {
    const id = newQueueId(t);
    const next = newQueueId(t); // same millisecond: the counter + 1
    assert.equal(id.slice(0, 10), spell(t, 10));
    assert.equal(next.slice(0, 10), spell(t, 10));
    const counter = parseInt([...id.slice(10)].map((c) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c).toString(32)).join(''), 32);
    assert.equal(id.slice(10), spell(counter, 6));
    assert.equal(next.slice(10), spell(counter + 1, 6));
  }
});
