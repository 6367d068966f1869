// The relay's authenticated API as a user meets it: mail submitted with swaks carrying
// X-Mailfleet-Tag (removed before it is stored), then tracked by tag, queue id and Message-ID;
// suppressions added, listed, imported, exported and removed over HTTP; 401 without the token;
// the metrics pass promtool.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { workspace, startTestRelay, USER, PASSWORD, type Workspace } from '../support/relay-harness.ts';
import type { Relay } from '../../relay/relay.ts';

let ws: Workspace;
let relay: Relay;
let base: string;
const TOKEN = 'Sesame-0123456789abcdef';

before(async () => {
  ws = await workspace();
  writeFileSync(join(ws.dir, 'api-token'), `${TOKEN}\n`);
  relay = await startTestRelay(ws, { feedback: { apiTokenFile: join(ws.dir, 'api-token') }, domains: [{ domain: 'shop.test' }] });
  base = `http://127.0.0.1:${relay.http.port}`;
});

after(async () => {
  await relay?.stop();
  rmSync(ws.dir, { recursive: true, force: true });
});

function api(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  const { token = TOKEN, ...rest } = init;
  return fetch(`${base}${path}`, { ...rest, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(rest.headers as Record<string, string> | undefined) } });
}

function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('swaks', ['--hide-informational', '--suppress-data', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

test('401 without the bearer token, or with a wrong one', async () => {
  for (const path of ['/v1/suppressions', '/v1/events', '/v1/messages?tag=x', '/v1/suppressions/export']) {
    assert.equal((await api(path, { token: null })).status, 401, path);
    assert.equal((await api(path, { token: 'wrong' })).status, 401, path);
  }
  const r = await api('/v1/suppressions', { token: null });
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="mailfleet"');
});

test('a tagged message is tracked by tag, queue id and Message-ID; the tag header never reaches the stored message', async () => {
  const r = await swaks([
    '--server', `127.0.0.1:${relay.port('alt')}`, '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', PASSWORD,
    '--from', 'billing@shop.test', '--to', 'customer@rcpt.test,other@rcpt.test',
    '--header', 'X-Mailfleet-Tag: invoice-4711, customer-42', '--header', 'Message-Id: <bill-4711@shop.test>', '--header', 'From: Billing <billing@shop.test>',
  ]);
  assert.equal(r.code, 0, r.out);
  const id = /queued as ([0-9A-Z]{16})/.exec(r.out)![1]!;
  assert.doesNotMatch(relay.store.body(id)!.toString(), /X-Mailfleet-Tag/i);
  relay.feedback.flush();
  for (const q of ['tag=invoice-4711', `queueId=${id}`, 'messageId=%3Cbill-4711%40shop.test%3E', 'recipient=customer%40rcpt.test']) {
    const res = await api(`/v1/messages?${q}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { source: string; messages: { queueId: string; messageId: string; sendingDomain: string; tags: string[]; inQueue: boolean; recipients: { recipient: string; state: string; events: { type: string; id: string }[] }[] }[] };
    assert.equal(body.source, 'relay');
    const m = body.messages[0]!;
    assert.deepEqual([m.queueId, m.messageId, m.sendingDomain, m.tags, m.inQueue], [id, 'bill-4711@shop.test', 'shop.test', ['invoice-4711', 'customer-42'], true], q);
    const rc = m.recipients.find((x) => x.recipient === 'customer@rcpt.test')!;
    assert.equal(rc.state, 'queued', 'delivery is off here: the queue says where it is');
    assert.deepEqual(rc.events.map((e) => e.type), ['accepted']);
  }
  const ev = (await (await api('/v1/events?tag=customer-42')).json()) as { events: { type: string; recipient: string }[] };
  assert.deepEqual(ev.events.map((e) => [e.type, e.recipient]), [['accepted', 'customer@rcpt.test'], ['accepted', 'other@rcpt.test']]);
  assert.equal((await api('/v1/messages')).status, 400);
});

test('suppressions over HTTP: add, get, import CSV, export CSV, delete; bad input names the field', async () => {
  let r = await api('/v1/suppressions', { method: 'POST', body: JSON.stringify([{ address: 'Someone@RCPT.test', reason: 'complaint', scope: 'shop.test', detail: 'phoned' }]) });
  assert.equal(r.status, 201);
  r = await api('/v1/suppressions?address=someone%40rcpt.test');
  const got = (await r.json()) as { entries: { address: string; scope: string; reason: string; detail: string }[] };
  assert.deepEqual(got.entries.map((e) => [e.address, e.scope, e.reason, e.detail]), [['someone@rcpt.test', 'shop.test', 'complaint', 'phoned']]);
  r = await api('/v1/suppressions', { method: 'POST', body: JSON.stringify({ address: 'x@y.test', reason: 'grumpy' }) });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: string }).error, /reason: "grumpy" is not one of/);
  r = await api('/v1/suppressions', { method: 'POST', body: JSON.stringify({ address: 'nope' }) });
  assert.equal(r.status, 400);
  assert.match(((await r.json()) as { error: string }).error, /"nope" is not an email address/);

  r = await api('/v1/suppressions/import?reason=hard-bounce', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'address\nimp1@rcpt.test\nimp2@rcpt.test\nbroken\n' });
  assert.equal(r.status, 422);
  const imp = (await r.json()) as { imported: number; skipped: number; problems: { line: number; field: string }[] };
  assert.deepEqual([imp.imported, imp.skipped, imp.problems[0]!.line, imp.problems[0]!.field], [2, 1, 4, 'address']);
  const csv = await (await api('/v1/suppressions/export?reason=hard-bounce')).text();
  assert.deepEqual(csv.trim().split('\n').map((l) => l.split(',').slice(0, 3).join(',')), ['address,scope,reason', 'imp1@rcpt.test,*,hard-bounce', 'imp2@rcpt.test,*,hard-bounce']);

  r = await api('/v1/suppressions?address=someone%40rcpt.test', { method: 'DELETE' });
  assert.deepEqual([r.status, await r.json()], [200, { removed: 1 }]);
  r = await api('/v1/suppressions?address=someone%40rcpt.test', { method: 'DELETE' });
  assert.equal(r.status, 404);
});

test('stats say where the list lives; metrics pass promtool', async () => {
  const stats = (await (await fetch(`${base}/v1/stats`)).json()) as { feedback: { store: string; fleet: unknown } };
  assert.deepEqual([stats.feedback.store, stats.feedback.fleet], ['local', null]);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /^mailfleet_suppressions\{sending_domain="\*",reason="hard-bounce"\} 2$/m);
  assert.match(text, /^mailfleet_events_total\{type="accepted"\} 2$/m);
  assert.doesNotMatch(text, /mailfleet_suppression_store_up/, 'no PostgreSQL: no up/down series');
  const promtool = ['/usr/bin/promtool'].find((p) => existsSync(p));
  if (promtool) {
    const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  }
});

test('mailfleet messages show and events tail, over the API and on the data directory', async () => {
  const cli = (...a: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [new URL('../../cli/mailfleet.ts', import.meta.url).pathname, ...a], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
  const token = join(ws.dir, 'api-token');
  let r = await cli('messages', 'show', '--tag', 'invoice-4711', '--url', base, '--token-file', token);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /message-id:  bill-4711@shop\.test/);
  assert.match(r.out, /tags:        invoice-4711, customer-42/);
  assert.match(r.out, /<customer@rcpt\.test>  queued\n\s+\S+Z  accepted/);
  r = await cli('messages', 'show', '--tag', 'invoice-4711', '-d', relay.config.dataDir, '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out)[0].recipients.length, 2);
  r = await cli('messages', 'show', '--tag', 'no-such-tag', '--url', base, '--token-file', token);
  assert.deepEqual([r.code, r.err.trim()], [1, 'mailfleet messages: no message matches']);
  writeFileSync(join(ws.dir, 'wrong-token'), 'not-the-token\n');
  r = await cli('messages', 'show', '--tag', 'x', '--url', base, '--token-file', join(ws.dir, 'wrong-token'));
  assert.equal(r.code, 1);
  assert.match(r.err, /HTTP 401: missing or wrong bearer token/);
  r = await cli('messages', 'show', '--tag', 'x', '--url', base, '--token-file', join(ws.dir, 'credentials'));
  assert.equal(r.code, 2);
  assert.match(r.err, /--token-file: .*credentials must hold one token/);
  assert.doesNotMatch(r.err, /scrypt/, 'the file is never echoed');
  r = await cli('events', 'tail', '--no-follow', '-n', '5', '--url', base, '--token-file', token, '--tag', 'customer-42');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n').map((l) => JSON.parse(l).type), ['accepted', 'accepted']);
});

test('mailfleet suppressions over the API (--url): add, ls, import, export, rm', async () => {
  const cli = (input: string | undefined, ...a: string[]) => new Promise<{ code: number; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [new URL('../../cli/mailfleet.ts', import.meta.url).pathname, 'suppressions', ...a, '--url', base, '--token-file', join(ws.dir, 'api-token')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('close', (code) => resolve({ code: code ?? -1, out, err }));
    child.stdin.end(input);
  });
  let r = await cli(undefined, 'add', 'Remote@RCPT.test', '--reason', 'unsubscribe', '--scope', 'shop.test', '--expires', '2030-01-01T00:00:00Z');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(relay.feedback.suppressions.get('remote@rcpt.test').map((e) => [e.reason, e.scope, e.expiresAt]), [['unsubscribe', 'shop.test', Date.parse('2030-01-01T00:00:00Z')]]);
  r = await cli(undefined, 'ls', 'remote@rcpt.test', '--json');
  assert.equal(JSON.parse(r.out)[0].address, 'remote@rcpt.test');
  r = await cli('address,reason\nr1@rcpt.test,complaint\nbad\n', 'import', '-', '--scope', 'shop.test');
  assert.equal(r.code, 1);
  assert.match(r.out, /imported 1 entry in [\d.]+ s; 1 row\(s\) skipped/);
  assert.match(r.err, /-:3: address: "bad" is not an email address/);
  r = await cli(undefined, 'export', '--scope', 'shop.test', '--reason', 'complaint');
  assert.match(r.out, /^address,scope,reason,/);
  assert.match(r.out, /^r1@rcpt\.test,shop\.test,complaint,/m);
  r = await cli(undefined, 'rm', 'remote@rcpt.test');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(relay.feedback.suppressions.get('remote@rcpt.test'), []);
  r = await cli(undefined, 'rm', 'remote@rcpt.test');
  assert.equal(r.code, 1);
});

test('the tracking API shows an event the moment it happened, before its feedback.db batch (read your writes)', async () => {
  // A write just now: the next event waits up to 250 ms for its batch (in the events journal meanwhile).
  relay.feedback.flush();
  const queueId = '01RYWTESTQUEUE01';
  relay.feedback.accepted({ queueId, messageId: '<ryw@shop.test>', recipients: ['fresh@rcpt.test'], mailFrom: 'billing@shop.test', body: Buffer.from('From: <billing@shop.test>\r\n\r\nhi\r\n'), class: 'transactional', tags: [] });
  assert.deepEqual(relay.feedback.events.query({ queueId }), [], 'not in feedback.db yet');
  const events = ((await (await api(`/v1/events?queueId=${queueId}`)).json()) as { events: { type: string; recipient: string }[] }).events;
  assert.deepEqual(events.map((e) => [e.type, e.recipient]), [['accepted', 'fresh@rcpt.test']]);
  const messages = ((await (await api('/v1/messages?recipient=fresh%40rcpt.test')).json()) as { messages: { queueId: string }[] }).messages;
  assert.deepEqual(messages.map((m) => m.queueId), [queueId]);
});
