// Intake memory is bounded whatever the concurrent sizes (issue 17): bodies past 128 KiB go to a
// spool file as they arrive and are stored in parts from it (no copy in memory, no budget), so more
// large messages at once than the budget holds are all accepted (they used to livelock: each took
// a slice, none could finish, all got 451); a body read whole (a header section past 1 MiB) takes
// its copy from the budget and, when it waits too long for room, gets 451 4.3.1 and is accepted
// when retried; an oversized body is dropped as it arrives; the budget
// is whole again afterwards and no spool file stays behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { openSmtpText } from '../support/smtp-text.ts';
import { workspace, startTestRelay, USER, PASSWORD } from '../support/relay-harness.ts';
import { spoolDirOf } from '../../relay/intake/incoming-body.ts';

const ws = await workspace();
const MiB = 1024 * 1024;
const WAIT_MS = 3000;
// commandTimeoutMs below the wait: a client waiting for its reply is not a slow client.
const relay = await startTestRelay(ws, { limits: { intakeMemoryBytes: MiB, maxMessageBytes: 2 * MiB, intakeMemoryWaitMs: WAIT_MS, commandTimeoutMs: 1000 } });
after(async () => {
  await relay.stop();
  rmSync(ws.dir, { recursive: true, force: true });
});

/** An authenticated session on the alt listener up to the 354 of DATA. */
async function openData() {
  const { socket, waitFor, said } = await openSmtpText(relay.port('alt'));
  socket.write('EHLO big.test\r\n');
  await waitFor(/^250 /m);
  socket.write(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}\r\n`);
  await waitFor(/^235 /m);
  socket.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n');
  await waitFor(/^354 /m);
  return { socket, waitFor, said };
}

const lines = (bytes: number, tag = 'big') => Buffer.from(`From: <big@author.test>\r\nSubject: ${tag}\r\n\r\n${`${'x'.repeat(998)}\r\n`.repeat(Math.ceil(bytes / 1000))}`);
const held = async () => (await relay.metrics.registry.getSingleMetric('mailfleet_intake_held_bytes')!.get()).values[0]?.value;
const queuedId = (reply: string) => /^250 2\.6\.0 Ok: queued as (\S+)/m.exec(reply)?.[1];

test('four 700 KiB messages at once against a 1 MiB budget are all accepted whole (no livelock)', async () => {
  const bodies = [0, 1, 2, 3].map((i) => lines(700 * 1024, `big ${i}`));
  const sessions = await Promise.all(bodies.map(() => openData()));
  // All four bodies arrive together: 2.8 MiB against the 1 MiB budget.
  sessions.forEach((s, i) => s.socket.write(Buffer.concat([bodies[i]!, Buffer.from('.\r\n')])));
  const replies = await Promise.all(sessions.map((s) => s.waitFor(/^(250|4\d\d|5\d\d) [^\r\n]*\r\n(?![\s\S])/m)));
  for (const [i, reply] of replies.entries()) {
    const id = queuedId(reply);
    assert.ok(id, `message ${i} accepted: ${reply.split('\r\n').at(-2)}`);
    assert.ok(relay.store.body(id)!.subarray(-bodies[i]!.length).equals(bodies[i]!), `message ${i} is stored byte for byte`);
    // Its accepted event read the author's domain (on a session thread the body itself went to the main thread).
    let meta;
    for (let t = 0; t < 200 && !(meta = (relay.feedback.flush(), relay.feedback.events.message(id))); t++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(meta?.sendingDomain, 'author.test', `message ${i}'s sending domain`);
  }
  for (const s of sessions) s.socket.end('QUIT\r\n');
  assert.equal(await held(), 0, 'every reserved byte was given back');
  assert.deepEqual(readdirSync(spoolDirOf(relay.config.dataDir)), [], 'no spool file stays behind');
});

/** A message whose header section alone is past 1 MiB: stored from one copy in memory, not from the spool file. */
const bigHeaders = (tag: string) => Buffer.from(`From: <big@author.test>\r\nSubject: ${tag}\r\n${`X-Filler: ${'h'.repeat(988)}\r\n`.repeat(1100)}\r\nshort body\r\n`);

test('a spooled body takes no intake memory: it is stored in parts from its spool file while another session holds the budget', async () => {
  const a = await openData();
  a.socket.write(lines(120 * 1024, 'a'));
  while ((await held())! < 110 * 1024) await new Promise((r) => setTimeout(r, 5));
  const b = await openData();
  const body = lines(950 * 1024, 'b');
  b.socket.write(Buffer.concat([body, Buffer.from('.\r\n')]));
  const id = queuedId(await b.waitFor(/^(451|250) [^\r\n]*\r\n(?![\s\S])/m));
  assert.ok(id, `B accepted at once: ${b.said().split('\r\n').at(-2)}`);
  assert.ok(relay.store.body(id)!.subarray(-body.length).equals(body), 'stored byte for byte');
  a.socket.write('.\r\n');
  assert.match(await a.waitFor(/^250 2\.6\.0 Ok: queued/m), /queued as/);
  a.socket.end('QUIT\r\n');
  b.socket.end('QUIT\r\n');
  assert.equal(await held(), 0, 'every reserved byte was given back');
});

test('a body read whole (header section past 1 MiB) that cannot get memory within intakeMemoryWaitMs gets 451 4.3.1, and is accepted when retried', async () => {
  // A holds 120 KiB in memory (below the spool size) and stops sending.
  const a = await openData();
  a.socket.write(lines(120 * 1024, 'a'));
  while ((await held())! < 110 * 1024) await new Promise((r) => setTimeout(r, 5));

  // B's 1.1 MiB arrive (spooled); its commit copy does not fit beside A's bytes.
  const b = await openData();
  const started = Date.now();
  b.socket.write(Buffer.concat([bigHeaders('b'), Buffer.from('.\r\n')]));
  const bReply = await b.waitFor(/^(451|250) [^\r\n]*\r\n(?![\s\S])/m);
  assert.match(bReply, /^451 4\.3\.1 Insufficient system resources/m, 'B does not fit while A is held');
  assert.ok(Date.now() - started >= WAIT_MS - 100, 'B waited for room before giving up');
  // Over commandTimeoutMs after its body, B is still open: waiting for a reply is not a slow command line.
  await new Promise((r) => setTimeout(r, 1500));
  assert.doesNotMatch(b.said(), /^421 /m);

  a.socket.write('.\r\n');
  assert.match(await a.waitFor(/^250 2\.6\.0 Ok: queued/m), /queued as/);

  b.socket.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n');
  await b.waitFor(/^354 [\s\S]*354 /m);
  b.socket.write(Buffer.concat([bigHeaders('b'), Buffer.from('.\r\n')]));
  assert.match(await b.waitFor(/^250 2\.6\.0 Ok: queued/m), /queued as/, 'the retry fits once A is queued');
  a.socket.end('QUIT\r\n');
  b.socket.end('QUIT\r\n');
  assert.equal(await held(), 0, 'every reserved byte was given back');
});

test('an oversized body is refused 552 5.3.4 and nothing of it stays held', async () => {
  const c = await openData();
  c.socket.write(Buffer.concat([lines(3 * MiB), Buffer.from('.\r\n')]));
  assert.match(await c.waitFor(/^552 /m), /^552 5\.3\.4/m);
  c.socket.end('QUIT\r\n');
  assert.equal(await held(), 0);
  assert.deepEqual(readdirSync(spoolDirOf(relay.config.dataDir)), []);
});
