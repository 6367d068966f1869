// A queue that fills and drains again and again (a campaign a week) reuses the space of delivered
// mail: queue.db does not grow from one cycle to the next (issue 17; the million-message version is
// `npm run bench -- --only backlog`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from './store.ts';

const body = Buffer.alloc(4096, 97);

test('three fill-and-drain cycles: queue.db stays the size of one backlog', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-space-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sizes: number[] = [];
  for (let cycle = 0; cycle < 3; cycle++) {
    const s = new QueueStore(dir);
    await Promise.all(Array.from({ length: 1500 }, (_, i) => s.enqueue({ mailFrom: 'a@sender.test', recipients: [`u${cycle}.${i}@one.test`], body, class: 'bulk' })));
    for (;;) {
      const due = s.claimDue(Date.now() + 1000, 500, 'bulk');
      if (due.length === 0) break;
      for (const d of due) s.recordAttempt(d.messageId, [d.recipient], { state: 'delivered' }, '250 ok');
    }
    assert.deepEqual(s.counts(), { queued: 0, inflight: 0, delivered: 0, bounced: 0 }, 'drained');
    await s.close();
    sizes.push(statSync(join(dir, 'queue.db')).size);
  }
  assert.ok(sizes[0]! > 1500 * 4096, `the first backlog took its room (${sizes[0]} bytes)`);
  assert.ok(sizes[2]! <= sizes[0]! * 1.05, `sizes after each cycle: ${sizes.join(', ')} bytes`);
});

test('bodies stored in parts: three fill-and-drain cycles reuse the space of the delivered parts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-space-parts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const large = Buffer.alloc(1024 * 1024 + 5, 98);
  const sizes: number[] = [];
  for (let cycle = 0; cycle < 3; cycle++) {
    const s = new QueueStore(dir);
    await Promise.all(Array.from({ length: 24 }, (_, i) => s.enqueue({ mailFrom: 'a@sender.test', recipients: [`p${cycle}.${i}@one.test`], body: large, class: 'bulk' })));
    for (const d of s.claimDue(Date.now() + 1000, 100, 'bulk')) s.recordAttempt(d.messageId, [d.recipient], { state: 'delivered' }, '250 ok');
    assert.equal(s.messageCount(), 0, 'drained');
    await s.close();
    sizes.push(statSync(join(dir, 'queue.db')).size);
  }
  assert.ok(sizes[0]! > 24 * large.length, `the first backlog took its room (${sizes[0]} bytes)`);
  assert.ok(sizes[2]! <= sizes[0]! * 1.05, `sizes after each cycle: ${sizes.join(', ')} bytes`);
});
