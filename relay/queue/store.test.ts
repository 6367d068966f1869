// The queue store's hand-off of fresh mail (claim at birth) and its batched attempt outcomes, on a
// real SQLite file: what a relay would see after a restart, read through a second connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore, StoreError, type Adopter, type DueRecipient, type MessageClass } from './store.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An adopter that takes what `take` says and records every call. */
function recorder(take: (cls: MessageClass, domains: readonly string[]) => boolean) {
  const calls = { reserved: [] as [MessageClass, string[]][], adopted: [] as DueRecipient[], released: [] as [MessageClass, number][], queued: 0 };
  const adopter: Adopter = {
    reserve(cls, domains) {
      calls.reserved.push([cls, [...domains]]);
      return take(cls, domains);
    },
    adopted(due) {
      calls.adopted.push(...due);
    },
    released(cls, n) {
      calls.released.push([cls, n]);
    },
    queued() {
      calls.queued++;
    },
  };
  return { adopter, calls };
}

/** What a restarted relay would find: a second connection that reads without recovering. */
function states(dir: string, id: string): Record<string, string> {
  const s = new QueueStore(dir, { readOnlyRecovery: true });
  try {
    return Object.fromEntries((s.get(id)?.recipients ?? []).map((r) => [r.recipient, r.state]));
  } finally {
    void s.close();
  }
}

test('mail taken at birth is inflight once acknowledged, handed over after the fsync, and needs no claim', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const { adopter, calls } = recorder(() => true);
  s.setAdopter(adopter);
  const id = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['x@one.test', 'y@Two.test', 'x@one.test'], body, class: 'otp' });
  assert.deepEqual(calls.reserved, [['otp', ['one.test', 'two.test']]]);
  assert.deepEqual(calls.adopted.map((d) => [d.messageId, d.recipient, d.domain, d.class, d.attempts]), [
    [id, 'x@one.test', 'one.test', 'otp', 0],
    [id, 'y@Two.test', 'two.test', 'otp', 0],
  ]);
  assert.equal(calls.queued, 0);
  assert.deepEqual(states(dir, id), { 'x@one.test': 'inflight', 'y@Two.test': 'inflight' });
  assert.deepEqual(s.claimDue(Date.now() + 1000, 100), [], 'nothing left for the queue scan');
  await s.close();
  // A relay killed before delivering it queues it again at the next start: never lost.
  const again = new QueueStore(dir);
  assert.deepEqual(again.claimDue(Date.now() + 1000, 100).map((d) => d.recipient).sort(), ['x@one.test', 'y@Two.test']);
  await again.close();
});

test('mail not taken is queued and announced; mail held back by the intake is not offered', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const { adopter, calls } = recorder(() => false);
  s.setAdopter(adopter);
  const id = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['x@one.test'], body, class: 'bulk' });
  const later = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['y@one.test'], body, class: 'bulk', notBefore: Date.now() + 60_000 });
  assert.equal(calls.reserved.length, 1, 'only the message due now was offered');
  assert.equal(calls.queued, 2);
  assert.deepEqual(calls.adopted, []);
  assert.deepEqual([states(dir, id), states(dir, later)], [{ 'x@one.test': 'queued' }, { 'y@one.test': 'queued' }]);
  assert.deepEqual(s.claimDue(Date.now() + 1000, 100).map((d) => d.messageId), [id]);
  await s.close();
});

test('a failed commit releases what was reserved; nothing is handed over', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const { adopter, calls } = recorder(() => true);
  s.setAdopter(adopter);
  // The same queue id twice in one batch: the second INSERT fails and the batch is rolled back.
  const results = await Promise.allSettled([
    s.enqueue({ id: '0000000000AAAAAA', mailFrom: 'a@sender.test', recipients: ['x@one.test'], body, class: 'transactional' }),
    s.enqueue({ id: '0000000000AAAAAA', mailFrom: 'a@sender.test', recipients: ['y@one.test'], body, class: 'transactional' }),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  assert.deepEqual(calls.released, [['transactional', 1]]);
  assert.deepEqual(calls.adopted, []);
  assert.equal(s.messageCount(), 0);
  await s.close();
});

test('a failed fsync: the client is refused, the reservation released, the rows stay inflight until the next start queues them', async (t) => {
  const dir = tempDir(t);
  let failing = true;
  const s = new QueueStore(dir, {
    fsync: (fd, cb) => (failing ? setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }))) : import('node:fs').then((fs) => fs.fsync(fd, cb))),
  });
  const { adopter, calls } = recorder(() => true);
  s.setAdopter(adopter);
  await assert.rejects(s.enqueue({ id: '0000000000BBBBBB', mailFrom: 'a@sender.test', recipients: ['x@one.test'], body, class: 'otp' }), (err: unknown) => err instanceof StoreError && err.sqliteCode === 'EIO');
  assert.deepEqual(calls.released, [['otp', 1]]);
  assert.deepEqual(calls.adopted, []);
  failing = false;
  // The engine never got it, and the scan does not see inflight rows: it waits for the restart.
  assert.deepEqual(s.claimDue(Date.now() + 1000, 100), []);
  await s.close();
  assert.deepEqual(states(dir, '0000000000BBBBBB'), { 'x@one.test': 'inflight' });
  const again = new QueueStore(dir);
  // Committed but perhaps not durable, the client got a 4xx: delivered anyway (a possible duplicate, never a loss).
  assert.deepEqual(again.claimDue(Date.now() + 1000, 100).map((d) => d.recipient), ['x@one.test']);
  await again.close();
});

test('outcomes of one event-loop turn are written together; every one is recorded and finished messages go', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push(await s.enqueue({ mailFrom: 'a@sender.test', recipients: [`r${i}@one.test`, `q${i}@two.test`], body }));
  const due = s.claimDue(Date.now() + 1000, 100);
  assert.equal(due.length, 8);
  const retryAt = Date.now() + 3_600_000;
  // Message 0: both delivered. 1: one delivered, one deferred. 2: both bounced. 3: one at a time.
  s.recordAttempt(ids[0]!, ['r0@one.test', 'q0@two.test'], { state: 'delivered' }, '250 ok');
  s.recordAttempt(ids[1]!, ['r1@one.test'], { state: 'delivered' }, '250 ok');
  s.recordAttempt(ids[1]!, ['q1@two.test'], { state: 'queued', nextAttemptAt: retryAt }, '451 later');
  s.recordAttempt(ids[2]!, ['r2@one.test', 'q2@two.test'], { state: 'bounced' }, '550 no');
  s.recordAttempt(ids[3]!, ['r3@one.test'], { state: 'delivered' }, '250 ok');
  s.recordAttempt(ids[3]!, ['q3@two.test'], { state: 'delivered' }, '250 ok');
  // Another connection sees them once this turn is over.
  await new Promise((resolve) => setImmediate(resolve));
  const other = new QueueStore(dir, { readOnlyRecovery: true });
  assert.deepEqual(other.list().map((m) => m.id), [ids[1]]);
  assert.deepEqual(other.get(ids[1]!)!.recipients.map((r) => [r.recipient, r.state, r.attempts, r.lastReply]), [
    ['q1@two.test', 'queued', 1, '451 later'],
    ['r1@one.test', 'delivered', 1, '250 ok'],
  ]);
  await other.close();
  assert.equal(s.nextDueAt('transactional'), retryAt, 'the deferred recipient moved the next due time');
  await s.close();
});

test('reads through the store see outcomes not written yet; close writes them', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const id = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['a@one.test', 'b@one.test'], body });
  s.claimDue(Date.now() + 1000, 100);
  s.recordAttempt(id, ['a@one.test'], { state: 'delivered' }, '250 ok');
  assert.deepEqual(s.get(id)!.recipients.map((r) => r.state), ['delivered', 'inflight']);
  s.recordAttempt(id, ['b@one.test'], { state: 'queued', nextAttemptAt: 5 }, '451 later');
  assert.deepEqual(s.counts(), { queued: 1, inflight: 0, delivered: 1, bounced: 0 });
  s.claimDue(Date.now() + 1000, 100);
  s.recordAttempt(id, ['b@one.test'], { state: 'delivered' }, '250 ok');
  await s.close();
  assert.deepEqual(states(dir, id), {}, 'the message is gone');
});

test('nextDueAt follows queued mail, claims, postponements and deferred outcomes', async (t) => {
  const dir = tempDir(t);
  let now = 1_000_000;
  const s = new QueueStore(dir, { clock: () => now });
  assert.equal(s.nextDueAt('bulk'), undefined);
  const id = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['a@one.test'], body, class: 'bulk', notBefore: now + 500 });
  assert.equal(s.nextDueAt('bulk'), now + 500);
  now += 1000;
  assert.equal(s.claimDue(now, 10, 'bulk').length, 1);
  assert.equal(s.nextDueAt('bulk'), undefined);
  s.postpone([{ messageId: id, recipient: 'a@one.test', at: now + 7 }]);
  assert.equal(s.nextDueAt('bulk'), now + 7);
  assert.equal(s.claimDue(now + 7, 10, 'bulk').length, 1);
  assert.equal(s.nextDueAt('bulk'), undefined);
  s.recordAttempt(id, ['a@one.test'], { state: 'queued', nextAttemptAt: now + 99 }, '451 later');
  assert.equal(s.nextDueAt('bulk'), now + 99);
  assert.equal(s.nextDueAt('otp'), undefined);
  await s.close();
});

test('outcomes of the turn ride along with the intake commit, and are still written when that commit fails', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const done = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['a@one.test'], body });
  const later = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['b@one.test'], body });
  s.claimDue(Date.now() + 1000, 100);
  // With fresh mail in the same turn: one transaction for both.
  s.recordAttempt(done, ['a@one.test'], { state: 'delivered' }, '250 ok');
  const fresh = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['c@one.test'], body });
  const other = new QueueStore(dir, { readOnlyRecovery: true });
  assert.equal(other.get(done), undefined, 'the delivered message is gone');
  assert.ok(other.get(fresh));
  // With an intake commit that fails (the same queue id twice): the outcome is written anyway.
  s.recordAttempt(later, ['b@one.test'], { state: 'queued', nextAttemptAt: 42 }, '451 later');
  const refused = await Promise.allSettled([
    s.enqueue({ id: '0000000000CCCCCC', mailFrom: 'a@sender.test', recipients: ['x@one.test'], body }),
    s.enqueue({ id: '0000000000CCCCCC', mailFrom: 'a@sender.test', recipients: ['y@one.test'], body }),
  ]);
  assert.deepEqual(refused.map((r) => r.status), ['rejected', 'rejected']);
  assert.deepEqual(other.get(later)!.recipients.map((r) => [r.state, r.nextAttemptAt, r.lastReply]), [['queued', 42, '451 later']]);
  await other.close();
  await s.close();
});

test('outcomes riding along that fail never refuse the intake\'s mail; they are kept and written once they can be', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  const errors: Error[] = [];
  s.onOutcomeError = (err) => errors.push(err);
  const done = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['a@one.test'], body });
  s.claimDue(Date.now() + 1000, 100);
  // Another connection (an administrator, a broken disk) makes every delete of a message fail.
  const { DatabaseSync } = await import('node:sqlite');
  const admin = new DatabaseSync(join(dir, 'queue.db'));
  admin.exec(`CREATE TRIGGER no_delete BEFORE DELETE ON messages BEGIN SELECT RAISE(ABORT, 'no deletes today'); END`);
  s.recordAttempt(done, ['a@one.test'], { state: 'delivered' }, '250 ok');
  const fresh = await s.enqueue({ mailFrom: 'a@sender.test', recipients: ['c@one.test'], body });
  assert.ok(s.get(fresh), 'the fresh message is stored and acknowledged');
  assert.ok(errors.length >= 1 && /no deletes today/.test(errors[0]!.message), 'the outcome\'s own transaction failed and said so');
  assert.deepEqual(Object.values(states(dir, done)), ['inflight'], 'the outcome is not in queue.db yet');
  admin.exec(`DROP TRIGGER no_delete`);
  admin.close();
  assert.equal(s.flushOutcomes(), true);
  assert.equal(s.get(done), undefined, 'kept, and written once it could be');
  await s.close();
});

test('disk full: the intake is refused and its reservations released, outcomes of the same turns are kept and written once space returns', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { mkdirSync, statfsSync, writeFileSync, unlinkSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-store-'));
  const mnt = join(dir, 'small');
  mkdirSync(mnt);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt], { encoding: 'utf8' });
  t.after(() => {
    if (mount.status === 0) spawnSync('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });
  if (mount.status !== 0) {
    t.skip(`cannot mount a tmpfs here (${mount.stderr.trim() || 'needs root'})`);
    return;
  }
  const s = new QueueStore(mnt);
  const { adopter, calls } = recorder(() => true);
  s.setAdopter(adopter);
  const errors: Error[] = [];
  s.onOutcomeError = (err) => errors.push(err);
  const filler = join(mnt, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, statfsSync(mnt).bavail * statfsSync(mnt).bsize - 1_200_000)));
  const big = Buffer.alloc(90_000, 122);
  const acked: string[] = [];
  const deferred: string[] = [];
  let refused: unknown;
  for (let k = 0; k < 200 && !refused; k++) {
    // Each acknowledged message gets its (deferred) outcome in the turn of the next intake commit.
    const last = acked.at(-1);
    if (last) {
      s.recordAttempt(last, [`r@${last}.test`], { state: 'queued', nextAttemptAt: 7 }, '451 later');
      deferred.push(last);
    }
    const id = `00000000000${String(k).padStart(5, '0')}`;
    try {
      await s.enqueue({ id, mailFrom: 'a@sender.test', recipients: [`r@${id}.test`], body: big });
      acked.push(id);
    } catch (err) {
      refused = err;
    }
  }
  assert.ok(refused instanceof StoreError, `the disk filled up (${String(refused)})`);
  assert.ok(acked.length > 0);
  const rejected = calls.reserved.length - calls.adopted.length;
  assert.ok(rejected >= 1);
  assert.deepEqual(calls.released.reduce((n, [, k]) => n + k, 0), rejected, 'every reservation of a refused message was released');
  assert.deepEqual(calls.adopted.map((d) => d.messageId), acked, 'only acknowledged mail was handed over');
  t.diagnostic(`${acked.length} acknowledged, refused with ${(refused as StoreError).sqliteCode}; outcome transactions that failed meanwhile: ${errors.length}`);
  // Space returns: nothing recorded was lost.
  unlinkSync(filler);
  assert.equal(s.flushOutcomes(), true);
  for (const id of acked) {
    const r = s.get(id)!.recipients[0]!;
    assert.deepEqual([r.state, r.attempts], deferred.includes(id) ? ['queued', 1] : ['inflight', 0], id);
  }
  await s.close();
});
