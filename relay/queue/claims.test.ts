// Claims that skip full domains (the scheduler holds enough of them) under a deep backlog at one
// receiver: the other domains' mail is found in due order without reading past that backlog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from './store.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

function tempStore(t: { after(fn: () => void | Promise<void>): void }, clock: () => number): QueueStore {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-claims-'));
  const store = new QueueStore(dir, { clock });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

test('a claim past a full domain behind a deep backlog takes the other domains oldest first, as a plain claim would', async (t) => {
  let now = 1_000;
  const store = tempStore(t, () => now);
  // 5,000 at the full domain first (more than the due window a claim reads in order), then three
  // other domains interleaved at later times, one of them not due yet.
  await Promise.all(Array.from({ length: 5000 }, (_, i) => store.enqueue({ mailFrom: 'a@x.test', recipients: [`u${i}@big.test`], body, class: 'bulk' })));
  const expected: string[] = [];
  for (let i = 0; i < 30; i++) {
    now = 2_000 + i;
    const d = ['a.test', 'b.test', 'c.test'][i % 3]!;
    await store.enqueue({ mailFrom: 'a@x.test', recipients: [`v${i}@${d}`], body, class: 'bulk', ...(d === 'c.test' ? { notBefore: 100_000 } : {}) });
    if (d !== 'c.test') expected.push(`v${i}@${d}`);
  }
  now = 5_000;
  const first = store.claimDue(now, 7, 'bulk', ['big.test']);
  assert.deepEqual(first.map((d) => d.recipient), expected.slice(0, 7), 'oldest first across the other domains; the one not due stays');
  const rest = store.claimDue(now, 100, 'bulk', ['big.test', 'a.test']);
  assert.deepEqual(rest.map((d) => d.recipient), expected.slice(7).filter((r) => r.endsWith('@b.test')));
  assert.equal(store.nextDueAt('bulk', ['big.test', 'a.test', 'b.test']), 100_000, 'the next due time outside the full domains is c.test\'s');
  assert.equal(store.claimDue(now, 100, 'bulk', ['big.test', 'a.test', 'b.test']).length, 0);
  // Without exclusions the backlog is next, in arrival order.
  assert.deepEqual(store.claimDue(now, 3, 'bulk').map((d) => d.recipient), ['u0@big.test', 'u1@big.test', 'u2@big.test']);
});

test('with a few due recipients the claim past full domains is answered from the due order alone', async (t) => {
  const now = 1_000;
  const store = tempStore(t, () => now);
  for (const r of ['x1@big.test', 'y1@small.test', 'x2@big.test', 'y2@small.test']) await store.enqueue({ mailFrom: 'a@x.test', recipients: [r], body, class: 'bulk' });
  assert.deepEqual(store.claimDue(now, 10, 'bulk', ['big.test']).map((d) => d.recipient), ['y1@small.test', 'y2@small.test']);
  assert.equal(store.nextDueAt('bulk', ['big.test']), undefined, 'nothing else queued outside big.test');
  assert.equal(store.nextDueAt('bulk'), now);
});
