// The final-outcome journal on a real queue directory: what the next start does with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore } from './store.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function states(s: QueueStore, id: string): Record<string, string> {
  return Object.fromEntries((s.get(id)?.recipients ?? []).map((r) => [r.recipient, r.state]));
}

test('a start applies journalled outcomes to inflight recipients only, and skips a torn last line', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const a = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['x@one.test', 'y@one.test', 'w@one.test'], body });
  const b = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['z@one.test'], body });
  s.claimDue(Date.now() + 1000, 10);
  s.recordAttempt(a, ['y@one.test'], { state: 'bounced' }, '550 no');
  s.flushOutcomes();
  // A relay killed now: x, w and z inflight. Its journal: x delivered, an entry for y that queue.db
  // has already (a different state, to show it is not applied again), z's line torn by a power cut.
  appendFileSync(join(dir, 'outcomes.log'), [
    JSON.stringify(['delivered', a, ['x@one.test'], '250 ok']),
    JSON.stringify(['delivered', a, ['y@one.test'], '250 stale']),
    JSON.stringify(['delivered', b, ['z@one.test'], '250 ok']).slice(0, 20),
  ].join('\n'));
  await s.close();
  // (close() writes what is pending and empties the journal; the lines above stand for a kill -9.)
  assert.equal(statSync(join(dir, 'outcomes.log')).size, 0, 'a clean stop leaves nothing to replay');
  appendFileSync(join(dir, 'outcomes.log'), [
    JSON.stringify(['delivered', a, ['x@one.test'], '250 ok']),
    JSON.stringify(['delivered', a, ['y@one.test'], '250 stale']),
    JSON.stringify(['delivered', b, ['z@one.test'], '250 ok']).slice(0, 20),
  ].join('\n'));
  const cli = new QueueStore(dir, { readOnlyRecovery: true });
  assert.deepEqual(states(cli, a), { 'x@one.test': 'inflight', 'y@one.test': 'bounced', 'w@one.test': 'inflight' }, "the CLI's connection replays nothing");
  await cli.close();

  const next = new QueueStore(dir);
  t.after(() => next.close());
  assert.deepEqual(states(next, a), { 'x@one.test': 'delivered', 'y@one.test': 'bounced', 'w@one.test': 'queued' }, 'x settled from the journal; y kept as queue.db has it; w, with no outcome, delivered again');
  assert.equal(next.get(a)!.recipients.find((r) => r.recipient === 'y@one.test')!.lastReply, '550 no');
  assert.deepEqual(states(next, b), { 'z@one.test': 'queued' }, 'a torn line settles nothing: z is delivered again');
});
