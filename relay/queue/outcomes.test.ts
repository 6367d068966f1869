// When an attempt's outcome reaches the disk (page cache: what survives a kill -9): a final one in
// the journal at once and in queue.db with its batch (FINAL_BATCH_MS, or the turn when a deferral
// is among them); a deferral with the event-loop turn (docs/queue-durability.md, "Outcomes").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from './store.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

function journalIds(dir: string): string[] {
  return readFileSync(join(dir, 'outcomes.log'), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as string[])[1]!);
}

test('outcomes are on disk when the turn ends, as another connection (the next process) reads the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-outcomes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = new QueueStore(dir);
  const delivered = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['a@one.test'], body });
  const bounced = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['b@one.test'], body });
  const deferred = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['c@one.test'], body });
  assert.equal(s.claimDue(Date.now() + 1000, 10).length, 3);
  const other = new QueueStore(dir, { readOnlyRecovery: true });
  t.after(() => other.close());
  // Read by another connection in the same turn, as the next process would read the file.
  s.recordAttempt(delivered, ['a@one.test'], { state: 'delivered' }, '250 ok');
  s.recordAttempt(bounced, ['b@one.test'], { state: 'bounced' }, '550 no');
  assert.deepEqual(journalIds(dir), [delivered, bounced], 'final outcomes are journalled at once');
  s.recordAttempt(deferred, ['c@one.test'], { state: 'queued', nextAttemptAt: 42 }, '451 later');
  assert.deepEqual(journalIds(dir), [delivered, bounced], 'a deferral is not journalled');
  assert.equal(other.get(delivered)!.recipients[0]!.state, 'inflight', 'not written within the turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(other.get(delivered), undefined, 'the delivered message is gone with the turn (a deferral was among them)');
  assert.equal(other.get(bounced), undefined, 'the bounced message is gone with the turn');
  assert.deepEqual(other.get(deferred)!.recipients.map((r) => [r.state, r.nextAttemptAt]), [['queued', 42]], 'written with the turn');
  await s.close();
});

test('final outcomes alone wait for their batch (journalled meanwhile), and reads through the store see them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-outcomes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = new QueueStore(dir);
  const ids = await Promise.all([1, 2, 3].map((i) => s.enqueue({ mailFrom: 'a@sender.test', recipients: [`r${i}@one.test`], body })));
  s.claimDue(Date.now() + 1000, 10);
  const other = new QueueStore(dir, { readOnlyRecovery: true });
  t.after(() => other.close());
  s.recordAttempt(ids[0]!, ['r1@one.test'], { state: 'delivered' }, '250 ok');
  s.recordAttempt(ids[1]!, ['r2@one.test'], { state: 'delivered' }, '250 ok');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(other.get(ids[0]!)!.recipients[0]!.state, 'inflight', 'not in queue.db after the turn…');
  assert.deepEqual(journalIds(dir), [ids[0], ids[1]], '…but journalled: a kill -9 keeps them');
  const deadline = Date.now() + 5000;
  while (other.get(ids[0]!) !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(other.get(ids[0]!), undefined, 'in queue.db with their batch');
  s.recordAttempt(ids[2]!, ['r3@one.test'], { state: 'delivered' }, '250 ok');
  assert.equal(s.get(ids[2]!), undefined, 'a read through the store writes what is pending first');
  await s.close();
  assert.equal(readFileSync(join(dir, 'outcomes.log'), 'utf8'), '', 'a clean stop leaves no journal to replay');
});

test('claims and due times need no transaction for pending final outcomes (they change no queued recipient), but write a pending deferral first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-outcomes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const s = new QueueStore(dir);
  const [done, later, waiting] = await Promise.all([1, 2, 3].map((i) => s.enqueue({ mailFrom: 'a@sender.test', recipients: [`r${i}@one.test`], body })));
  assert.equal(s.claimDue(Date.now() + 1000, 2).length, 2, 'the first two are inflight, the third waits');
  const other = new QueueStore(dir, { readOnlyRecovery: true });
  t.after(() => other.close());
  s.recordAttempt(done!, ['r1@one.test'], { state: 'delivered' }, '250 ok');
  const due = s.nextDueAt('transactional');
  assert.deepEqual(s.claimDue(Date.now() + 1000, 10).map((d) => d.messageId), [waiting], 'the claim takes what is queued, as it would with the outcome written');
  assert.ok(due !== undefined);
  assert.equal(other.get(done!)!.recipients[0]!.state, 'inflight', 'the final outcome still waits for its batch (journalled)');
  assert.deepEqual(journalIds(dir), [done]);
  // A deferral puts its recipient back in the queue: due times and claims see it at once.
  s.recordAttempt(later!, ['r2@one.test'], { state: 'queued', nextAttemptAt: 7 }, '451 later');
  assert.equal(s.nextDueAt('transactional'), 7);
  assert.equal(other.get(done!), undefined, 'written with the deferral, in one transaction');
  assert.deepEqual(s.claimDue(10, 10).map((d) => d.messageId), [later]);
  await s.close();
});
