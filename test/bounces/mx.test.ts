// The bounce MX as the outside sees it: swaks and a raw client against the relay's MX-role
// listener. Mail to a token this relay minted or to a feedback address is consumed (parsed,
// handed to onFeedback, never queued); anything else at those domains is refused at RCPT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspace, baseConfig, type Workspace } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import type { FeedbackRecord } from '../../relay/bounce/feedback-record.ts';
import { postfixDsn, jmrpComplaint, writeKeysFile, returnPathFor, TEST_KEY } from './messages.ts';

const BOUNCES = 'bounces.example.com';
const ACCEPTED = 'bounces.accepted.test';
let ws: Workspace;
let relay: Relay;
let keysFile: string;
const records: FeedbackRecord[] = [];

before(async () => {
  ws = await workspace();
  keysFile = writeKeysFile();
  const config = parseRelayConfig(baseConfig(ws, {
    acceptDomains: [BOUNCES, ACCEPTED],
    returnPath: { keysFile, pool: 'test-pool' },
    domains: [{ domain: 'brand.test', returnPathDomain: BOUNCES }],
    limits: { maxMessageBytes: 25 * 1024 * 1024, maxRecipients: 10, maxLineOctets: 1000, authFailures: { max: 5, windowSeconds: 300 } },
  }), 'test');
  relay = await startRelay(config, {
    logger: createLogger('silent', 'relay'),
    delivery: false,
    onFeedback: (r) => {
      records.push(r);
    },
  });
});
after(async () => {
  await relay.stop();
});

function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--hide-informational', '--suppress-data', '--server', `127.0.0.1:${relay.port('mx')}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const messageFile = (name: string, body: Buffer) => {
  const f = join(ws.dir, name);
  writeFileSync(f, body);
  return f;
};

test('the two addresses from the issue, a quoted local part with "@", and a foreign domain are refused at RCPT; nothing is queued', async () => {
  const cases: [string, RegExp][] = [
    [`victim%outside.example.net@${ACCEPTED}`, /550 5\.7\.1 .*source routing/],
    [`outside.example.net!victim@${ACCEPTED}`, /550 5\.7\.1 .*source routing/],
    // smtp-server refuses this syntax itself, before the bounce policy would (501 5.1.3).
    [`"victim@outside.example.net"@${ACCEPTED}`, /5\d\d 5\.1\.3 /],
    [`"victim%outside.example.net"@${ACCEPTED}`, /550 5\.7\.1 .*source routing/],
    [`b+123@${BOUNCES}`, /550 5\.1\.1 .*no such bounce address/],
    ['victim@outside.example.net', /550 5\.7\.1 Relaying denied/],
  ];
  for (const [to, expected] of cases) {
    const r = await swaks(['--from', '<>', '--to', to]);
    assert.notEqual(r.code, 0, to);
    assert.match(r.out, expected, to);
  }
  assert.deepEqual(relay.store.counts(), { queued: 0, inflight: 0, delivered: 0, bounced: 0 }, 'nothing queued');
});

test('a DSN to a return path this relay minted: 250 after onFeedback has it, attributed, classified, never queued', async () => {
  const before = records.length;
  const { address, queueId } = returnPathFor('reader@example.net', BOUNCES);
  const dsn = postfixDsn({ to: address, recipient: 'reader@example.net', status: '5.1.1', diagnostic: '550 5.1.1 <reader@example.net>: Recipient address rejected: User unknown in local recipient table' });
  const r = await swaks(['--from', '<>', '--to', address, '--data', `@${messageFile('dsn.eml', dsn)}`]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /250 2\.\d\.\d Ok: recorded as [0-9A-Z]{16}/);
  // The 250 came after onFeedback resolved: the record is already here.
  assert.equal(records.length, before + 1);
  const rec = records.at(-1)!;
  assert.equal(rec.kind, 'dsn');
  assert.equal(rec.attributed, true);
  assert.equal(rec.token?.queueId, queueId);
  assert.equal(rec.token?.pool, 'test-pool');
  assert.deepEqual(rec.recipients.map((x) => [x.address, x.status, x.category, x.hard]), [['reader@example.net', '5.1.1', 'unknown-user', true]]);
  assert.deepEqual(rec.envelope?.rcptTo, [address]);
  assert.deepEqual(relay.store.counts(), { queued: 0, inflight: 0, delivered: 0, bounced: 0 }, 'nothing queued');
});

test('a 5.7.1 reputation block coming back as a DSN is policy/reputation, never a hard bounce', async () => {
  const { address } = returnPathFor('reader@gmail.test', BOUNCES);
  const dsn = postfixDsn({ to: address, recipient: 'reader@gmail.test', status: '5.7.1', diagnostic: '550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address.' });
  const r = await swaks(['--from', '<>', '--to', address, '--data', `@${messageFile('block.eml', dsn)}`]);
  assert.equal(r.code, 0, r.out);
  const rec = records.at(-1)!;
  assert.equal(rec.recipients[0]!.category, 'reputation');
  assert.equal(rec.recipients[0]!.hard, false);
});

test('forged, replayed-expired and unknown-key tokens are refused at RCPT with 550 5.1.1 and the reason', async () => {
  const { address } = returnPathFor('reader@example.net', BOUNCES);
  const forged = address.slice(0, 8) + (address[8] === '0' ? '1' : '0') + address.slice(9);
  const old = returnPathFor('reader@example.net', BOUNCES, { at: Date.now() - 40 * 86_400_000 }).address;
  const otherKey = returnPathFor('reader@example.net', BOUNCES, { key: { id: 'q', secret: TEST_KEY.secret } }).address;
  for (const [to, why] of [[forged, /invalid signature/], [old, /has expired/], [otherKey, /key this server does not have/]] as const) {
    const r = await swaks(['--from', '<>', '--to', to]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, new RegExp(`550 5\\.1\\.1 <${to.replace(/[.+]/g, '\\$&')}>: this return path`), to);
    assert.match(r.out, why);
  }
});

test('a complaint to the feedback address (Microsoft JMRP: recipient only inside) is attributed through the token in the returned message', async () => {
  const { address, queueId } = returnPathFor('reader@outlook.test', BOUNCES);
  const arf = jmrpComplaint({ to: `fbl@${BOUNCES}`, returnPath: address, recipient: 'reader@outlook.test' });
  const r = await swaks(['--from', 'staff@hotmail.com', '--to', `fbl@${BOUNCES}`, '--data', `@${messageFile('arf.eml', arf)}`]);
  assert.equal(r.code, 0, r.out);
  const rec = records.at(-1)!;
  assert.equal(rec.kind, 'arf');
  assert.equal(rec.feedbackType, 'abuse');
  assert.equal(rec.attributed, true);
  assert.equal(rec.token?.queueId, queueId);
  assert.deepEqual(rec.recipients.map((x) => x.address), ['reader@outlook.test']);
});

test('malformed reports and a bounce for mail never sent are recorded unattributed; nothing crashes', async () => {
  const garbage = Buffer.from('Content-Type: multipart/report; boundary="x"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: \r\nStatus: 9.9\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n\r\n');
  const neverSent = postfixDsn({ to: `postmaster@${BOUNCES}`, recipient: 'someone@example.org', status: '5.1.1', diagnostic: '550 5.1.1 unknown', messageId: '<never-sent@elsewhere.test>' });
  for (const [name, body] of [['garbage.eml', garbage], ['never-sent.eml', neverSent], ['empty.eml', Buffer.from('\r\n')]] as const) {
    const r = await swaks(['--from', '<>', '--to', `postmaster@${BOUNCES}`, '--data', `@${messageFile(name, body)}`]);
    assert.equal(r.code, 0, `${name}: ${r.out}`);
    const rec = records.at(-1)!;
    assert.equal(rec.attributed, false, name);
    assert.equal(rec.token, undefined, name);
  }
  assert.equal(records.at(-2)!.messageId, '<never-sent@elsewhere.test>');
  // Still serving.
  assert.equal((await swaks(['--from', '<>', '--to', `postmaster@${BOUNCES}`])).code, 0);
});

test('a 20 MB "bounce" gets 552 5.3.4 (the MX takes at most 10 MiB) and is not recorded', async () => {
  const before = records.length;
  const p = await SmtpProbe.open(relay.port('mx'));
  assert.equal((await p.reply()).code, 220);
  assert.equal((await p.command('EHLO big.test')).code, 250);
  // Declared: refused at MAIL FROM.
  const declared = await p.command('MAIL FROM:<> SIZE=20971520');
  assert.equal(declared.code, 552);
  assert.match(declared.text, /5\.3\.4/);
  // Undeclared: refused after the data.
  assert.equal((await p.command('MAIL FROM:<>')).code, 250);
  assert.equal((await p.command(`RCPT TO:<postmaster@${BOUNCES}>`)).code, 250);
  assert.equal((await p.command('DATA')).code, 354);
  const line = 'x'.repeat(998) + '\r\n';
  const chunk = Buffer.from(line.repeat(1024)); // 1 MiB
  p.write('Subject: big\r\n\r\n');
  for (let i = 0; i < 20; i++) p.write(chunk);
  const end = await p.command('.');
  assert.equal(end.code, 552);
  assert.match(end.text, /5\.3\.4/);
  p.close();
  assert.equal(records.length, before);
});

test('without an injected onFeedback the relay appends each record to <dataDir>/feedback/records.jsonl before the 250', async () => {
  const w = await workspace();
  const config = parseRelayConfig(baseConfig(w, { acceptDomains: [BOUNCES], returnPath: { keysFile }, domains: [{ domain: 'brand.test', returnPathDomain: BOUNCES }] }), 'test');
  const r2 = await startRelay(config, { logger: createLogger('silent', 'relay'), delivery: false });
  try {
    const { address } = returnPathFor('reader@example.net', BOUNCES, { pool: '' });
    const dsn = postfixDsn({ to: address, recipient: 'reader@example.net', status: '5.2.2', diagnostic: '552 5.2.2 Mailbox full' });
    const f = join(w.dir, 'dsn.eml');
    writeFileSync(f, dsn);
    const r = await new Promise<number>((resolve) => spawn('swaks', ['--hide-all', '--server', `127.0.0.1:${r2.port('mx')}`, '--from', '<>', '--to', address, '--data', `@${f}`]).on('close', (c) => resolve(c ?? -1)));
    assert.equal(r, 0);
    const file = join(config.dataDir, 'feedback', 'records.jsonl');
    assert.ok(existsSync(file));
    const rec = JSON.parse(readFileSync(file, 'utf8').trim()) as FeedbackRecord;
    assert.equal(rec.kind, 'dsn');
    assert.equal(rec.attributed, true);
    assert.equal(rec.recipients[0]!.category, 'mailbox-full');
    // Handed over to the suppression list (relay/feedback): a mailbox-full bounce suppresses nobody…
    assert.deepEqual(r2.feedback.suppressions.get('reader@example.net'), []);

    // …a hard bounce does, fleet-wide; a complaint for the sending domain; a forwarded DSN naming
    // another recipient than the token's, and an untrusted one, suppress nobody.
    const hard = returnPathFor('gone@example.net', BOUNCES, { pool: '' });
    const complained = returnPathFor('angry@outlook.test', BOUNCES, { pool: '' });
    const mismatch = returnPathFor('someone@example.net', BOUNCES, { pool: '' });
    const sends: [string, Buffer][] = [
      [hard.address, postfixDsn({ to: hard.address, recipient: 'gone@example.net', status: '5.1.1', diagnostic: '550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in local recipient table' })],
      [`fbl@${BOUNCES}`, jmrpComplaint({ to: `fbl@${BOUNCES}`, returnPath: complained.address, recipient: 'angry@outlook.test' })],
      [mismatch.address, postfixDsn({ to: mismatch.address, recipient: 'other@example.net', status: '5.1.1', diagnostic: '550 5.1.1 <other@example.net>: User unknown' })],
    ];
    for (const [to, body] of sends) {
      writeFileSync(f, body);
      const code = await new Promise<number>((resolve) => spawn('swaks', ['--hide-all', '--server', `127.0.0.1:${r2.port('mx')}`, '--from', '<>', '--to', to, '--data', `@${f}`]).on('close', (c) => resolve(c ?? -1)));
      assert.equal(code, 0, to);
    }
    const entries = (a: string) => r2.feedback.suppressions.get(a).map((e) => [e.scope, e.reason]);
    assert.deepEqual(entries('gone@example.net'), [['*', 'hard-bounce']]);
    assert.deepEqual(entries('angry@outlook.test'), [['brand.test', 'complaint']]);
    assert.deepEqual(entries('other@example.net'), []);
    assert.deepEqual(entries('someone@example.net'), []);
  } finally {
    await r2.stop();
  }
});

test('consumed reports are counted by kind and token verdict, and the metrics pass promtool', async () => {
  const text = await (await fetch(`http://127.0.0.1:${relay.http.port}/metrics`)).text();
  assert.match(text, /mailfleet_bounce_mx_reports_total\{kind="dsn",token="trusted"\} [1-9]/);
  assert.match(text, /mailfleet_bounce_mx_reports_total\{kind="arf",token="trusted"\} 1/);
  assert.match(text, /mailfleet_bounce_mx_reports_total\{kind="unknown",token="none"\} [1-9]/);
  // Asynchronous bounces per sending domain (the token's bounce domain → brand.test) and category.
  assert.match(text, /mailfleet_feedback_bounces_total\{sending_domain="brand\.test",category="unknown-user"\} 1/);
  assert.match(text, /mailfleet_feedback_bounces_total\{sending_domain="brand\.test",category="reputation"\} 1/);
  assert.match(text, /mailfleet_feedback_bounces_total\{sending_domain="other",category="unknown-user"\} 1/, 'the bounce for mail never sent');
  const lint = await new Promise<{ code: number; out: string }>((resolve) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(text);
  });
  assert.equal(lint.code, 0, lint.out);
});
