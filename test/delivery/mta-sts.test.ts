// MTA-STS (RFC 8461) against a policy served over HTTPS on loopback: enforce mode delivers only
// over verified TLS to a listed MX; a bad certificate or an unlisted MX defers the mail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { startHarness, type Harness } from './harness.ts';
import { createTestCa } from './certs.ts';

let dns: Dnsmasq;
let good: Sink;
let bad: Sink;
let web: https.Server;
let h: Harness;
const policyFetches: string[] = [];

const POLICIES: Record<string, string> = {
  'mta-sts.secure.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.secure.test\r\nmax_age: 86400\r\n',
  'mta-sts.badcert.test': 'version: STSv1\r\nmode: enforce\r\nmx: *.badcert.test\r\nmax_age: 86400\r\n',
  'mta-sts.unlisted.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.elsewhere.test\r\nmax_age: 86400\r\n',
  'mta-sts.trial.test': 'version: STSv1\r\nmode: testing\r\nmx: mx.trial.test\r\nmax_age: 86400\r\n',
};

before(async () => {
  const ca = createTestCa();
  [good, bad] = await startSinksOnOnePort([
    { address: '127.0.4.11', tls: ca.issue(['mx.secure.test', 'mx.unlisted.test']) },
    { address: '127.0.4.12', tls: ca.selfSigned(['mx.badcert.test', 'mx.plain.test']) },
  ]);
  web = https.createServer({ ...ca.issue(Object.keys(POLICIES)) }, (req, res) => {
    const host = String(req.headers.host);
    policyFetches.push(host);
    const policy = req.url === '/.well-known/mta-sts.txt' ? POLICIES[host] : undefined;
    if (!policy) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(policy);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.4.10', () => resolve()));
  dns = await startDnsmasq({
    mx: [
      { domain: 'secure.test', host: 'mx.secure.test', preference: 10 },
      { domain: 'badcert.test', host: 'mx.badcert.test', preference: 10 },
      { domain: 'unlisted.test', host: 'mx.unlisted.test', preference: 10 },
      { domain: 'plain.test', host: 'mx.plain.test', preference: 10 },
      { domain: 'trial.test', host: 'mx.trial.test', preference: 10 },
    ],
    a: [
      { name: 'mx.secure.test', address: '127.0.4.11' },
      { name: 'mx.unlisted.test', address: '127.0.4.11' },
      { name: 'mx.badcert.test', address: '127.0.4.12' },
      { name: 'mx.plain.test', address: '127.0.4.12' },
      { name: 'mx.trial.test', address: '127.0.4.12' },
      { name: 'mta-sts.trial.test', address: '127.0.4.10' },
      { name: 'mta-sts.secure.test', address: '127.0.4.10' },
      { name: 'mta-sts.badcert.test', address: '127.0.4.10' },
      { name: 'mta-sts.unlisted.test', address: '127.0.4.10' },
    ],
    txt: [
      { name: '_mta-sts.secure.test', text: 'v=STSv1; id=20261129T01' },
      { name: '_mta-sts.badcert.test', text: 'v=STSv1; id=20261129T01' },
      { name: '_mta-sts.unlisted.test', text: 'v=STSv1; id=20261129T01' },
      { name: '_mta-sts.trial.test', text: 'v=STSv1; id=20261129T01' },
    ],
  });
  h = await startHarness({
    config: {},
    dnsServer: dns.server,
    mxPort: good.port,
    options: { tlsCa: ca.ca.cert, mtaSts: { port: (web.address() as AddressInfo).port, ca: ca.ca.cert } },
  });
});

after(async () => {
  await h?.cleanup();
  await good?.close();
  await bad?.close();
  web?.close();
  await dns?.stop();
});

test('enforce: delivered over verified TLS to the listed MX', async () => {
  const id = await h.enqueue('s@mailfleet.test', ['a@secure.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === id);
  assert.deepEqual([ev!.tls, ev!.tlsVerified, ev!.mtaSts], [true, true, 'enforce']);
  const [m] = await good.waitForMessages(1);
  assert.equal(m!.secure, true);
  assert.ok(policyFetches.includes('mta-sts.secure.test'));
});

test('enforce: an MX with a bad certificate is refused; the mail waits', async () => {
  const id = await h.enqueue('s@mailfleet.test', ['a@badcert.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  assert.equal(ev!.category, 'tls');
  assert.match(String(ev!.reply), /^451 4\.7\.5 TLS with mx\.badcert\.test failed/);
  assert.equal(bad.messages.length, 0);
});

test('enforce: an MX not listed in the policy is not used', async () => {
  const id = await h.enqueue('s@mailfleet.test', ['a@unlisted.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  assert.equal(ev!.category, 'tls');
  assert.match(String(ev!.reply), /no MX host of unlisted\.test is listed in its MTA-STS policy/);
  assert.equal(good.messages.filter((m) => m.to.includes('a@unlisted.test')).length, 0);
});

test('no policy: the same bad certificate is accepted (opportunistic TLS)', async () => {
  const id = await h.enqueue('s@mailfleet.test', ['a@plain.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === id);
  assert.equal(ev!.tls, true);
  const [m] = await bad.waitForMessages(1);
  assert.equal(m!.secure, true);
});

test('testing mode: delivered despite the bad certificate, and the log says it was not verified', async () => {
  const id = await h.enqueue('s@mailfleet.test', ['a@trial.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === id);
  assert.deepEqual([ev!.tls, ev!.tlsVerified, ev!.mtaSts], [true, false, 'testing']);
});
