// The commit delay through a real relay (queue.commitDelayMs, queue.commitSiblings; issue 13):
// while another session is mid-DATA, a finished message's commit waits for it, so one fsync
// covers both; every message is still acknowledged and stored. The relay's count of sessions in
// DATA goes back to 0 however a DATA ends: aborted, reset, too big (552), too slow (421 4.4.2),
// refused by the data scanner (550).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { openSmtpText, type SmtpText } from '../support/smtp-text.ts';
import { workspace, startTestRelay, USER, PASSWORD } from '../support/relay-harness.ts';

const MAX_BYTES = 64 * 1024;
const ws = await workspace();
// Sessions on the main thread: the delay applies only there (with session threads it is off).
const relay = await startTestRelay(ws, {
  intake: { workerThreads: 0 },
  queue: { commitDelayMs: 100, commitSiblings: 1 },
  limits: { maxMessageBytes: MAX_BYTES, minDataRate: 1000, commandTimeoutMs: 1000 },
});
after(async () => {
  await relay.stop();
  rmSync(ws.dir, { recursive: true, force: true });
});

/** Waits for a condition the relay reaches on its own (a socket close seen, a commit held). */
async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An authenticated session on the alt listener (plaintext AUTH on loopback), after DATA's 354. */
async function inData(n: number): Promise<SmtpText> {
  const c = await openSmtpText(relay.port('alt'));
  c.socket.write('EHLO client.test\r\n');
  await c.waitFor(/^250 /m);
  c.socket.write(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`);
  await c.waitFor(/^235 /m);
  c.socket.write(`MAIL FROM:<${USER}>\r\nRCPT TO:<r${n}@example.net>\r\nDATA\r\n`);
  await c.waitFor(/^354 /m);
  return c;
}

const queued = /^250 2\.6\.0 Ok: queued as (\w+)/m;
const header = (n: number) => `From: <${USER}>\r\nTo: <r${n}@example.net>\r\nSubject: delay ${n}\r\n\r\n`;

test('a message ending while another session is mid-DATA shares that session\'s commit; both acknowledged and stored', { timeout: 30_000 }, async () => {
  const a = await inData(1);
  a.socket.write(header(1));
  await until(() => relay.sessionsInData() === 1, 'A in DATA');
  const b = await inData(2);
  const commits = relay.store.commits;
  const delayed = relay.store.delayedCommits;
  b.socket.write(`${header(2)}body of B\r\n.\r\n`);
  // B's commit holds for A (which is in DATA); then A ends its message.
  await until(() => relay.store.delayedCommits === delayed + 1, 'B\'s commit held');
  assert.equal(relay.store.commits, commits, 'nothing committed while held');
  assert.doesNotMatch(b.said(), queued, 'no 250 before the commit');
  a.socket.write('body of A\r\n.\r\n');
  const [textA, textB] = await Promise.all([a.waitFor(queued), b.waitFor(queued)]);
  assert.equal(relay.store.commits, commits + 1, 'one commit (one fsync) for both messages');
  for (const text of [textA, textB]) {
    const id = queued.exec(text)![1]!;
    assert.ok(relay.store.get(id), `${id} stored`);
  }
  assert.equal(relay.sessionsInData(), 0);
  for (const c of [a, b]) c.socket.end('QUIT\r\n');
});

test('a session that stays in DATA holds another\'s 250 no longer than the delay', { timeout: 30_000 }, async () => {
  const a = await inData(3);
  a.socket.write(header(3));
  await until(() => relay.sessionsInData() === 1, 'A in DATA');
  const b = await inData(4);
  const started = performance.now();
  b.socket.write(`${header(4)}body\r\n.\r\n`);
  const id = queued.exec(await b.waitFor(queued))![1]!;
  assert.ok(performance.now() - started >= 95, 'held for about the delay');
  assert.ok(relay.store.get(id));
  assert.equal(relay.sessionsInData(), 1, 'A is still in DATA');
  a.socket.destroy();
  await until(() => relay.sessionsInData() === 0, 'A gone');
  b.socket.end('QUIT\r\n');
});

test('the count of sessions in DATA goes back to 0 after aborted DATA, a reset, 552, 421 4.4.2 and 550', { timeout: 60_000 }, async () => {
  const queuedBefore = relay.store.counts();
  const ways: [string, (c: SmtpText) => Promise<void>][] = [
    ['client closes mid-DATA', async (c) => {
      c.socket.end();
      await once(c.socket, 'close');
    }],
    ['client resets mid-DATA', async (c) => {
      c.socket.resetAndDestroy();
      await once(c.socket, 'close');
    }],
    ['552 size refusal', async (c) => {
      c.socket.write(`${'x'.repeat(998)}\r\n`.repeat(Math.ceil(MAX_BYTES / 1000) + 10) + '.\r\n');
      assert.match(await c.waitFor(/^552 /m), /552 5\.3\.4/);
      c.socket.end('QUIT\r\n');
    }],
    ['421 4.4.2 data too slow', async (c) => {
      const drip = setInterval(() => c.socket.writable && c.socket.write('X-Slow: slow\r\n'), 200);
      try {
        assert.match(await c.waitFor(/^421 /m), /421 4\.4\.2/);
      } finally {
        clearInterval(drip);
      }
    }],
    ['550 bare LF', async (c) => {
      c.socket.write('Subject: lf\nbody\r\n.\r\n');
      assert.match(await c.waitFor(/^550 /m), /550 5\.6\.0/);
      c.socket.end('QUIT\r\n');
    }],
  ];
  let n = 10;
  for (const [what, end] of ways) {
    const c = await inData(n++);
    c.socket.write(header(n));
    await until(() => relay.sessionsInData() === 1, `in DATA before: ${what}`);
    await end(c);
    await until(() => relay.sessionsInData() === 0, `back to 0 after: ${what}`);
  }
  assert.deepEqual(relay.store.counts(), queuedBefore, 'none of them queued');
  // And the count is really 0: a message now is written at the end of its turn, not held.
  const delayed = relay.store.delayedCommits;
  const c = await inData(99);
  c.socket.write(`${header(99)}after\r\n.\r\n`);
  await c.waitFor(queued);
  assert.equal(relay.store.delayedCommits, delayed, 'not held: nobody is in DATA');
  c.socket.end('QUIT\r\n');
});
