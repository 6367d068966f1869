// Outgoing mail is DKIM-signed (rsa-sha256 and ed25519-sha256, relaxed/relaxed) with the keys
// configured for the author's domain; the signatures are checked by independent verifiers:
// dkimpy's dkimverify (in a network namespace whose resolver is a test dnsmasq) and mailauth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSignedDeliveryRig, type SignedDeliveryRig } from '../support/dkim-keys.ts';
import { message, startSignedHarness, type Harness } from './harness.ts';

let h: Harness;
let rig: SignedDeliveryRig;

before(async () => {
  rig = await startSignedDeliveryRig(mkdtempSync(join(tmpdir(), 'mailfleet-dkim-')), 'brand.test', 'dkim-rcpt.test', '127.0.5.11');
  h = await startSignedHarness(rig);
});

after(async () => {
  await h?.cleanup();
  await rig?.stop();
});

let delivered: Buffer;

test('mail from a configured domain arrives with rsa-sha256 and ed25519-sha256 signatures', async () => {
  // A bulk message with every field receivers and M3AAWG expect signed.
  const extra = 'Reply-To: <care@brand.test>\r\nCc: <other@dkim-rcpt.test>\r\nContent-Transfer-Encoding: 7bit\r\n' +
    'List-Unsubscribe: <https://u.brand.test/u/abc>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nFeedback-ID: c1:cust:news:brand\r\n';
  const body = message('news@brand.test', 'reader@dkim-rcpt.test', 'Signed', 'Dear reader,\r\n.leading dot line\r\nbye')
    .replace('MIME-Version: 1.0\r\n', `MIME-Version: 1.0\r\n${extra}`);
  await h.enqueue('bounces@brand.test', ['reader@dkim-rcpt.test'], body);
  const [m] = await rig.sink.waitForMessages(1);
  delivered = m!.body;
  const text = delivered.toString();
  assert.match(text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=brand\.test;/m);
  assert.match(text, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=brand\.test;/m);
  assert.match(text, /\r\n\.leading dot line\r\n/, 'dot-stuffing undone by the receiver');
});

/** The h= list of each DKIM-Signature, lower-cased. */
function signedFields(m: Buffer): string[][] {
  const unfolded = m.toString('latin1').replace(/\r\n[ \t]+/g, ' ');
  return [...unfolded.matchAll(/^DKIM-Signature:.*?\bh=([^;]+);/gim)].map((x) => x[1]!.split(':').map((f) => f.trim().toLowerCase()));
}

test('the signatures cover the fields receivers expect and over-sign From, Subject and List-Unsubscribe', () => {
  const count = (list: string[], name: string) => list.filter((f) => f === name).length;
  for (const h of signedFields(delivered)) {
    for (const f of ['from', 'to', 'cc', 'reply-to', 'subject', 'date', 'message-id', 'mime-version', 'content-type',
      'content-transfer-encoding', 'list-unsubscribe', 'list-unsubscribe-post', 'feedback-id']) {
      assert.ok(h.includes(f), `h= lacks ${f}: ${h.join(':')}`);
    }
    for (const f of ['from', 'subject', 'list-unsubscribe', 'list-unsubscribe-post']) {
      assert.equal(count(h, f), 2, `${f} is listed once more than it occurs: ${h.join(':')}`);
    }
  }
});

test('dkimpy (dkimverify) verifies both signatures', async (t) => {
  if (!rig.netns) {
    t.skip(`no network namespace: ${rig.netnsError}`);
    return;
  }
  for (const r of await rig.dkimpy(delivered)) {
    assert.equal(r.code, 0, `dkimverify --index ${r.index}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stdout, /signature ok/);
  }
});

test('mailauth verifies both signatures', async () => {
  const res = await rig.mailauth(delivered);
  assert.deepEqual(
    res.results.map((r: { status: { result: string } }) => r.status.result),
    ['pass', 'pass'],
    `mailauth: ${JSON.stringify(res.results.map((r: { status: unknown; selector?: string }) => [r.selector, r.status]))}\n${delivered.toString().slice(0, 1500)}`,
  );
});

for (const [what, field] of [
  ['a second From', 'From: <ceo@brand.test>'],
  ['a second Subject', 'Subject: Urgent: wire transfer'],
  ['a List-Unsubscribe of someone else', 'List-Unsubscribe: <https://evil.example/u>'],
] as const) {
  test(`${what} added after signing fails verification (over-signed)`, async () => {
    // Added at the top, as a forwarder or replay attacker would (the verifier takes instances bottom-up).
    const added = Buffer.concat([Buffer.from(`${field}\r\n`), delivered]);
    const res = await rig.mailauth(added);
    assert.ok(res.results.length === 2 && res.results.every((r: { status: { result: string } }) => r.status.result !== 'pass'),
      JSON.stringify(res.results.map((r: { status: unknown }) => r.status)));
  });
}

test('a tampered body fails verification (the verifier is really checking)', async () => {
  const tampered = Buffer.from(delivered.toString().replace('Dear reader', 'Dear victim'));
  const res = await rig.mailauth(tampered);
  assert.ok(res.results.every((r: { status: { result: string } }) => r.status.result !== 'pass'));
});
