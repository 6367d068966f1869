// Through the real relay wiring: a sink MX answers 250, 550 5.1.1 or 421 4.7.0 per recipient; the
// relay's authenticated GET /v1/stats shows exactly those counts per IP × provider × domain × class,
// and a relay restarted on the same data directory continues them (same instance, no reset).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import type { StatsDocumentV1, StatsBucket } from '../../relay/stats/contract.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSink, freeTcpPort, type Sink } from '../support/sink.ts';

const TOKEN = 'stats-test-token';
let dns: Dnsmasq;
let sink: Sink;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-stats-'));
  writeFileSync(join(dir, 'api-token'), `${TOKEN}\n`);
  sink = await startSink({
    address: '127.0.7.1',
    port: await freeTcpPort('127.0.7.1'),
    onRcpt: (rcpt) => (rcpt.startsWith('gone') ? '550 5.1.1 no such user' : rcpt.startsWith('busy') ? '421 4.7.0 try again later' : undefined),
  });
  dns = await startDnsmasq({ mx: [{ domain: 'people.test', host: 'mx.people.test', preference: 10 }], a: [{ name: 'mx.people.test', address: '127.0.7.1' }] });
});

after(async () => {
  await sink?.close();
  await dns?.stop();
});

function start(): Promise<Relay> {
  const config = parseRelayConfig({
    hostname: 'relay.test',
    dataDir: join(dir, 'data'),
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0, apiTokenFile: join(dir, 'api-token') },
    listeners: [{ name: 'sub', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none' }],
    delivery: { dnsServers: [dns.server], allowPrivateMx: true, egressIps: [{ address: '127.0.0.3', hostname: 'out.mailfleet.test' }] },
    shaping: { providers: [{ name: 'people', mxSuffixes: ['people.test'] }] },
    domains: [{ domain: 'brand.test' }],
  });
  return startRelay(config, { logger: createLogger('silent', 'stats'), delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false }) });
}

async function stats(relay: Relay): Promise<StatsDocumentV1> {
  const res = await fetch(`http://127.0.0.1:${relay.http.port}/v1/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as StatsDocumentV1;
}

/** Polls the endpoint until `attempted` (all buckets) reaches n: outcomes are recorded right after the receiver replies. */
async function statsAfter(relay: Relay, n: number): Promise<StatsDocumentV1> {
  const end = Date.now() + 20_000;
  for (;;) {
    const s = await stats(relay);
    const total = s.buckets.reduce((a, b) => a + b.attempted, 0);
    if (total >= n || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const view = (b: StatsBucket) => ({ ip: b.ip, provider: b.provider, domain: b.domain, class: b.class, attempted: b.attempted, delivered: b.delivered, bouncedHard: b.bouncedHard, deferred: b.deferred, deferredPolicy: b.deferredPolicy });

test('250/550/421 at the sink → exactly those counts; a restarted relay continues them', async () => {
  let relay = await start();
  let stopped = false;
  after(async () => {
    if (!stopped) await relay.stop();
  });
  const before = await stats(relay);
  assert.equal(before.schemaVersion, 1);
  assert.deepEqual(before.buckets, []);
  const rcpts = ['ok1', 'ok2', 'ok3', 'ok4', 'ok5', 'ok6', 'gone1', 'gone2'].map((l) => `${l}@people.test`);
  await relay.store.enqueue({ mailFrom: 'news@brand.test', recipients: rcpts, body: Buffer.from('Subject: news\r\n\r\nhello\r\n'), class: 'bulk' });
  // 421 closes the session: a message of its own each, as a receiver's 421 defers a whole transaction.
  for (const r of ['busy1', 'busy2']) await relay.store.enqueue({ mailFrom: 'news@brand.test', recipients: [`${r}@people.test`], body: Buffer.from('Subject: news\r\n\r\nhello\r\n'), class: 'bulk' });
  await relay.store.enqueue({ mailFrom: 'codes@brand.test', recipients: ['ok7@people.test'], body: Buffer.from('Subject: code\r\n\r\n123456\r\n'), class: 'otp' });
  // 11 to people.test, and the DSN for the two bounces to news@brand.test (no MX: a "(other)" bounce).
  let s = await statsAfter(relay, 12);
  const hour = s.buckets[0]!.hour;
  assert.deepEqual(s.buckets.filter((b) => b.domain === 'brand.test').map(view), [
    { ip: '127.0.0.3', provider: 'people', domain: 'brand.test', class: 'bulk', attempted: 10, delivered: 6, bouncedHard: 2, deferred: 2, deferredPolicy: 2 },
    { ip: '127.0.0.3', provider: 'people', domain: 'brand.test', class: 'otp', attempted: 1, delivered: 1, bouncedHard: 0, deferred: 0, deferredPolicy: 0 },
  ]);
  assert.deepEqual(s.buckets.filter((b) => b.domain !== 'brand.test').map((b) => [b.domain, b.class, b.attempted]), [['(other)', 'transactional', 1]], 'the DSN (null sender) counts for no sending domain');
  assert.equal(s.queued, 2, 'the two deferred recipients wait for their retry');
  const instance = s.instance;
  stopped = true;
  await relay.stop();

  relay = await start();
  stopped = false;
  try {
    s = await stats(relay);
    assert.equal(s.instance, instance, 'same data volume, same counters');
    await relay.store.enqueue({ mailFrom: 'news@brand.test', recipients: ['ok8@people.test', 'gone3@people.test'], body: Buffer.from('Subject: more\r\n\r\nhello\r\n'), class: 'bulk' });
    s = await statsAfter(relay, 14);
    const bulk = s.buckets.filter((b) => b.class === 'bulk' && b.hour === hour);
    // (Run across an hour boundary the new attempts land in the next hour; the totals still hold.)
    const total = s.buckets.filter((b) => b.class === 'bulk').reduce((a, b) => ({ attempted: a.attempted + b.attempted, delivered: a.delivered + b.delivered, bouncedHard: a.bouncedHard + b.bouncedHard }), { attempted: 0, delivered: 0, bouncedHard: 0 });
    assert.ok(bulk.length >= 1);
    assert.deepEqual(total, { attempted: 12, delivered: 7, bouncedHard: 3 });
  } finally {
    stopped = true;
    await relay.stop();
  }
});

test('a complaint recorded by the feedback consumer counts in the domain\'s counters', async () => {
  const relay = await start();
  try {
    relay.feedback.recordFeedback({ kind: 'complaint', recipient: 'ok1@people.test', sendingDomain: 'brand.test', at: Date.now(), ip: '127.0.0.3', provider: 'people', feedbackType: 'abuse' });
    const s = await stats(relay);
    const complained = s.buckets.filter((b) => b.domain === 'brand.test').reduce((n, b) => n + b.complained, 0);
    assert.equal(complained, 1);
  } finally {
    await relay.stop();
  }
});
