// One-click unsubscribe (RFC 8058) end to end: bulk mail of a domain with oneClickUnsubscribe goes
// out one recipient per transaction, each with its own signed List-Unsubscribe link and
// List-Unsubscribe-Post; a GET shows a page and changes nothing; the POST a mailbox provider
// sends suppresses that recipient for that domain at once, and the next bulk message to them is
// never attempted (transactional still goes); mail that has its own fields is left alone;
// forged tokens are refused. Served over HTTPS with the relay's certificate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { makeCertificate } from '../support/certs.ts';
import { message, startHarness, type Harness } from '../delivery/harness.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import { addUnsubscribeHeaders, mintUnsubscribeToken, readUnsubscribeToken, startUnsubscribeServer } from '../../relay/feedback/unsubscribe.ts';

let dns: Dnsmasq;
let sink: Sink;
let h: Harness;
let feedback: Feedback;
let dir: string;
let server: Server & { port: number };
let cert: { certFile: string; keyFile: string };

before(async () => {
  [sink] = await startSinksOnOnePort([{ address: '127.0.2.31' }]);
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-unsub-'));
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'ed.pem')], { stdio: 'pipe' });
  // RFC 8463: the ed25519 p= is the raw 32-byte key, not SPKI.
  const edPub = createPublicKey(readFileSync(join(dir, 'ed.pem'))).export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
  dns = await startDnsmasq({
    mx: [{ domain: 'rcpt.test', host: 'mx.rcpt.test', preference: 10 }], a: [{ name: 'mx.rcpt.test', address: '127.0.2.31' }],
    txt: [{ name: 'ed2026._domainkey.shop.test', text: `v=DKIM1; k=ed25519; p=${edPub}` }],
  });
  writeFileSync(join(dir, 'unsub-secret'), 'unsubscribe-secret\n');
  cert = makeCertificate(dir);
  const config = parseRelayConfig({
    hostname: 'relay.mailfleet.test', dataDir: dir, listeners: [{ name: 'sub', port: 0, tls: 'none' }], tls: cert,
    domains: [{ domain: 'shop.test', oneClickUnsubscribe: true }, { domain: 'plain.test' }],
    feedback: { unsubscribe: { baseUrl: 'https://unsubscribe.shop.test/', secretFile: join(dir, 'unsub-secret'), port: 0, address: '127.0.0.1' } },
  });
  feedback = new Feedback({ config });
  server = await startUnsubscribeServer({ feedback, secret: () => 'unsubscribe-secret', address: '127.0.0.1', port: 0, tls: { key: readFileSync(cert.keyFile), cert: readFileSync(cert.certFile) } });
  h = await startHarness({ config: { domains: [{ domain: 'shop.test', dkim: [{ selector: 'ed2026', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed.pem') }] }] }, dnsServer: dns.server, mxPort: sink.port, options: { mtaSts: false, feedback } });
});

after(async () => {
  await h?.cleanup();
  server?.close();
  feedback?.close();
  rmSync(dir, { recursive: true, force: true });
  await sink?.close();
  await dns?.stop();
});

function https(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method, path, ca: readFileSync(cert.certFile), servername: 'localhost', headers: body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function send(recipients: string[], cls: 'bulk' | 'transactional', body?: string, from = 'news@shop.test'): Promise<string> {
  const id = await h.store.enqueue({ mailFrom: from, recipients, body: Buffer.from(body ?? message(from, recipients[0]!)), class: cls });
  feedback.accepted({ queueId: id, messageId: undefined, recipients, mailFrom: from, body: Buffer.from(body ?? message(from, recipients[0]!)), class: cls, tags: [] });
  feedback.flush();
  h.delivery.wake();
  return id;
}

test('tokens: genuine ones read back, forged or mangled ones do not', () => {
  const t = mintUnsubscribeToken('k', { recipient: 'A@rcpt.test', domain: 'shop.test', at: 0 });
  assert.deepEqual(readUnsubscribeToken('k', t), { recipient: 'a@rcpt.test', domain: 'shop.test', day: 0 });
  assert.equal(readUnsubscribeToken('other-key', t), undefined);
  const forged = `${Buffer.from('victim@rcpt.test\nshop.test\n0').toString('base64url')}.${t.split('.')[1]}`;
  assert.equal(readUnsubscribeToken('k', forged), undefined);
  assert.equal(readUnsubscribeToken('k', 'garbage'), undefined);
  const own = Buffer.from('List-Unsubscribe: <mailto:u@shop.test>\r\nSubject: x\r\n\r\nbody\r\n');
  assert.equal(addUnsubscribeHeaders(own, 'https://x/u/t'), own, 'a message with its own field is left alone');
});

test('bulk mail gets a per-recipient signed link; GET shows a page; POST suppresses at once; the next bulk message is not attempted', async () => {
  const id = await send(['one@rcpt.test', 'two@rcpt.test'], 'bulk');
  const got = await sink.waitForMessages(2);
  const mine = got.filter((m) => /^List-Unsubscribe:/m.test(m.body.toString()));
  assert.equal(mine.length, 2, 'one copy per recipient');
  const links = mine.map((m) => {
    assert.equal(m.to.length, 1);
    const text = m.body.toString();
    assert.match(text, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r$/m);
    return { to: m.to[0]!, url: /^List-Unsubscribe: <(https:\/\/unsubscribe\.shop\.test\/u\/[^>]+)>\r$/m.exec(text)![1]! };
  });
  assert.notEqual(links[0]!.url, links[1]!.url);
  // Both fields are covered by the DKIM signature (RFC 8058 §4); test/delivery/dkim.test.ts shows an added one fails.
  const resolver = new Resolver();
  resolver.setServers([dns.server]);
  for (const m of mine) {
    const res = await dkimVerify(m.body, { resolver: async (name: string) => resolver.resolveTxt(name) });
    assert.equal(res.results[0]?.status.result, 'pass', JSON.stringify(res.results.map((r: { status: unknown }) => r.status)));
    const signed = /h=([^;]+)/.exec(m.body.toString().replace(/\r\n[ \t]+/g, ''))![1]!.toLowerCase();
    assert.match(signed, /list-unsubscribe:.*list-unsubscribe-post/);
  }
  const one = links.find((l) => l.to === 'one@rcpt.test')!;
  const path = new URL(one.url).pathname;

  const page = await https('GET', path);
  assert.equal(page.status, 200);
  assert.match(page.text, /Stop mail from <b>shop\.test<\/b> to <b>one@rcpt\.test<\/b>\?/);
  assert.deepEqual(feedback.suppressions.get('one@rcpt.test'), [], 'a GET (a link scanner) unsubscribes nobody');

  const post = await https('POST', path, 'List-Unsubscribe=One-Click');
  assert.equal(post.status, 200);
  const [entry] = feedback.suppressions.get('one@rcpt.test');
  assert.deepEqual([entry!.reason, entry!.scope], ['unsubscribe', 'shop.test']);
  assert.equal((await https('POST', `/u/${path.slice(3, -4)}AAAA`, 'List-Unsubscribe=One-Click')).status, 404, 'a mangled token is refused');

  const before = sink.messages.length;
  const next = await send(['one@rcpt.test'], 'bulk');
  const receipt = await send(['one@rcpt.test'], 'transactional');
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === receipt);
  await waitFor(() => feedback.events.query({ queueId: next }).some((e) => e.type === 'suppressed'));
  assert.equal(sink.messages.length, before + 1, 'only the transactional message went');
  assert.doesNotMatch(sink.messages.at(-1)!.body.toString(), /^List-Unsubscribe/m, 'transactional mail carries no unsubscribe link');
  assert.ok(id);
});

test('a domain without oneClickUnsubscribe, and mail with its own List-Unsubscribe, are left alone', async () => {
  const before = sink.messages.length;
  await send(['three@rcpt.test', 'four@rcpt.test'], 'bulk', undefined, 'news@plain.test');
  const own = `List-Unsubscribe: <mailto:leave@shop.test>\r\n${message('news@shop.test', 'five@rcpt.test')}`;
  await send(['five@rcpt.test'], 'bulk', own);
  await sink.waitForMessages(before + 2);
  const plain = sink.messages.slice(before).find((m) => m.to.includes('three@rcpt.test'))!;
  assert.deepEqual(plain.to.sort(), ['four@rcpt.test', 'three@rcpt.test'], 'one transaction for both');
  assert.doesNotMatch(plain.body.toString(), /^List-Unsubscribe/m);
  const five = sink.messages.slice(before).find((m) => m.to.includes('five@rcpt.test'))!;
  assert.match(five.body.toString(), /List-Unsubscribe: <mailto:leave@shop\.test>/);
  assert.doesNotMatch(five.body.toString(), /^List-Unsubscribe-Post/m);
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
