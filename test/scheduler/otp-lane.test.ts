// The otp lane: one-time-password mail is delivered while 20,000 bulk messages queue toward a slow
// receiver of the same provider. Asserted by order and by how many bulk messages got in between,
// not by wall-clock numbers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { freeTcpPort } from '../support/sink.ts';
import { startHarness, message, type Harness } from '../delivery/harness.ts';
import { startShapingSink, type ShapingSink } from './shaping-sink.ts';

let dns: Dnsmasq;
let sink: ShapingSink;
let h: Harness;
const MAX_CONNECTIONS = 5;
const BULK = 20_000;

before(async () => {
  const port = await freeTcpPort('127.0.5.1');
  sink = await startShapingSink('127.0.5.1', port);
  // A slow receiver: every message takes a while to be accepted.
  sink.delayMs = 15;
  dns = await startDnsmasq({
    mx: [
      { domain: 'bulk.test', host: 'mx.slow.sink.test', preference: 10 },
      { domain: 'codes.test', host: 'mx.slow.sink.test', preference: 10 },
    ],
    a: [{ name: 'mx.slow.sink.test', address: '127.0.5.1' }],
  });
  h = await startHarness({
    config: {
      delivery: { egressIps: [{ address: '127.0.0.2', hostname: 'out-a.mailfleet.test', weight: 100 }] },
      shaping: { providers: [{ name: 'sinkco', mxSuffixes: ['sink.test'], maxConnections: MAX_CONNECTIONS, messagesPerSecond: 10_000 }] },
    },
    dnsServer: dns.server,
    mxPort: port,
    options: { mtaSts: false, stopGraceMs: 500 },
  });
});

after(async () => {
  await h?.cleanup();
  await sink?.close();
  await dns?.stop();
});

test('otp mail is served first while 20,000 bulk messages wait for a slow receiver', async (t) => {
  const t0 = performance.now();
  // Straight into the store: one group commit, no SMTP in the way.
  const body = Buffer.from(message('news@mailfleet.test', 'x@bulk.test', 'newsletter'));
  await Promise.all(Array.from({ length: BULK }, (_, i) => h.store.enqueue({ mailFrom: 'news@mailfleet.test', recipients: [`b${i}@bulk.test`], body, class: 'bulk' })));
  h.delivery.wake();
  t.diagnostic(`20000 bulk queued in ${Math.round(performance.now() - t0)} ms`);
  const isBulk = (m: { to: string[] }) => m.to[0]!.endsWith('@bulk.test');
  await sink.waitForMessages(50, 30_000, isBulk);

  const between: number[] = [];
  for (let i = 0; i < 5; i++) {
    const bulkBefore = sink.messages.filter(isBulk).length;
    await h.store.enqueue({ mailFrom: 'auth@mailfleet.test', recipients: [`user${i}@codes.test`], body: Buffer.from(message('auth@mailfleet.test', `user${i}@codes.test`, `code ${i}`)), class: 'otp' });
    h.delivery.wake();
    await sink.waitForMessages(1, 20_000, (m) => m.to[0] === `user${i}@codes.test`);
    between.push(sink.messages.filter(isBulk).length - bulkBefore);
  }
  const bulkDone = sink.messages.filter(isBulk).length;
  await h.waitForEvents((e) => e.event === 'delivered' && String(e.recipient).endsWith('@codes.test'), 5);
  t.diagnostic(`bulk delivered between a code's submission and its arrival: ${between.join(', ')}; bulk delivered in all: ${bulkDone}; ${Math.round(performance.now() - t0)} ms`);
  // Every code arrived while nearly the whole bulk backlog was still waiting...
  assert.ok(bulkDone < BULK / 10, `${bulkDone} bulk messages delivered before the last code`);
  // ...and each one overtook it: only the bulk messages already on the wire (a few per connection)
  // reached the receiver between a code's submission and its arrival.
  for (const n of between) assert.ok(n <= 4 * MAX_CONNECTIONS, `bulk messages delivered while a code waited: ${between.join(', ')}`);
  // The otp lane never exceeded the provider's connection limit either.
  assert.ok(sink.maxConcurrency.get('127.0.0.2')! <= MAX_CONNECTIONS, `${sink.maxConcurrency.get('127.0.0.2')} connections`);
  const metrics = await h.metrics.registry.metrics();
  const count = (name: string, cls: string) => Number(new RegExp(`${name}_count\\{class="${cls}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
  // Every code attempted (at least once) and delivered; bulk too.
  assert.ok(count('mailfleet_queue_age_seconds', 'otp') >= 5, metrics.split('\n').filter((l) => /class="otp"/.test(l)).join('\n'));
  assert.equal(count('mailfleet_delivery_class_latency_seconds', 'otp'), 5);
  assert.ok(count('mailfleet_delivery_class_latency_seconds', 'bulk') > 0);
  const failed = h.events.filter((e) => e.event !== undefined && e.event !== 'delivered' && String(e.recipient).endsWith('@codes.test'));
  assert.deepEqual(failed, [], 'no code was deferred');
});
