// When an attempt's outcome reaches the disk (page cache: what survives a kill -9): with the
// event-loop turn's batch, final and deferred alike (docs/queue-durability.md says why not at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from './store.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

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
  s.recordAttempt(deferred, ['c@one.test'], { state: 'queued', nextAttemptAt: 42 }, '451 later');
  assert.equal(other.get(delivered)!.recipients[0]!.state, 'inflight', 'not written within the turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(other.get(delivered), undefined, 'the delivered message is gone with the turn');
  assert.equal(other.get(bounced), undefined, 'the bounced message is gone with the turn');
  assert.deepEqual(other.get(deferred)!.recipients.map((r) => [r.state, r.nextAttemptAt]), [['queued', 42]], 'written with the turn');
  await s.close();
});
