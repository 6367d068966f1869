// The commit delay (queue.commitDelayMs + queue.commitSiblings, like PostgreSQL's commit_delay and
// commit_siblings) on a real queue file: a commit whose turn comes while sessions are mid-DATA
// waits for them (or the delay) so one fsync covers their messages, and still acknowledges each
// message only after the fsync that covers it. The intake's count is the real one
// (relay/intake/data-sessions.ts); the sessions entering and leaving DATA are this test's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { fsync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore, type MessageClass } from './store.ts';
import { DataSessionCount } from '../intake/data-sessions.ts';

const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
const LONG = 60_000;

function open(t: { after(fn: () => void | Promise<void>): void }, opts: { delayMs: number; siblings?: number; fsync?: QueueStoreFsync }) {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-commit-delay-'));
  const store = new QueueStore(dir, opts.fsync ? { fsync: opts.fsync } : {});
  const sessions = new DataSessionCount();
  store.setCommitDelay({ delayMs: opts.delayMs, siblings: opts.siblings ?? 1, sessions });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, sessions };
}
type QueueStoreFsync = NonNullable<ConstructorParameters<typeof QueueStore>[1]>['fsync'];

const msg = (n: number, cls?: MessageClass) => ({ mailFrom: 'a@sender.test', recipients: [`r${n}@one.test`], body, ...(cls ? { class: cls } : {}) });

/**
 * Whether `p` settled within `ms`. Positives use 10 s against a 60 s delay (a commit without
 * delay is one turn plus an fsync, however loaded the machine); negatives a short look.
 */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = p.then(() => true as const, () => true as const);
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}
const soon = (p: Promise<unknown>) => settledWithin(p, 10_000);
const notYet = async (p: Promise<unknown>) => !(await settledWithin(p, 100));

test('a commit waits for the session mid-DATA and one fsync covers both messages', async (t) => {
  const { store, sessions } = open(t, { delayMs: LONG });
  const leaveA = sessions.enter();
  const b = store.enqueue(msg(1));
  assert.ok(await notYet(b), 'B waits while A is in DATA');
  assert.equal(store.commits, 0);
  // A's message arrives: it leaves DATA and enqueues in the same turn (as the intake does).
  leaveA();
  const a = store.enqueue(msg(2));
  const [idB, idA] = await Promise.all([b, a]);
  assert.equal(store.commits, 1, 'one commit for both');
  assert.equal(store.delayedCommits, 1);
  assert.equal(sessions.count, 0);
  assert.ok(store.get(idA) && store.get(idB), 'both stored');
});

test('with no session in DATA, or fewer than commitSiblings, nothing waits', async (t) => {
  const { store, sessions } = open(t, { delayMs: LONG, siblings: 2 });
  assert.ok(await soon(store.enqueue(msg(1))), 'none in DATA: written at the end of the turn');
  const leave = sessions.enter();
  assert.ok(await soon(store.enqueue(msg(2))), 'one in DATA, siblings 2: no wait');
  assert.equal(store.delayedCommits, 0);
  leave();
});

test('the delay bounds the wait when the session stays in DATA', async (t) => {
  const { store, sessions } = open(t, { delayMs: 30 });
  const leave = sessions.enter();
  const started = performance.now();
  await store.enqueue(msg(1));
  assert.ok(performance.now() - started >= 29, 'held for the delay');
  assert.equal(sessions.count, 1, 'the session is still in DATA');
  assert.equal(store.commits, 1);
  leave();
});

test('sessions that enter DATA after the turn came are not waited for', async (t) => {
  const { store, sessions } = open(t, { delayMs: LONG });
  const leaveA = sessions.enter();
  const b = store.enqueue(msg(1));
  assert.ok(await notYet(b));
  const leaveC = sessions.enter();
  leaveA();
  leaveA(); // leaving twice counts once
  assert.equal(sessions.count, 1);
  await b;
  assert.equal(sessions.count, 1, 'C still in DATA, B acknowledged');
  leaveC();
  assert.equal(sessions.count, 0);
});

test('otp never waits: alone, or arriving while a batch is held (the held batch goes with it)', async (t) => {
  const { store, sessions } = open(t, { delayMs: LONG });
  const leave = sessions.enter();
  assert.ok(await soon(store.enqueue(msg(1, 'otp'))), 'otp written at the end of its turn');
  assert.equal(store.delayedCommits, 0);
  const held = store.enqueue(msg(2, 'bulk'));
  assert.ok(await notYet(held), 'bulk waits for the session');
  const otp = store.enqueue(msg(3, 'otp'));
  assert.ok(await soon(Promise.all([held, otp])), 'the otp releases the held batch');
  leave();
});

test('shutdown writes a held batch at once', async (t) => {
  const { store, sessions } = open(t, { delayMs: LONG });
  sessions.enter();
  const held = store.enqueue(msg(1));
  assert.ok(await notYet(held));
  await store.close();
  assert.ok(await soon(held));
});

test('a held batch is acknowledged only after the fsync that covers it', async (t) => {
  const fsyncs = new EventEmitter();
  const waiting: (() => void)[] = [];
  const slowFsync: QueueStoreFsync = (fd, cb) => {
    waiting.push(() => fsync(fd, cb));
    fsyncs.emit('held');
  };
  const { store, sessions } = open(t, { delayMs: LONG, fsync: slowFsync });
  const leaveA = sessions.enter();
  const b = store.enqueue(msg(1));
  assert.ok(await notYet(b));
  assert.equal(waiting.length, 0, 'no fsync while held');
  const fsyncing = once(fsyncs, 'held');
  leaveA();
  const a = store.enqueue(msg(2));
  await fsyncing;
  assert.ok(await notYet(Promise.race([a, b])), 'committed, not yet acknowledged: the fsync runs');
  for (const go of waiting.splice(0)) go();
  await Promise.all([a, b]);
  assert.equal(store.commits, 1);
});

test('commitDelayMs 0 turns the delay off', async (t) => {
  const { store, sessions } = open(t, { delayMs: 0 });
  const leave = sessions.enter();
  assert.ok(await soon(store.enqueue(msg(1))));
  assert.equal(store.delayedCommits, 0);
  leave();
});
