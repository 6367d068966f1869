// The whole path through the real relay wiring (relay/relay.ts): SMTP in → durable queue → wake →
// MX lookup → delivery from a source IP → sink, DKIM-signed, counted on /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { SmtpConnection } from '../../relay/delivery/smtp-client.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { message } from './harness.ts';
import { EventEmitter } from 'node:events';
import { waitUntil } from '../support/sink.ts';
import { parseLogLineStrict } from '../support/log-lines.ts';

const events: { event?: string }[] = [];
/** Lines that were not one JSON object with distinct keys (see parseLogLineStrict). */
const badLines: string[] = [];
const emitter = new EventEmitter();

let dns: Dnsmasq;
let sink: Sink;
let relay: Relay;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-e2e-'));
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'ed.pem')], { stdio: 'pipe' });
  const edPub = createPublicKey(readFileSync(join(dir, 'ed.pem'))).export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
  [sink] = await startSinksOnOnePort([{ address: '127.0.8.11' }]);
  dns = await startDnsmasq({
    mx: [{ domain: 'e2e-rcpt.test', host: 'mx.e2e-rcpt.test', preference: 10 }],
    a: [{ name: 'mx.e2e-rcpt.test', address: '127.0.8.11' }],
    txt: [{ name: 'e2e._domainkey.brand.test', text: `v=DKIM1; k=ed25519; p=${edPub}` }],
  });
  const config = parseRelayConfig({
    hostname: 'relay.e2e.test',
    dataDir: join(dir, 'data'),
    log: { level: 'warn' },
    http: { address: '127.0.0.1', port: 0 },
    // Unauthenticated intake for the accepted domain, as the bench does; the MX role would consume
    // the mail as a bounce instead of relaying it (docs/bounces.md).
    listeners: [{ name: 'mx', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none' }],
    acceptDomains: ['e2e-rcpt.test'],
    delivery: { dnsServers: [dns.server], allowPrivateMx: true, egressIps: [{ address: '127.0.0.3', hostname: 'out-b.mailfleet.test' }] },
    domains: [{ domain: 'brand.test', dkim: [{ selector: 'e2e', algorithm: 'ed25519-sha256', keyFile: join(dir, 'ed.pem') }] }],
  });
  relay = await startRelay(config, {
    logger: createLogger('info', 'e2e', {
      write(line: string) {
        try {
          parseLogLineStrict(line);
        } catch (err) {
          badLines.push((err as Error).message);
        }
        events.push(JSON.parse(line) as { event?: string });
        emitter.emit('event');
      },
    }),
    // The relay's own wiring, with the one test-only change: MX hosts listen on the sink's port, not 25.
    delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false }),
  });
});

after(async () => {
  await relay?.stop();
  await sink?.close();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('submitted mail is delivered to the MX from the source IP, DKIM-signed, and counted', async () => {
  const c = await SmtpConnection.open({ host: 'relay', address: '127.0.0.1', port: relay.port('mx'), ehloName: 'client.test', tls: 'none', connectTimeoutMs: 2000, commandTimeoutMs: 5000 });
  const r = await c.send('news@brand.test', ['reader@e2e-rcpt.test'], Buffer.from(message('news@brand.test', 'reader@e2e-rcpt.test', 'end to end')));
  await c.quit();
  assert.equal(r.recipients[0]!.reply.code, 250, r.recipients[0]!.reply.raw);

  const [m] = await sink.waitForMessages(1);
  assert.equal(m!.remoteAddress, '127.0.0.3');
  assert.equal(m!.heloName, 'out-b.mailfleet.test');
  assert.equal(m!.from, 'news@brand.test');
  const resolver = new Resolver();
  resolver.setServers([dns.server]);
  const v = await dkimVerify(m!.body, { resolver: async (name: string) => resolver.resolveTxt(name) });
  // A failure says why (status comment, the key DNS gave, the signed header section): it was seen once in CI (23:35) and not again in 60 runs.
  const why = async () => `${JSON.stringify(v.results.map((x: { status: unknown }) => x.status))}; key ${JSON.stringify(await resolver.resolveTxt('e2e._domainkey.brand.test').catch((e: Error) => e.message))}; headers ${JSON.stringify(m!.body.toString('latin1').split('\r\n\r\n')[0])}`;
  if (v.results.some((x: { status: { result: string } }) => x.status.result !== 'pass')) assert.fail(`DKIM did not verify: ${await why()}`);
  assert.equal(v.results.length, 1);

  await waitUntil(emitter, 'event', () => events.some((e) => e.event === 'delivered'), 10_000, 'the delivered event');
  const metrics = await (await fetch(`http://127.0.0.1:${relay.http.port}/metrics`)).text();
  assert.match(metrics, /mailfleet_delivery_attempts_total\{result="delivered",source_ip="127\.0\.0\.3",provider="other",category="none"\} 1/);
  // Per sending domain, bounded by the configured domains (docs/observability.md).
  assert.match(metrics, /mailfleet_delivery_domain_attempts_total\{sending_domain="brand\.test",result="delivered",category="none"\} 1/);
});

test('every log line the relay wrote (intake and delivery) is one JSON object with no key twice', () => {
  assert.ok(events.some((e) => e.event === 'delivered'), 'the delivery side logged');
  assert.deepEqual(badLines, []);
});
