// A message stored in parts, as delivery sees it: the header section in memory (wherever it ends
// among the parts), the body streamed; header steps prepend to the head; DKIM over the streamed
// body signs exactly as over the whole message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StoredBody } from '../queue/store.ts';
import { DkimSigner } from '../dkim/sign.ts';
import { LargeMessage, mapHead, outgoingOf } from './large-message.ts';

/** A StoredBody over a Buffer cut into parts of `size` bytes. */
function stored(message: Buffer, size: number): StoredBody {
  const parts = Math.ceil(message.length / size);
  return new StoredBody(message.length, parts, (seq) => (seq < parts ? message.subarray(seq * size, (seq + 1) * size) : undefined));
}

const message = (headerLines: number, bodyLines: number) => Buffer.from(
  `From: <news@brand.test>\r\nSubject: big\r\n${'X-Pad: padding padding\r\n'.repeat(headerLines)}\r\n` +
  Array.from({ length: bodyLines }, (_, i) => (i % 7 === 0 ? `.dot line ${i}  \t with  space\r\n` : `line ${i}\r\n`)).join(''),
);

test('the header section is found wherever it ends among the parts; the body streams after it byte for byte', () => {
  for (const size of [7, 64, 1000, 4096]) {
    for (const [h, b] of [[0, 300], [40, 10], [200, 0]] as const) {
      const m = message(h, b);
      const out = outgoingOf(stored(m, size));
      assert.ok(out instanceof LargeMessage, `parts of ${size}`);
      assert.ok(out.head.equals(m.subarray(0, m.indexOf('\r\n\r\n') + 4)));
      assert.ok(Buffer.concat([...out.chunks()]).equals(m), `parts of ${size}, ${h} header lines, ${b} body lines`);
      const marked = mapHead(out, (x) => Buffer.concat([Buffer.from('X-Added: 1\r\n'), x])) as LargeMessage;
      assert.ok(Buffer.concat([...marked.chunks()]).equals(Buffer.concat([Buffer.from('X-Added: 1\r\n'), m])));
      assert.equal(marked.length, m.length + 12);
    }
  }
});

test('a message without an empty line within the head limit is read whole', () => {
  const m = Buffer.from('Subject: x\r\nno end of header');
  assert.ok(Buffer.isBuffer(outgoingOf(stored(m, 8))));
});

test('DKIM over a streamed body signs as over the whole message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-large-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'ed.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const signer = new DkimSigner([{ domain: 'brand.test', dkim: [{ selector: 's', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed.pem') }] }] as never);
  const m = message(3, 500);
  // t= is the signing second: signed in the same second, the signature is the same (Ed25519 is deterministic).
  for (const size of [5, 333, 4096]) {
    const out = outgoingOf(stored(m, size)) as LargeMessage;
    let whole: Buffer;
    let streamed: Buffer;
    do {
      whole = await signer.sign(m, 'bounces@brand.test');
      streamed = Buffer.concat([...out.withHead(await signer.sign(out.head, 'bounces@brand.test', out.body())).chunks()]);
    } while (/t=(\d+)/.exec(whole.toString())![1] !== /t=(\d+)/.exec(streamed.toString())![1]);
    assert.equal(streamed.toString('latin1'), whole.toString('latin1'), `parts of ${size}`);
  }
});
