// The relay's SMTP intake as clients see it: swaks, nodemailer and a raw socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import nodemailer from 'nodemailer';
import { workspace, startTestRelay, USER, PASSWORD, type Workspace } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import type { Relay } from '../../relay/relay.ts';

let ws: Workspace;
let relay: Relay;
const authPlain = (u: string, p: string) => Buffer.from(`\0${u}\0${p}`).toString('base64');

before(async () => {
  ws = await workspace();
  relay = await startTestRelay(ws, { limits: { maxMessageBytes: 20_000, maxRecipients: 3, maxLineOctets: 1000, authFailures: { max: 3, windowSeconds: 300 } } });
});
after(async () => {
  await relay.stop();
});

/** swaks with its standard input closed, so a missing value can never wait for a prompt. */
function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--hide-informational', '--suppress-data', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

const queueIdOf = (out: string) => /queued as ([0-9A-Z]{16})/.exec(out)?.[1];

/** A probe on the plaintext-AUTH-on-loopback listener, authenticated and past EHLO. */
async function authedProbe(localAddress?: string): Promise<SmtpProbe> {
  const p = await SmtpProbe.open(relay.port('alt'), '127.0.0.1', localAddress);
  assert.equal((await p.reply()).code, 220);
  assert.equal((await p.command('EHLO client.test')).code, 250);
  assert.equal((await p.command(`AUTH PLAIN ${authPlain(USER, PASSWORD)}`)).code, 235);
  return p;
}

test('EHLO advertises PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, SIZE and STARTTLS, but no AUTH before TLS', async () => {
  const p = await SmtpProbe.open(relay.port('submission'));
  await p.reply();
  const ehlo = await p.command('EHLO client.test');
  for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'SIZE 20000', 'STARTTLS']) assert.match(ehlo.text, new RegExp(`250[- ]${ext}`), ext);
  assert.doesNotMatch(ehlo.text, /AUTH/);
  assert.equal((await p.command('STARTTLS')).code, 220);
  await p.upgrade();
  const secured = await p.command('EHLO client.test');
  assert.match(secured.text, /250[- ]AUTH PLAIN LOGIN/);
  p.close();
});

test('STARTTLS: commands a client pipelines behind it in plaintext are dropped, never run over TLS (RFC 3207 §5, CVE-2011-0411)', async () => {
  const p = await SmtpProbe.open(relay.port('submission'));
  await p.reply();
  await p.command('EHLO client.test');
  // A man in the middle appends a command to the client's STARTTLS, in the same packet.
  p.write('STARTTLS\r\nMAIL FROM:<injected@attacker.test>\r\n');
  assert.equal((await p.reply()).code, 220);
  await p.upgrade();
  const secured = await p.command('EHLO client.test');
  assert.equal(secured.code, 250, 'the first answer over TLS is the EHLO\'s, not one to the injected MAIL');
  // Had the injected MAIL run, a transaction would be open: RCPT would not be refused as out of sequence.
  const rcpt = await p.command('RCPT TO:<someone@example.test>');
  assert.equal(rcpt.code, 503, `RCPT before any MAIL over TLS: ${rcpt.text}`);
  p.close();
});

test('swaks: AUTH PLAIN and LOGIN over STARTTLS are accepted and the 250 names the queue id', async () => {
  for (const method of ['PLAIN', 'LOGIN']) {
    const r = await swaks(['--server', `127.0.0.1:${relay.port('submission')}`, '--tls', '--auth', method, '--auth-user', USER, '--auth-password', PASSWORD, '--from', 'app@example.com', '--to', 'someone@gmail.com']);
    assert.equal(r.code, 0, r.out);
    const id = queueIdOf(r.out);
    assert.ok(id, r.out);
    assert.match(r.out, /250 2\.6\.0 Ok: queued as/);
    const m = relay.store.get(id!);
    assert.equal(m?.authUser, USER);
    assert.deepEqual(m?.recipients.map((x) => x.recipient), ['someone@gmail.com']);
    assert.match(relay.store.body(id!)!.toString(), /^Received: from .*\sby relay\.test \(mailfleet\) with ESMTPSA id /s);
  }
});

test('swaks: a wrong password gets 535 5.7.8 and nothing is queued', async () => {
  const before = relay.store.messageCount();
  const r = await swaks(['--server', `127.0.0.1:${relay.port('submission')}`, '--tls', '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', 'wrong', '--to', 'someone@gmail.com']);
  assert.notEqual(r.code, 0);
  assert.match(r.out, /535 5\.7\.8 Authentication credentials invalid/);
  assert.equal(relay.store.messageCount(), before);
});

test('repeated AUTH failures from one address are throttled with 454 4.7.0; other addresses are not', async () => {
  const p = await SmtpProbe.open(relay.port('alt'), '127.0.0.1', '127.0.0.9');
  await p.reply();
  await p.command('EHLO client.test');
  for (let i = 0; i < 3; i++) assert.equal((await p.command(`AUTH PLAIN ${authPlain(USER, 'nope')}`)).code, 535);
  const throttled = await p.command(`AUTH PLAIN ${authPlain(USER, PASSWORD)}`);
  assert.equal(throttled.code, 454);
  assert.match(throttled.text, /4\.7\.0 Too many failed authentication attempts; try again in \d+ seconds/);
  p.close();
  const other = await authedProbe('127.0.0.10');
  other.close();
});

test('nodemailer: implicit TLS (465-style) and STARTTLS submission both deliver into the queue', async () => {
  for (const [name, secure] of [['smtps', true], ['submission', false]] as const) {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port(name), secure, requireTLS: !secure, auth: { user: USER, pass: PASSWORD }, tls: { rejectUnauthorized: false } });
    const info = await t.sendMail({ from: 'app@example.com', to: 'a@outlook.com', subject: `via ${name}`, text: 'hello', messageId: `<${name}@test>` });
    const id = queueIdOf(info.response);
    assert.ok(id, info.response);
    assert.equal(relay.store.get(id!)?.messageId, `<${name}@test>`);
    t.close();
  }
});

test('AUTH is refused on a plaintext connection to a listener that requires TLS', async () => {
  const p = await SmtpProbe.open(relay.port('submission'));
  await p.reply();
  await p.command('EHLO client.test');
  const auth = await p.command(`AUTH PLAIN ${authPlain(USER, PASSWORD)}`);
  assert.ok(auth.code >= 500, auth.text);
  assert.equal((await p.command('MAIL FROM:<app@example.com>')).code, 250);
  const rcpt = await p.command('RCPT TO:<x@gmail.com>');
  assert.equal(rcpt.code, 530);
  assert.match(rcpt.text, /^530 5\.7\.0 /);
  p.close();
});

test('no open relay: the MX listener takes mail for accepted domains only; unauthenticated submission gets 530', async () => {
  const mx = await swaks(['--server', `127.0.0.1:${relay.port('mx')}`, '--from', 'mailer-daemon@gmail.com', '--to', 'victim@gmail.com']);
  assert.notEqual(mx.code, 0);
  assert.match(mx.out, /550 5\.7\.1 Relaying denied/);
  // The accepted domains are bounce domains: only their consumed addresses (postmaster, tokens, feedback) take mail.
  const bounce = await swaks(['--server', `127.0.0.1:${relay.port('mx')}`, '--from', '<>', '--to', 'postmaster@bounces.example.com']);
  assert.equal(bounce.code, 0, bounce.out);
  assert.match(bounce.out, /250 .*recorded as [0-9A-Z]{16}/);
  const notAToken = await swaks(['--server', `127.0.0.1:${relay.port('mx')}`, '--from', '<>', '--to', 'b+123@bounces.example.com']);
  assert.match(notAToken.out, /550 5\.1\.1 /);
  const sub = await swaks(['--server', `127.0.0.1:${relay.port('alt')}`, '--from', 'x@example.com', '--to', 'victim@gmail.com']);
  assert.notEqual(sub.code, 0);
  assert.match(sub.out, /530 5\.7\.0 Authentication required/);
});

test('SIZE: a declared size over the limit gets 552 5.3.4 at MAIL; an oversized body gets 552 5.3.4 and is not queued', async () => {
  const p = await authedProbe();
  const declared = await p.command('MAIL FROM:<app@example.com> SIZE=50000');
  assert.equal(declared.code, 552);
  assert.match(declared.text, /5\.3\.4/);
  const before = relay.store.messageCount();
  assert.equal((await p.command('MAIL FROM:<app@example.com>')).code, 250);
  assert.equal((await p.command('RCPT TO:<x@gmail.com>')).code, 250);
  assert.equal((await p.command('DATA')).code, 354);
  p.write(`Subject: big\r\n\r\n${('x'.repeat(70) + '\r\n').repeat(400)}.\r\n`);
  const big = await p.reply();
  assert.equal(big.code, 552);
  assert.match(big.text, /5\.3\.4/);
  assert.equal(relay.store.messageCount(), before);
  p.close();
});

test('the recipient limit answers 452 4.5.3 and the message goes to the accepted ones', async () => {
  const p = await authedProbe();
  await p.command('MAIL FROM:<app@example.com>');
  for (let i = 0; i < 3; i++) assert.equal((await p.command(`RCPT TO:<r${i}@gmail.com>`)).code, 250);
  const fourth = await p.command('RCPT TO:<r3@gmail.com>');
  assert.equal(fourth.code, 452);
  assert.match(fourth.text, /4\.5\.3 Too many recipients/);
  await p.command('DATA');
  p.write('Subject: three\r\n\r\nhi\r\n.\r\n');
  const done = await p.reply();
  const id = queueIdOf(done.text);
  assert.equal(relay.store.get(id!)?.recipients.length, 3);
  p.close();
});

// SMTP smuggling (2023): each variant hides a second transaction behind a fake end of data.
const SMUGGLING: [string, string][] = [
  ['<LF>.<LF>', '\n.\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
  ['<LF>.<CR>', '\n.\r'],
];
for (const [name, fakeEnd] of SMUGGLING) {
  test(`smuggling ${name}: never ends DATA, never starts a second message, and the message is refused with 550 5.6.0`, async () => {
    const p = await authedProbe();
    const before = relay.store.messageCount();
    await p.command('MAIL FROM:<app@example.com>');
    await p.command('RCPT TO:<x@gmail.com>');
    assert.equal((await p.command('DATA')).code, 354);
    p.write(`Subject: outer\r\n\r\nbody${fakeEnd}MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@gmail.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsend money\r\n.\r\n`);
    const r = await p.reply();
    assert.equal(r.code, 550, r.text);
    assert.match(r.text, /^550 5\.6\.0 Message refused: bare <(LF|CR)>/);
    // The connection is still in step: the next command gets its own reply, not a leftover one.
    const noop = await p.command('NOOP');
    assert.equal(noop.code, 250);
    assert.equal(relay.store.messageCount(), before);
    p.close();
  });
}

test('a line longer than the limit is refused with 550 5.5.6', async () => {
  const p = await authedProbe();
  await p.command('MAIL FROM:<app@example.com>');
  await p.command('RCPT TO:<x@gmail.com>');
  await p.command('DATA');
  p.write(`Subject: long\r\n\r\n${'y'.repeat(1200)}\r\n.\r\n`);
  const r = await p.reply();
  assert.match(r.text, /^550 5\.5\.6 /);
  p.close();
});

test('PIPELINING: MAIL, RCPT, RCPT and DATA in one write get four replies in order', async () => {
  const p = await authedProbe();
  p.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<a@gmail.com>\r\nRCPT TO:<b@yahoo.com>\r\nDATA\r\n');
  const codes = [];
  for (let i = 0; i < 4; i++) codes.push((await p.reply()).code);
  assert.deepEqual(codes, [250, 250, 250, 354]);
  p.write('Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n');
  const done = await p.reply();
  assert.match(done.text, /^250 2\.6\.0 Ok: queued as /);
  assert.equal((await p.reply()).code, 221);
  assert.deepEqual(relay.store.get(queueIdOf(done.text)!)?.recipients.map((r) => r.recipient), ['a@gmail.com', 'b@yahoo.com']);
});

test('SMTPUTF8 and 8BITMIME: internationalised addresses and 8-bit bodies are queued intact', async () => {
  const p = await authedProbe();
  assert.equal((await p.command('MAIL FROM:<отправитель@example.com> SMTPUTF8 BODY=8BITMIME')).code, 250);
  p.write(Buffer.from('RCPT TO:<用户@例子.广告>\r\n', 'utf8'));
  assert.equal((await p.reply()).code, 250);
  await p.command('DATA');
  p.write(Buffer.from('Subject: =?UTF-8?B?w6k=?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnaïve café ☕\r\n.\r\n', 'utf8'));
  const r = await p.reply();
  const id = queueIdOf(r.text);
  assert.ok(id, r.text);
  const m = relay.store.get(id!);
  assert.equal(m?.mailFrom, 'отправитель@example.com');
  assert.deepEqual(m?.recipients.map((x) => x.recipient), ['用户@例子.广告']);
  assert.match(relay.store.body(id!)!.toString('utf8'), /naïve café ☕/);
  p.close();
});

test('the greeting comes at once on submission; the MX listener keeps its early-talker delay', async () => {
  const greetingMs = async (port: number) => {
    const t0 = performance.now();
    const p = await SmtpProbe.open(port);
    await p.reply();
    p.close();
    return performance.now() - t0;
  };
  const sub: number[] = [];
  const mx: number[] = [];
  for (let i = 0; i < 5; i++) {
    sub.push(await greetingMs(relay.port('alt')));
    mx.push(await greetingMs(relay.port('mx')));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
  // smtp-server's built-in wait is 100 ms; the MX listener must still show it, submission must not.
  assert.ok(median(mx) >= 100, `mx greeting after ${median(mx)} ms`);
  assert.ok(median(sub) < 50, `submission greeting after ${median(sub)} ms`);
});

test('an early talker on the MX listener is cut off before it can send', async () => {
  const p = await SmtpProbe.open(relay.port('mx'));
  p.write('EHLO spammer.test\r\n');
  const r = await p.reply();
  assert.equal(r.code, 421, r.text);
  await p.whenClosed();
});
