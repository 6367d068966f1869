// A paused sending domain (config pausedDomains): its bulk mail waits in the queue with no attempt,
// its otp mail and another domain's bulk are delivered at once, and after a resume (here: the relay
// restarted with the domain off the list) the held bulk is delivered: nothing lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSink, freeTcpPort, type Sink } from '../support/sink.ts';

let dns: Dnsmasq;
let sink: Sink;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-paused-'));
  sink = await startSink({ address: '127.0.7.2', port: await freeTcpPort('127.0.7.2') });
  dns = await startDnsmasq({ mx: [{ domain: 'people.test', host: 'mx.people.test', preference: 10 }], a: [{ name: 'mx.people.test', address: '127.0.7.2' }] });
});

after(async () => {
  await sink?.close();
  await dns?.stop();
});

function start(pausedDomains: string[]): Promise<Relay> {
  const config = parseRelayConfig({
    hostname: 'relay.test',
    dataDir: join(dir, 'data'),
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: 'sub', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none' }],
    delivery: { dnsServers: [dns.server], allowPrivateMx: true },
    domains: [{ domain: 'brand.test' }, { domain: 'other.test' }],
    pausedDomains,
  });
  return startRelay(config, { logger: createLogger('silent', 'paused'), delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false }) });
}

const body = (s: string) => Buffer.from(`Subject: ${s}\r\n\r\n${s}\r\n`);

test('bulk of a paused domain is held unattempted; its otp and another domain flow; resume delivers the held mail', async () => {
  let relay = await start(['brand.test']);
  let running = true;
  after(async () => {
    if (running) await relay.stop();
  });
  const held = await relay.store.enqueue({ mailFrom: 'news@brand.test', recipients: ['a@people.test', 'b@people.test'], body: body('bulk brand'), class: 'bulk' });
  await relay.store.enqueue({ mailFrom: 'news@other.test', recipients: ['c@people.test'], body: body('bulk other'), class: 'bulk' });
  const t0 = performance.now();
  await relay.store.enqueue({ mailFrom: 'codes@brand.test', recipients: ['d@people.test'], body: body('otp brand'), class: 'otp' });
  await sink.waitForMessages(2);
  const otpMs = performance.now() - t0;
  assert.deepEqual(sink.messages.map((m) => m.to[0]).sort(), ['c@people.test', 'd@people.test']);
  assert.ok(otpMs < 1000, `otp of the paused domain delivered in ${otpMs.toFixed(0)} ms`);

  // The held bulk: queued, never attempted, and the queue says why.
  const end = Date.now() + 10_000;
  let m = relay.store.get(held)!;
  while (!m.recipients.every((r) => r.lastReply?.includes('paused')) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    m = relay.store.get(held)!;
  }
  for (const r of m.recipients) {
    assert.equal(r.state, 'queued');
    assert.equal(r.attempts, 0);
    assert.match(r.lastReply ?? '', /^451 4\.7\.1 held: bulk mail from brand\.test is paused/);
  }
  const metrics = await relay.metrics.registry.metrics();
  assert.match(metrics, /mailfleet_shaping_held_back_total\{class="bulk",reason="domain-paused"\} 2/);
  const stats = (await (await fetch(`http://127.0.0.1:${relay.http.port}/v1/stats`)).json()) as { pausedDomains: string[]; queued: number };
  assert.deepEqual(stats.pausedDomains, ['brand.test']);
  assert.equal(stats.queued, 2);
  running = false;
  await relay.stop();

  // Resume: the domain off the list. The held recipients are due at once (not after the hold).
  relay = await start([]);
  running = true;
  await sink.waitForMessages(3, 10_000);
  assert.deepEqual(sink.messages.flatMap((m) => m.to).sort(), ['a@people.test', 'b@people.test', 'c@people.test', 'd@people.test']);
  // The outcome is recorded right after the receiver's 250.
  const done = () => relay.store.get(held) === undefined || relay.store.get(held)!.recipients.every((r) => r.state === 'delivered');
  for (const until = Date.now() + 5000; !done() && Date.now() < until;) await new Promise((r) => setTimeout(r, 20));
  assert.ok(done(), 'the held recipients are recorded delivered');
  assert.equal(relay.store.counts().queued ?? 0, 0, 'nothing left behind');
  running = false;
  await relay.stop();
});
