// Mail taken at birth is delivered from the bytes the commit bound, not read back from SQLite;
// everything else (and a second read) still comes from the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueStore, type Adopter } from './store.ts';
import { FreshBodies, MAX_BYTES } from './fresh-bodies.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-fresh-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const taking = (take: boolean): Adopter => ({ reserve: () => take, adopted() {}, released() {}, queued() {} });

test('mail taken at birth: the first open() is the committed buffer itself, the next one reads the same bytes back', async (t) => {
  const s = new QueueStore(tempDir(t));
  t.after(() => s.close());
  s.setAdopter(taking(true));
  const body = Buffer.from('Subject: fresh\r\n\r\nhello\r\n');
  const id = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body });
  const first = s.open(id);
  assert.equal(first, body, 'no read back: the same Buffer');
  const second = s.open(id);
  assert.ok(Buffer.isBuffer(second) && second !== body);
  assert.deepEqual(second, body);
  // Administration never takes the in-memory copy.
  assert.deepEqual(s.body(id), body);
});

test('mail not taken at birth is read from the store; a message deleted by an administrator is not opened from memory', async (t) => {
  const s = new QueueStore(tempDir(t));
  t.after(() => s.close());
  s.setAdopter(taking(false));
  const queued = Buffer.from('Subject: queued\r\n\r\nx\r\n');
  const id = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: queued });
  const read = s.open(id);
  assert.ok(Buffer.isBuffer(read) && read !== queued);
  assert.deepEqual(read, queued);

  s.setAdopter(taking(true));
  const id2 = await s.enqueue({ mailFrom: 'a@x.test', recipients: ['b@y.test'], body: Buffer.from('Subject: gone\r\n\r\ny\r\n') });
  assert.equal(s.delete(id2), true);
  assert.equal(s.open(id2), undefined);
});

test('what is never opened is dropped oldest first past the byte cap', () => {
  const f = new FreshBodies();
  const big = Buffer.alloc(MAX_BYTES / 4);
  for (let i = 0; i < 6; i++) f.put(`m${i}`, big);
  assert.ok(f.heldBytes <= MAX_BYTES);
  assert.equal(f.take('m0'), undefined);
  assert.equal(f.take('m1'), undefined);
  assert.equal(f.take('m5'), big);
  f.put('huge', Buffer.alloc(MAX_BYTES + 1));
  assert.equal(f.take('huge'), undefined);
});
