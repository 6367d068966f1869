// Large messages stored in parts (relay/queue/body-parts.ts) reach a real SMTP receiver byte for
// byte: dots and CRLFs at part boundaries survive the streamed DATA, the DKIM signatures over a
// streamed body verify (mailauth, and dkimpy in a network namespace when there is one), and a
// large message queued whole by the previous schema (version 8, one blob) is still delivered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS, migrate } from '../../relay/queue/schema.ts';
import { PART_BYTES } from '../../relay/queue/store.ts';
import { startSignedDeliveryRig, type SignedDeliveryRig } from '../support/dkim-keys.ts';
import { startSignedHarness, type Harness } from './harness.ts';

let h: Harness;
let keyDir: string;
let rig: SignedDeliveryRig;

before(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'mailfleet-large-dkim-'));
  rig = await startSignedDeliveryRig(keyDir, 'brand.test', 'large-rcpt.test', '127.0.5.21');
  h = await startSignedHarness(rig);
});

after(async () => {
  await h?.cleanup();
  await rig?.stop();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** Lines of filler (each ending CRLF) that bring a message of `from` bytes to exactly `to`. */
function fill(from: number, to: number): string {
  let n = to - from;
  const lines: string[] = [];
  while (n > 0) {
    const len = n > 1000 + 3 ? 1000 : n; // a line of at least 3 bytes (x + CRLF) is left for the end
    const take = n - len > 0 && n - len < 3 ? len - 3 : len;
    lines.push(`${'f'.repeat(take - 2)}\r\n`);
    n -= take;
  }
  return lines.join('');
}

/** A message whose part boundaries fall on the cases a streamed DATA can get wrong. */
function boundaryMessage(from: string): Buffer {
  const P = PART_BYTES;
  let m = `From: <${from}>\r\nTo: <reader@large-rcpt.test>\r\nSubject: parts\r\nMessage-ID: <parts@mailfleet.test>\r\n\r\n`;
  // Part 1 starts with a dot at the start of a line (stuffed on the wire, unstuffed by the receiver).
  m += fill(m.length, P) + '.dot at the start of part 1\r\n';
  // A CRLF split across parts 1 and 2: CR last of part 1, LF first of part 2.
  m += fill(m.length, 2 * P - 10) + `${'y'.repeat(9)}\r\n`;
  // A dot in the middle of a line at the start of part 3: not stuffed.
  m += fill(m.length, 3 * P - 4) + 'abcd.mid-line dot\r\n';
  // A line that is a lone dot, cut after the dot: must be stuffed, or it ends the data early.
  m += fill(m.length, 4 * P - 1) + '.\r\n';
  m += 'after the lone dot\r\n..two dots\r\nlast line\r\n';
  const b = Buffer.from(m, 'latin1');
  assert.equal(b[P], 0x2e);
  assert.deepEqual([b[2 * P - 1], b[2 * P]], [0x0d, 0x0a]);
  assert.deepEqual([b[3 * P - 1], b[3 * P]], [0x64, 0x2e]);
  assert.deepEqual([b[4 * P - 1], b[4 * P]], [0x2e, 0x0d]);
  return b;
}

test('a message of five parts arrives byte for byte: dots and a CRLF at part boundaries, a lone dot line cut after its dot', async () => {
  const body = boundaryMessage('app@unsigned.test');
  await h.enqueue('app@unsigned.test', ['reader@large-rcpt.test'], body.toString('latin1'));
  const [m] = await rig.sink.waitForMessages(1);
  assert.equal(m!.body.length, body.length, 'the receiver got every byte, no more');
  assert.ok(m!.body.equals(body), 'the same bytes');
});

test('a 3 MiB message from a signing domain: rsa-sha256 and ed25519-sha256 signatures over the streamed body verify', async (t) => {
  const line = 'Dear reader, this line is long enough to matter.  Two  spaces\t and a tab.\r\n';
  const text = `From: <news@brand.test>\r\nTo: <reader@large-rcpt.test>\r\nSubject: Large signed\r\nDate: Sun, 29 Nov 2026 20:00:00 +0000\r\n` +
    `Message-ID: <large-signed@brand.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${line.repeat(Math.ceil(3 * 1024 * 1024 / line.length))}.leading dot\r\n\r\n\r\n`;
  const before = rig.sink.messages.length;
  await h.enqueue('bounces@brand.test', ['reader@large-rcpt.test'], text);
  const delivered = (await rig.sink.waitForMessages(before + 1))[before]!.body;
  assert.ok(delivered.length > 3 * 1024 * 1024);
  const res = await rig.mailauth(delivered);
  assert.deepEqual(res.results.map((r: { status: { result: string } }) => r.status.result), ['pass', 'pass'], JSON.stringify(res.results.map((r: { status: unknown }) => r.status)));
  if (!rig.netns) {
    t.diagnostic(`dkimpy not run: no network namespace: ${rig.netnsError}`);
    return;
  }
  for (const r of await rig.dkimpy(delivered)) {
    assert.equal(r.code, 0, `dkimverify --index ${r.index}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stdout, /signature ok/);
  }
});

test('a large message queued whole by the previous schema (version 8) is migrated and still delivered', async () => {
  await h.stop();
  const dir = h.dataDir; // the harness keeps queue.db at the top of its data directory
  for (const f of ['queue.db', 'queue.db-wal', 'queue.db-shm']) rmSync(join(dir, f), { force: true });
  const body = Buffer.concat([Buffer.from('From: <app@unsigned.test>\r\nTo: <reader@large-rcpt.test>\r\nSubject: old\r\n\r\n'), Buffer.from(fill(0, 1024 * 1024))]);
  const old = new DatabaseSync(join(dir, 'queue.db'));
  migrate(old, MIGRATIONS.filter((m) => m.version <= 8));
  old.prepare(`INSERT INTO messages (id, created_at, mail_from, size, class, body) VALUES ('OLDLARGE00000001', ?, 'app@unsigned.test', ?, 'transactional', ?)`).run(Date.now(), body.length, body);
  old.prepare(`INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane) VALUES ('OLDLARGE00000001', 'reader@large-rcpt.test', 'large-rcpt.test', 0, 1)`).run();
  assert.equal((old.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 8);
  old.close();
  const before = rig.sink.messages.length;
  await h.restart();
  h.delivery.wake();
  const delivered = (await rig.sink.waitForMessages(before + 1))[before]!.body;
  assert.ok(delivered.equals(body), 'delivered byte for byte');
});
