// How the relay's events reach feedback.db: journalled at the end of their turn, written at once
// by an idle relay, in transactions of at most 256 a turn apart (SMTP sessions get the turns in
// between), and by a busy one only when its 250 ms are up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../config/load.ts';
import { Feedback } from './feedback.ts';

const turn = () => new Promise((r) => setImmediate(r));

test('events: journalled each turn; to feedback.db at once when idle, 256 a transaction a turn apart; then after 250 ms', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-event-batches-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseRelayConfig({ hostname: 'relay.test', dataDir: dir, listeners: [{ name: 'sub', port: 0, tls: 'none' }], domains: [{ domain: 'shop.test' }] });
  const feedback = new Feedback({ config, background: true });
  t.after(() => feedback.close());
  const body = Buffer.from('From: <news@shop.test>\r\n\r\nhi\r\n');
  const inDb = () => feedback.events.query({ limit: 10_000 }).length;
  const journalLines = () => readFileSync(join(dir, 'feedback', 'events.log'), 'utf8').split('\n').filter(Boolean).length;

  const recipients = Array.from({ length: 600 }, (_, i) => `r${i}@rcpt.test`);
  feedback.accepted({ queueId: '01BATCHTEST00001', messageId: '<b1@shop.test>', recipients, mailFrom: 'news@shop.test', body, class: 'bulk', tags: [] });
  assert.equal(inDb(), 0, 'nothing before the turn ends');
  const counts: number[] = [];
  // Before the last chunk's write: the next batch comes 250 ms after that write (less the timers'
  // coarse clock: 200 ms is asserted).
  let beforeLastChunk = 0;
  for (let i = 0; i < 4; i++) {
    if (i === 2) beforeLastChunk = performance.now();
    await turn();
    counts.push(inDb());
  }
  assert.deepEqual(counts, [256, 512, 600, 600], 'idle: the batch at once, 256 a transaction, a turn apart');
  assert.equal(journalLines(), 600, 'all 600 journalled in the turn they were made');

  feedback.accepted({ queueId: '01BATCHTEST00002', messageId: '<b2@shop.test>', recipients: ['late@rcpt.test'], mailFrom: 'news@shop.test', body, class: 'bulk', tags: [] });
  await turn();
  assert.equal(journalLines(), 601, 'journalled at the end of its turn');
  assert.equal(inDb(), 600, 'busy (a write just now): it waits for its batch');
  while (inDb() < 601) await new Promise((r) => setTimeout(r, 5));
  const after = performance.now() - beforeLastChunk;
  assert.ok(after >= 200, `written ${Math.round(after)} ms after the last write`);
});
