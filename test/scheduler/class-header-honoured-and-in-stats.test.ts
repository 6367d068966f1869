// Through the real relay wiring: an authenticated client marks a message otp with a header; it is
// delivered without that header, and GET /v1/stats reports it per IP and provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { addCredential } from '../../relay/intake/credentials.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { freeTcpPort } from '../support/sink.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { startShapingSink, type ShapingSink } from './shaping-sink.ts';
import type { StatsV1 } from '../../relay/stats/collector.ts';

let dns: Dnsmasq;
let sink: ShapingSink;
let relay: Relay;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-shaping-e2e-'));
  await addCredential(join(dir, 'credentials'), 'app', 'correct horse battery');
  sink = await startShapingSink('127.0.6.1', await freeTcpPort('127.0.6.1'));
  dns = await startDnsmasq({ mx: [{ domain: 'people.test', host: 'mx.people.test', preference: 10 }], a: [{ name: 'mx.people.test', address: '127.0.6.1' }] });
  const config = parseRelayConfig({
    hostname: 'relay.test',
    dataDir: join(dir, 'data'),
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    listeners: [{ name: 'sub', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuthOnLoopback: true }],
    auth: { credentialsFile: join(dir, 'credentials') },
    delivery: { dnsServers: [dns.server], allowPrivateMx: true, egressIps: [{ address: '127.0.0.2', hostname: 'out-a.mailfleet.test' }] },
    shaping: { providers: [{ name: 'people', mxSuffixes: ['people.test'] }] },
  });
  relay = await startRelay(config, {
    logger: createLogger('silent', 'e2e'),
    delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false }),
  });
});

after(async () => {
  await relay?.stop();
  await sink?.close();
  await dns?.stop();
});

test('X-Mailfleet-Class: otp is honoured, removed before sending, and the delivery shows in /v1/stats', async () => {
  const p = await SmtpProbe.open(relay.port('sub'));
  assert.equal((await p.reply()).code, 220);
  assert.equal((await p.command('EHLO client.test')).code, 250);
  assert.equal((await p.command(`AUTH PLAIN ${Buffer.from('\0app\0correct horse battery').toString('base64')}`)).code, 235);
  assert.equal((await p.command('MAIL FROM:<codes@brand.test>')).code, 250);
  assert.equal((await p.command('RCPT TO:<alice@people.test>')).code, 250);
  assert.equal((await p.command('DATA')).code, 354);
  assert.equal((await p.command('X-Mailfleet-Class: otp\r\nSubject: your code\r\n\r\n123456\r\n.')).code, 250);
  p.close();
  await sink.waitForMessages(1);
  const [msg] = sink.messages;
  assert.equal(msg!.source, '127.0.0.2');
  assert.doesNotMatch(msg!.body, /X-Mailfleet-Class/i);
  assert.match(msg!.body, /Subject: your code/);
  // The outcome is recorded right after the receiver's 250: poll the endpoint until it shows.
  let stats: StatsV1 | undefined;
  for (let i = 0; i < 1000; i++) {
    stats = (await (await fetch(`http://127.0.0.1:${relay.http.port}/v1/stats`)).json()) as StatsV1;
    if (stats.providers.some((x) => x.delivered > 0)) break;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(stats!.version, 1);
  assert.deepEqual(stats!.providers.map((x) => [x.provider, x.attempted, x.delivered]), [['people', 1, 1]]);
  assert.deepEqual(stats!.ips.map((x) => [x.address, x.delivered, x.providers.map((y) => y.provider)]), [['127.0.0.2', 1, ['people']]]);
  const metrics = await (await fetch(`http://127.0.0.1:${relay.http.port}/metrics`)).text();
  assert.match(metrics, /mailfleet_delivery_class_latency_seconds_count\{class="otp"\} 1/);
});
