import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ShapingLedger } from './ledger.ts';

const counter = (count: number) => ({ ip: '192.0.2.1', provider: '*', window: 'day' as const, counter: { start: 0, count } });

test('ShapingLedger: a turn\'s counter writes are one transaction with the latest values, read back by the next process', async () => {
  const db = join(mkdtempSync(join(tmpdir(), 'mailfleet-ledger-')), 'queue.db');
  const a = new ShapingLedger(db);
  a.saveCounters([counter(1)], [{ ip: '192.0.2.1', day: 20_000, sent: 1 }]);
  a.saveCounters([counter(2)], [{ ip: '192.0.2.1', day: 20_000, sent: 2 }]);
  const reader = new ShapingLedger(db, { readOnly: true });
  assert.deepEqual(reader.counters(), [], 'not written within the turn');
  await nextTurn();
  assert.deepEqual(reader.counters().map((r) => r.counter.count), [2]);
  assert.deepEqual([...reader.sentPerDay().get('192.0.2.1')!], [[20_000, 2]]);
  // What is pending at close is written before the database closes.
  a.saveCounters([counter(3)]);
  a.close();
  assert.deepEqual(reader.counters().map((r) => r.counter.count), [3]);
  reader.close();
  await nextTurn(); // the immediate scheduled before close finds nothing to do and does not throw
});
