import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { DkimSigner } from './sign.ts';

function keys(): { rsaFile: string; edFile: string; txt: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-dkim-unit-'));
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  writeFileSync(join(dir, 'rsa.pem'), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'ed.pem'), ed.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return {
    rsaFile: join(dir, 'rsa.pem'),
    edFile: join(dir, 'ed.pem'),
    txt: {
      'rsa2026._domainkey.brand.test': `v=DKIM1; k=rsa; p=${rsa.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`,
      // RFC 8463: the ed25519 p= is the raw 32-byte key, not SPKI.
      'ed2026._domainkey.brand.test': `v=DKIM1; k=ed25519; p=${ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(12).toString('base64')}`,
    },
  };
}

test('DkimSigner: the t= written is the t= signed, even when the clock crosses a half second while signing', async (t) => {
  const k = keys();
  const signer = new DkimSigner([{
    domain: 'brand.test',
    dkim: [
      { selector: 'rsa2026', algorithm: 'rsa-sha256', keyFile: k.rsaFile },
      { selector: 'ed2026', algorithm: 'ed25519-sha256', keyFile: k.edFile },
    ],
  } as never]);
  const message = Buffer.from('From: <news@brand.test>\r\nTo: <r@example.test>\r\nSubject: hi\r\nDate: Mon, 07 Dec 2026 02:00:00 +0000\r\nMessage-ID: <1@brand.test>\r\n\r\nbody\r\n');
  await signer.sign(message, 'bounces@brand.test'); // keys loaded: the next sign is synchronous up to its end
  // Every reading of the clock is 0.6 s after the one before (a loaded machine, a slow RSA signature).
  let now = Date.UTC(2026, 11, 7, 2, 0, 0, 200);
  t.mock.method(Date, 'now', () => (now += 600));
  const signed = await signer.sign(message, 'bounces@brand.test');
  t.mock.restoreAll();
  const res = await dkimVerify(signed, { resolver: async (name: string) => [[k.txt[name]!]] });
  assert.deepEqual(res.results.map((r: { status: { result: string } }) => r.status.result), ['pass', 'pass'], signed.toString().slice(0, 1200));
});

test('DkimSigner: with no key for any domain the message is returned as it is', async () => {
  const signer = new DkimSigner([{ domain: 'brand.test', dkim: [] } as never]);
  const message = Buffer.from('From: <news@brand.test>\r\n\r\nbody\r\n');
  assert.equal(await signer.sign(message, 'bounces@brand.test'), message);
});
