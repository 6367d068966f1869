// Bodies past PART_BYTES are stored in parts (from a Buffer or from the intake's spool file) and
// read back byte for byte; small mail stays one row; deleting a message takes its parts along.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { QueueStore, StoredBody, PART_BYTES } from './store.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-parts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function big(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed) % 251;
  return b;
}

function rows(dir: string, sql: string): unknown[] {
  const db = new DatabaseSync(join(dir, 'queue.db'), { readOnly: true });
  try {
    return db.prepare(sql).all().map((r) => ({ ...r }));
  } finally {
    db.close();
  }
}

test('a body past PART_BYTES is stored in parts and read back part by part, byte for byte; small mail stays one row', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  t.after(() => s.close());
  const small = Buffer.from('Subject: s\r\n\r\nhi\r\n');
  const large = big(3 * PART_BYTES + 17);
  const a = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: small });
  const b = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: large });
  const opened0 = s.open(a);
  assert.ok(Buffer.isBuffer(opened0) && opened0.equals(small));
  const opened = s.open(b);
  assert.ok(opened instanceof StoredBody);
  assert.equal(opened.parts, 4);
  assert.deepEqual([...opened.chunks()].map((c) => c.length), [PART_BYTES, PART_BYTES, PART_BYTES, 17]);
  assert.ok(s.body(b)!.equals(large));
  assert.equal(s.bodySize(b), large.length);
  assert.deepEqual(rows(dir, `SELECT message_id, COUNT(*) AS n FROM body_parts GROUP BY message_id`), [{ message_id: b, n: 4 }]);
});

test('a spooled body (head + a range of a file) is stored from the file', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  t.after(() => s.close());
  const file = join(dir, 'spool');
  const rest = big(2 * PART_BYTES + 5, 13);
  writeFileSync(file, Buffer.concat([Buffer.from('JUNK'), rest, Buffer.from('TAIL')]));
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  const head = Buffer.from('Received: by x\r\nSubject: big\r\n\r\n');
  const id = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: { head, fd, offset: 4, length: rest.length } });
  assert.ok(s.body(id)!.equals(Buffer.concat([head, rest])));
  assert.equal(s.bodySize(id), head.length + rest.length);
});

test('deleting a message (final outcome, or the CLI) removes its parts; a spool file that ends early fails the commit and leaves nothing', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  t.after(() => s.close());
  const one = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: big(PART_BYTES + 1) });
  const two = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: big(PART_BYTES * 2) });
  s.recordAttempt(one, ['b@y.test'], { state: 'delivered' }, '250 ok');
  assert.equal(s.delete(two), true);
  s.flushOutcomes();
  assert.deepEqual(rows(dir, `SELECT COUNT(*) AS n FROM body_parts`), [{ n: 0 }]);

  const file = join(dir, 'short');
  writeFileSync(file, big(100));
  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  await assert.rejects(s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: { head: Buffer.from('S: x\r\n\r\n'), fd, offset: 0, length: PART_BYTES * 3 } }), /spool file ended/);
  assert.deepEqual(rows(dir, `SELECT (SELECT COUNT(*) FROM body_parts) AS parts, (SELECT COUNT(*) FROM messages) AS messages`), [{ parts: 0, messages: 0 }]);
});

test('at most 32 MiB of bodies in parts go into one commit; the rest follow in the next ones', async (t) => {
  const dir = tempDir(t);
  const s = new QueueStore(dir);
  t.after(() => s.close());
  const body = big(12 * 1024 * 1024);
  const before = s.commits;
  const ids = await Promise.all(Array.from({ length: 6 }, () => s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body })));
  assert.equal(new Set(ids).size, 6);
  assert.ok(s.commits - before >= 3, `6 x 12 MiB took ${s.commits - before} commits`);
  for (const id of ids) assert.equal(s.bodySize(id), body.length);
});
