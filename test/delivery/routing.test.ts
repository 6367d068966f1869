// Routing: source IPs and EHLO names, MX preference and fallback, connection reuse.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startPostfixSink, startSinksOnOnePort, type Sink, type PostfixSink } from '../support/sink.ts';
import { startHarness, type Harness } from './harness.ts';

let dns: Dnsmasq;
let sinks: Sink[];
let postfix: PostfixSink;
const harnesses: Harness[] = [];

const EGRESS = [
  { address: '127.0.0.2', hostname: 'out-a.mailfleet.test', weight: 100 },
  { address: '127.0.0.3', hostname: 'out-b.mailfleet.test', weight: 100 },
];

before(async () => {
  // mx1.fallback.test has an address but nothing listens there: connection refused.
  sinks = await startSinksOnOnePort([{ address: '127.0.1.12' }, { address: '127.0.1.13' }, { address: '127.0.1.14' }]);
  postfix = await startPostfixSink('127.0.1.15');
  dns = await startDnsmasq({
    mx: [
      { domain: 'two-ips.test', host: 'mx.two-ips.test', preference: 10 },
      { domain: 'fallback.test', host: 'mx1.fallback.test', preference: 10 },
      { domain: 'fallback.test', host: 'mx2.fallback.test', preference: 20 },
      { domain: 'reuse.test', host: 'mx.reuse.test', preference: 10 },
    ],
    a: [
      { name: 'mx.two-ips.test', address: '127.0.1.12' },
      { name: 'mx1.fallback.test', address: '127.0.1.11' },
      { name: 'mx2.fallback.test', address: '127.0.1.13' },
      { name: 'mx.reuse.test', address: '127.0.1.14' },
    ],
    ptr: [
      { name: '2.0.0.127.in-addr.arpa', target: 'out-a.mailfleet.test' },
      { name: '3.0.0.127.in-addr.arpa', target: 'out-b.mailfleet.test' },
    ],
  });
});

after(async () => {
  for (const h of harnesses) await h?.cleanup();
  await Promise.all((sinks ?? []).map((s) => s.close()));
  await postfix?.close();
  await dns?.stop();
});

async function harness(delivery: Record<string, unknown> = {}): Promise<Harness> {
  const h = await startHarness({ config: { delivery: { egressIps: EGRESS, ...delivery } }, dnsServer: dns.server, mxPort: sinks[0]!.port, options: { mtaSts: false } });
  harnesses.push(h);
  return h;
}

test('mail leaves from both source IPs, each saying its own name in EHLO', async () => {
  const h = await harness();
  const sink = sinks[0]!;
  for (let i = 0; i < 16; i++) await h.enqueue('sender@mailfleet.test', [`user${i}@two-ips.test`]);
  const msgs = await sink.waitForMessages(16);
  const seen = new Map(msgs.map((m) => [m.remoteAddress, m.heloName]));
  assert.deepEqual([...seen.keys()].sort(), ['127.0.0.2', '127.0.0.3']);
  for (const m of msgs) assert.equal(m.heloName, EGRESS.find((e) => e.address === m.remoteAddress)!.hostname);
  // What a receiver checks: the EHLO name is the PTR name of the connecting address.
  const { Resolver } = await import('node:dns/promises');
  const r = new Resolver();
  r.setServers([dns.server]);
  for (const [address, helo] of seen) assert.deepEqual(await r.reverse(address), [helo]);
  const delivered = await h.waitForEvents((e) => e.event === 'delivered', 16);
  assert.ok(delivered.every((e) => e.mx === 'mx.two-ips.test'));
});

test('Postfix smtp-sink as smarthost sees both source IPs and their EHLO names', async () => {
  const h = await harness({ routes: [{ domains: ['*'], host: postfix.address, port: postfix.port }] });
  for (let i = 0; i < 12; i++) await h.enqueue('sender@mailfleet.test', [`user${i}@anywhere.test`]);
  await h.waitForEvents((e) => e.event === 'delivered', 12);
  const dumps = postfix.messages();
  assert.equal(dumps.length, 12);
  const pairs = new Set(dumps.map((d) => `${/X-Client-Addr: (\S+)/.exec(d)?.[1]} ${/X-Helo-Args: (\S+)/.exec(d)?.[1]}`));
  assert.deepEqual([...pairs].sort(), ['127.0.0.2 out-a.mailfleet.test', '127.0.0.3 out-b.mailfleet.test']);
});

test('falls back to the second MX when the first refuses connections', async () => {
  const h = await harness();
  const sink = sinks[1]!;
  await h.enqueue('sender@mailfleet.test', ['someone@fallback.test']);
  const [msg] = await sink.waitForMessages(1);
  assert.deepEqual(msg!.to, ['someone@fallback.test']);
  const [ev] = await h.waitForEvents((e) => e.event === 'delivered');
  assert.equal(ev!.mx, 'mx2.fallback.test');
});

test('connections are reused per (source IP, MX) up to maxMessagesPerConnection', async () => {
  const h = await harness({ egressIps: [EGRESS[0]], maxConnectionsPerHost: 1, maxMessagesPerConnection: 4 });
  const sink = sinks[2]!;
  for (let i = 0; i < 10; i++) await h.enqueue('sender@mailfleet.test', [`r${i}@reuse.test`]);
  await sink.waitForMessages(10);
  await h.waitForEvents((e) => e.event === 'delivered', 10);
  assert.equal(sink.connections.length, 3, `connections: ${sink.connections.length}`);
  const perConn = new Map<string, number>();
  for (const m of sink.messages) perConn.set(m.connectionId, (perConn.get(m.connectionId) ?? 0) + 1);
  assert.deepEqual([...perConn.values()].sort(), [2, 4, 4]);
});

test('one transaction per message and destination domain', async () => {
  const h = await harness({ egressIps: [EGRESS[0]] });
  const sink = sinks[0]!;
  const before = sink.messages.length;
  await h.enqueue('sender@mailfleet.test', ['a@two-ips.test', 'b@two-ips.test', 'c@two-ips.test']);
  await sink.waitForMessages(before + 1);
  await h.waitForEvents((e) => e.event === 'delivered', 3);
  assert.deepEqual(sink.messages.at(-1)!.to.sort(), ['a@two-ips.test', 'b@two-ips.test', 'c@two-ips.test']);
});

test('a route host is resolved like the system does (/etc/hosts), e.g. "localhost"', async () => {
  const { startSink } = await import('../support/sink.ts');
  const local = await startSink({ address: '127.0.0.1' });
  let h: Harness | undefined;
  try {
    h = await harness({ egressIps: [EGRESS[0]], routes: [{ domains: ['smart.test'], host: 'localhost', port: local.port }] });
    await h.enqueue('sender@mailfleet.test', ['x@smart.test']);
    const [m] = await local.waitForMessages(1);
    assert.equal(m!.remoteAddress, '127.0.0.2');
    const [ev] = await h.waitForEvents((e) => e.event === 'delivered');
    assert.equal(ev!.mx, 'localhost');
  } finally {
    // Stop first: the engine QUITs its parked connection, which the sink's close waits for.
    await h?.stop();
    await local.close();
  }
});

test('by default an MX on loopback is "no mail service" (5.4.6) and is never contacted', async () => {
  const h = await harness({ allowPrivateMx: false });
  const sink = sinks[0]!;
  const before = sink.connections.length;
  const id = await h.enqueue('', ['x@two-ips.test']);
  const [b] = await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  assert.match(String(b!.reply), /^550 5\.4\.6 MX of two-ips\.test points to a loopback address/);
  assert.equal(b!.category, 'dns');
  assert.equal(sink.connections.length, before);
});
