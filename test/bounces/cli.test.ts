// `mailfleet bounces parse` as an operator runs it: real files in, one JSON line per file out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, NODE } from '../support/relay-harness.ts';
import { CORPUS } from './corpus-compare.ts';
import { postfixDsn, jmrpComplaint, writeKeysFile, returnPathFor } from './messages.ts';

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(NODE, [CLI, 'bounces', ...args], (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, out: stdout, err: stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-bounces-cli-'));
const keys = writeKeysFile();
const DOMAIN = 'bounces.brand.test';

test('one JSON line per file, with exactly the documented fields, recipients in message order', async () => {
  const files = ['lhost-postfix-13.eml', 'arf-01.eml', 'rfc3834-01.eml', 'lhost-amazonses-13.eml'].map((f) => join(CORPUS, f));
  const r = await cli(['parse', ...files]);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 4);
  for (const l of lines) assert.deepEqual(Object.keys(l), ['file', 'kind', 'recipients', 'feedbackType', 'token']);
  assert.deepEqual(lines.map((l) => l.kind), ['dsn', 'arf', 'autoreply', 'delivery-report']);
  assert.deepEqual(lines[0]!.recipients, [
    { address: 'kijitora@example.jp', status: '5.2.1', replyCode: '550', category: 'unknown-user', hard: true },
    { address: 'noraneko@example.jp', status: '5.2.2', replyCode: '550', category: 'mailbox-full', hard: false },
  ]);
  assert.equal(lines[1]!.feedbackType, 'abuse');
  assert.equal(lines[0]!.feedbackType, null);
  assert.equal(lines[0]!.token, null);
});

test('a DSN to a minted return path: the token is trusted with --keys, decoded but untrusted without', async () => {
  const { address, queueId } = returnPathFor('reader@example.net', DOMAIN);
  const file = join(dir, 'dsn.eml');
  writeFileSync(file, postfixDsn({ to: address, recipient: 'reader@example.net', status: '5.1.1', diagnostic: '550 5.1.1 <reader@example.net>: Recipient address rejected: User unknown in local recipient table' }));
  const withKeys = JSON.parse((await cli(['parse', '--keys', keys, file])).out) as { token: Record<string, unknown>; recipients: { hard: boolean }[] };
  assert.equal(withKeys.token.trusted, true);
  assert.equal(withKeys.token.queueId, queueId);
  assert.equal(withKeys.token.ip, '192.0.2.1');
  assert.equal(withKeys.recipients[0]!.hard, true);
  const without = JSON.parse((await cli(['parse', file])).out) as { token: Record<string, unknown> };
  assert.equal(without.token.trusted, false);
  assert.equal(without.token.reason, 'unknown-key');
  assert.equal(without.token.queueId, queueId);
});

test('a complaint whose recipient is only inside the attached message (Microsoft JMRP), token in its Return-Path', async () => {
  const { address } = returnPathFor('reader@outlook.test', DOMAIN);
  const file = join(dir, 'jmrp.eml');
  writeFileSync(file, jmrpComplaint({ to: 'fbl@bounces.brand.test', returnPath: address, recipient: 'reader@outlook.test' }));
  const l = JSON.parse((await cli(['parse', '--keys', keys, file])).out) as { kind: string; feedbackType: string; recipients: { address: string; category: string }[]; token: { trusted: boolean } };
  assert.equal(l.kind, 'arf');
  assert.equal(l.feedbackType, 'abuse');
  assert.deepEqual(l.recipients.map((x) => [x.address, x.category]), [['reader@outlook.test', 'complaint']]);
  assert.equal(l.token.trusted, true);
});

test('Microsoft JMRP without a feedback-report part (only the message, its recipient in X-HmXmrOriginalRecipient) is a complaint', async () => {
  const l = JSON.parse((await cli(['parse', join(CORPUS, 'arf-23.eml')])).out) as { kind: string; feedbackType: string; recipients: { address: string }[] };
  assert.equal(l.kind, 'arf');
  assert.equal(l.feedbackType, 'abuse');
  assert.deepEqual(l.recipients.map((r) => r.address), ['kijitora@example.com']);
});

test('a forged token is reported as such; unreadable files and bad usage say what is wrong', async () => {
  const { address } = returnPathFor('reader@example.net', DOMAIN);
  const forged = address.replace(/^(.{10})./, (_, p: string) => p + (address[10] === '0' ? '1' : '0'));
  const file = join(dir, 'forged.eml');
  writeFileSync(file, postfixDsn({ to: forged, recipient: 'reader@example.net', status: '5.1.1', diagnostic: '550 5.1.1 no such user' }));
  const r = await cli(['parse', '--keys', keys, file, join(dir, 'missing.eml')]);
  assert.equal(r.code, 1);
  assert.equal((JSON.parse(r.out.trim()) as { token: { trusted: boolean; reason: string } }).token.reason, 'bad-signature');
  assert.match(r.err, /missing\.eml: no such file/);
  const usage = await cli(['parse']);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /name at least one message file/);
  const badKeys = join(dir, 'bad-keys.json');
  writeFileSync(badKeys, '{"keys":[{"id":"u","secret":"x"}]}');
  const bad = await cli(['parse', '--keys', badKeys, file]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /bad-keys\.json: keys\.0\.id: one base32 character/);
});
