// Intake burst control and message classes as a submitting client sees them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { workspace, startTestRelay, USER, PASSWORD, type Workspace } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { addCredential } from '../../relay/intake/credentials.ts';
import type { Relay } from '../../relay/relay.ts';
import { join } from 'node:path';

let ws: Workspace;
const relays: Relay[] = [];
const authPlain = (u: string, p: string) => Buffer.from(`\0${u}\0${p}`).toString('base64');
const OTP_USER = 'codes@example.com';

before(async () => {
  ws = await workspace();
  await addCredential(ws.credentialsFile, OTP_USER, PASSWORD, 'otp');
});
after(async () => {
  for (const r of relays) await r.stop();
});

async function relay(patch: Record<string, unknown>): Promise<Relay> {
  // A queue of its own per relay: the assertions read what each one stored.
  const r = await startTestRelay(ws, { dataDir: join(ws.dir, `data-${relays.length}`), ...patch });
  relays.push(r);
  return r;
}

async function authed(r: Relay, user = USER): Promise<SmtpProbe> {
  const p = await SmtpProbe.open(r.port('alt'));
  assert.equal((await p.reply()).code, 220);
  assert.equal((await p.command('EHLO client.test')).code, 250);
  assert.equal((await p.command(`AUTH PLAIN ${authPlain(user, PASSWORD)}`)).code, 235);
  return p;
}

async function send(p: SmtpProbe, headers = ''): Promise<{ mail: number; text: string; data?: number }> {
  const mail = await p.command('MAIL FROM:<app@example.com>');
  if (mail.code !== 250) return { mail: mail.code, text: mail.text };
  assert.equal((await p.command('RCPT TO:<someone@example.net>')).code, 250);
  assert.equal((await p.command('DATA')).code, 354);
  const done = await p.command(`${headers}Subject: hi\r\n\r\nhello\r\n.`);
  return { mail: mail.code, text: done.text, data: done.code };
}

test('over the pool burst → 451 4.7.1 with a retry hint; nothing queued for it', async () => {
  const r = await relay({ intakeRate: { pool: { messagesPerSecond: 0.01, burst: 2 } } });
  const p = await authed(r);
  assert.equal((await send(p)).data, 250);
  assert.equal((await send(p)).data, 250);
  const over = await send(p);
  assert.equal(over.mail, 451);
  assert.match(over.text, /^451 4\.7\.1 Message rate limit exceeded \(relay\); try again in \d+ seconds/);
  assert.equal(r.store.messageCount(), 2);
  assert.match(await r.metrics.registry.metrics(), /mailfleet_intake_throttled_total\{listener="alt",scope="pool",action="tempfail"\} 1/);
  p.close();
});

test('per-credential quota: one account over its rate does not stop another', async () => {
  const r = await relay({ intakeRate: { perCredential: { messagesPerSecond: 0.01, burst: 1 } } });
  const a = await authed(r);
  assert.equal((await send(a)).data, 250);
  const over = await send(a);
  assert.equal(over.mail, 451);
  assert.match(over.text, /4\.7\.1 .*this account/);
  const b = await authed(r, OTP_USER);
  assert.equal((await send(b)).data, 250);
  a.close();
  b.close();
});

test('whenOver: queue accepts and holds the message back until the bucket allows it', async () => {
  const r = await relay({ intakeRate: { pool: { messagesPerSecond: 0.01, burst: 1 }, whenOver: 'queue' } });
  const p = await authed(r);
  assert.equal((await send(p)).data, 250);
  const t = Date.now();
  assert.equal((await send(p)).data, 250);
  const [first, second] = r.store.list();
  assert.ok(first!.recipients[0]!.nextAttemptAt <= t);
  assert.ok(second!.recipients[0]!.nextAttemptAt >= t + 90_000, 'held back ~100 s (1 message per 100 s)');
  p.close();
});

test('class: the credential default, overridden by X-Mailfleet-Class, which is removed', async () => {
  const r = await relay({});
  const plain = await authed(r);
  assert.equal((await send(plain)).data, 250);
  assert.equal((await send(plain, 'X-Mailfleet-Class: bulk\r\n')).data, 250);
  const codes = await authed(r, OTP_USER);
  assert.equal((await send(codes)).data, 250);
  const list = r.store.list();
  assert.deepEqual(list.map((m) => m.class), ['transactional', 'bulk', 'otp']);
  for (const m of list) assert.doesNotMatch(r.store.body(m.id)!.toString(), /X-Mailfleet-Class/i);
  plain.close();
  codes.close();
});

test('GET /v1/stats answers a versioned document', async () => {
  const r = await relay({});
  const res = await fetch(`http://127.0.0.1:${r.http.port}/v1/stats`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { version: number };
  assert.equal(body.version, 1);
});
