// The counts helpers spell the fields out one by one (for speed): they must stay COUNT_FIELDS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COUNT_FIELDS, emptyCounts, addCounts, addCountsArray, countsArray, type Counts } from './contract.ts';

test('emptyCounts, addCounts, addCountsArray and countsArray cover exactly COUNT_FIELDS, in order', () => {
  assert.deepEqual(Object.keys(emptyCounts()), [...COUNT_FIELDS]);
  const c = Object.fromEntries(COUNT_FIELDS.map((f, i) => [f, i + 1])) as Counts;
  assert.deepEqual(addCounts(emptyCounts(), c), c);
  assert.deepEqual(addCounts(addCounts(emptyCounts(), c), { delivered: 5 }), { ...c, delivered: c.delivered + 5 });
  assert.deepEqual(countsArray(c), COUNT_FIELDS.map((_, i) => i + 1));
  assert.deepEqual(addCountsArray(emptyCounts(), countsArray(c)), c);
  assert.deepEqual(addCountsArray(addCountsArray(emptyCounts(), countsArray(c)), countsArray(c), -1), emptyCounts());
});
