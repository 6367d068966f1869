import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressFilter } from './filter.ts';
import { SuppressionStore, VERSION_CHECK_MS, createSuppressionTables } from './store.ts';
import { DEFAULT_SUPPRESSION_POLICY } from './rules.ts';

test('the filter never says "not added" of an added address, and says "maybe" of about 1 % of others', () => {
  const f = new AddressFilter(50_000);
  for (let i = 0; i < 50_000; i++) f.add(`user${i}@example.com`);
  for (let i = 0; i < 50_000; i++) assert.equal(f.mayContain(`user${i}@example.com`), true, `user${i}`);
  let maybe = 0;
  for (let i = 0; i < 100_000; i++) if (f.mayContain(`other${i}@example.net`)) maybe++;
  assert.ok(maybe < 2_000, `${maybe} of 100,000 unknown addresses said maybe`);
  assert.equal(f.full, false);
  for (let i = 0; i < 50_001; i++) f.add(`more${i}@example.org`);
  assert.equal(f.full, true, 'past twice its capacity it asks to be rebuilt');
});

/** Polls `f` until it is true (another connection's write is seen within VERSION_CHECK_MS). */
async function within(ms: number, f: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!f()) {
    assert.ok(performance.now() < until, `not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the store sees entries written by its own connection at once, by another connection (the CLI on the file) within VERSION_CHECK_MS, and by the fleet; soft history likewise', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mf-filter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const open = () => {
    const db = new DatabaseSync(join(dir, 'feedback.db'), { timeout: 5_000 });
    db.exec('PRAGMA journal_mode=WAL');
    createSuppressionTables(db);
    return db;
  };
  const relayDb = open();
  const store = new SuppressionStore(relayDb, { fleet: false, policy: DEFAULT_SUPPRESSION_POLICY });
  const entry = (address: string) => ({ address, scope: '*', reason: 'hard-bounce' as const, detail: '550 5.1.1', sourceQueueId: null, sourceEventId: null, firstSeen: 1, lastSeen: 1, expiresAt: null });
  // Built (empty) by the first lookup.
  assert.equal(store.check('a@example.com', 'example.com', 'bulk', 10), undefined);
  store.add([entry('a@example.com')]);
  assert.equal(store.check('A@Example.com', 'example.com', 'bulk', 10)?.reason, 'hard-bounce');

  // Another connection, as `mailfleet suppressions add --data-dir` while the relay runs.
  const cli = new SuppressionStore(open(), { fleet: false, policy: DEFAULT_SUPPRESSION_POLICY });
  cli.add([entry('b@example.com')]);
  await within(VERSION_CHECK_MS + 1_000, () => store.check('b@example.com', 'example.com', 'transactional', 10)?.reason === 'hard-bounce');

  store.applyFleet([{ ...entry('c@example.com'), removed: false }], 7);
  assert.equal(store.check('c@example.com', 'example.com', 'bulk', 10)?.reason, 'hard-bounce');

  assert.equal(store.softHistory('d@example.com', '*'), undefined);
  store.setSoftHistory('d@example.com', '*', { count: 1, firstAt: 5 });
  assert.deepEqual(store.softHistory('d@example.com', '*'), { count: 1, firstAt: 5 });
  cli.setSoftHistory('e@example.com', '*', { count: 2, firstAt: 6 });
  await within(VERSION_CHECK_MS + 1_000, () => store.softHistory('e@example.com', '*')?.count === 2);
  assert.equal(store.check('z@example.com', 'example.com', 'bulk', 10), undefined);
});
