import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken, verifyToken, tokenNamesRecipient, recipientDigest, MAX_LOCAL_PART, type ReturnPathKey } from './token.ts';
import { parseReturnPathKeys } from './keys.ts';
import { returnPathChooser } from './envelope.ts';
import { newQueueId } from '../queue/id.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-06T12:00:00Z');
const keyA: ReturnPathKey = { id: 'a', secret: Buffer.alloc(32, 1) };
const keyB: ReturnPathKey = { id: 'b', secret: Buffer.alloc(32, 2) };
const queueId = newQueueId(NOW - 3600_000);
const fields = { queueId, recipient: 'Reader@Example.NET', ip: '203.0.113.10', pool: 'eu-bulk' };
const opts = { keys: [keyA], now: NOW, validityMs: 30 * DAY, pool: 'eu-bulk' };
const DOMAIN = 'bounces.brand.test';

test('a minted token decodes to message, recipient, IP, pool and day, and is trusted', () => {
  const t = mintToken(fields, keyA, DOMAIN);
  assert.match(t, /^ba[0-9a-z]+$/);
  const v = verifyToken(t, DOMAIN, opts);
  assert.deepEqual(v, {
    trusted: true, reason: 'ok', keyId: 'a', queueId, day: '2026-12-06', mintedAt: new Date(NOW - 3600_000).toISOString(),
    ip: '203.0.113.10', recipientDigest: recipientDigest('reader@example.net'), poolDigest: v.poolDigest, pool: 'eu-bulk',
  });
  assert.ok(tokenNamesRecipient(v, 'reader@example.net'));
  assert.ok(!tokenNamesRecipient(v, 'other@example.net'));
  // Some MTAs upper-case local parts: still the same token.
  assert.equal(verifyToken(t.toUpperCase(), DOMAIN, opts).trusted, true);
});

test('local parts stay within 64 octets for IPv4, IPv6 and no bound address', () => {
  const cases: [string | undefined, string | null][] = [
    ['192.0.2.1', '192.0.2.1'],
    ['2001:db8:ffff:1234:5678:9abc:def0:1', '2001:db8:ffff:1234:5678:9abc:def0:1'],
    ['2001:db8::25', '2001:db8::25'],
    ['::ffff:192.0.2.7', '::ffff:c000:207'],
    [undefined, null],
  ];
  for (const [ip, decoded] of cases) {
    const t = mintToken({ ...fields, ip }, keyA, DOMAIN);
    assert.ok(t.length <= MAX_LOCAL_PART, `${ip}: ${t.length} octets`);
    const v = verifyToken(t, DOMAIN, opts);
    assert.equal(v.trusted, true, `${ip}: ${v.reason}`);
    assert.equal(v.ip, decoded);
  }
});

// What an attacker or a broken MTA could send, and what the relay concludes.
const token = mintToken(fields, keyA, DOMAIN);
const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
const TABLE: { name: string; local: string; domain?: string; opts?: Partial<typeof opts>; reason: string }[] = [
  { name: 'ordinary address', local: 'postmaster', reason: 'not-a-token' },
  { name: 'truncated', local: token.slice(0, -3), reason: 'not-a-token' },
  { name: 'characters outside the alphabet', local: token.slice(0, -1) + 'u', reason: 'not-a-token' },
  { name: 'queue id changed (forged)', local: flip(token, 5), reason: 'bad-signature' },
  { name: 'recipient digest changed (forged)', local: flip(token, 20), reason: 'bad-signature' },
  { name: 'signature changed', local: flip(token, token.length - 1), reason: 'bad-signature' },
  { name: 'same token at another bounce domain', local: token, domain: 'bounces.other.test', reason: 'bad-signature' },
  { name: 'unknown key id', local: mintToken(fields, { id: 'z', secret: keyA.secret }, DOMAIN), reason: 'unknown-key' },
  { name: 'signed with another secret under a known id', local: mintToken(fields, { id: 'a', secret: keyB.secret }, DOMAIN), reason: 'bad-signature' },
  { name: 'replayed after the validity window', local: token, opts: { now: NOW + 31 * DAY }, reason: 'expired' },
  { name: 'minted in the future', local: mintToken({ ...fields, queueId: newQueueId(NOW + 3 * DAY) }, keyA, DOMAIN), reason: 'from-the-future' },
  { name: 'old key within its grace period', local: mintToken(fields, keyA, DOMAIN), opts: { keys: [keyB, { ...keyA, acceptUntil: NOW + DAY }] }, reason: 'ok' },
  { name: 'old key after its grace period', local: mintToken(fields, keyA, DOMAIN), opts: { keys: [keyB, { ...keyA, acceptUntil: NOW - 1 }] }, reason: 'retired-key' },
];
for (const c of TABLE) {
  test(`verify: ${c.name} → ${c.reason}`, () => {
    const v = verifyToken(c.local, c.domain ?? DOMAIN, { ...opts, ...c.opts });
    assert.equal(v.reason, c.reason);
    assert.equal(v.trusted, c.reason === 'ok');
  });
}

test('the keys file: first key signs, errors name the field', () => {
  const keys = parseReturnPathKeys(JSON.stringify({ keys: [{ id: 'c', secret: Buffer.alloc(16, 3).toString('base64') }, { id: 'b', secret: keyB.secret.toString('base64'), acceptUntil: '2026-12-20T00:00:00Z' }] }));
  assert.equal(keys[0]!.id, 'c');
  assert.equal(keys[1]!.acceptUntil, Date.parse('2026-12-20T00:00:00Z'));
  assert.throws(() => parseReturnPathKeys('{"keys":[{"id":"u","secret":"AAAAAAAAAAAAAAAAAAAAAA=="}]}', 'keys.json'), /keys\.json: keys\.0\.id: one base32 character/);
  assert.throws(() => parseReturnPathKeys('{"keys":[{"id":"a","secret":"AAAA"}]}', 'keys.json'), /keys\.0\.secret: at least 16 bytes/);
  assert.throws(() => parseReturnPathKeys('{"keys":[]}', 'keys.json'), /at least one key/);
  assert.throws(() => parseReturnPathKeys('nope', 'keys.json'), /keys\.json: not JSON/);
});

test('the engine’s MAIL FROM: a token at the author domain’s bounce domain; null sender and unknown domains untouched', () => {
  const chooser = returnPathChooser(
    { domains: [{ domain: 'brand.test', dkim: [], oneClickUnsubscribe: false, returnPathDomain: DOMAIN }], returnPath: { keysFile: '/x', pool: 'eu-bulk', validityDays: 30, feedbackLocalParts: ['fbl'] } },
    () => [keyA],
  );
  assert.equal(chooser.perRecipient, true);
  const message = Buffer.from('From: News <news@brand.test>\r\nSubject: x\r\n\r\nhi\r\n');
  const from = chooser.mailFrom({ mailFrom: 'app@submitter.test', queueId, recipient: 'reader@example.net', sourceIp: '192.0.2.1', message });
  const [local, domain] = from.split('@') as [string, string];
  assert.equal(domain, DOMAIN);
  const v = verifyToken(local, domain, opts);
  assert.equal(v.trusted, true);
  assert.equal(v.ip, '192.0.2.1');
  assert.equal(chooser.mailFrom({ mailFrom: '', queueId, recipient: 'x@example.net', message }), '');
  assert.equal(chooser.mailFrom({ mailFrom: 'a@other.test', queueId, recipient: 'x@example.net', message: Buffer.from('From: a@other.test\r\n\r\n') }), 'a@other.test');
  const off = returnPathChooser({ domains: [{ domain: 'brand.test', dkim: [], oneClickUnsubscribe: false, returnPathDomain: DOMAIN }] }, () => [keyA]);
  assert.equal(off.perRecipient, false);
  assert.equal(off.mailFrom({ mailFrom: 'news@brand.test', queueId, recipient: 'x@example.net', message }), 'news@brand.test');
});
