// Outcomes: temporary failure then success, permanent failure → DSN at the sender's MX, null MX,
// NXDOMAIN, and expiry at max age on an injected clock (no real waiting).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { message, startHarness, type Harness } from './harness.ts';

let dns: Dnsmasq;
let rcptSink: Sink;
let senderSink: Sink;
let blockingSink: Sink;
let h: Harness;
let now = Date.parse('2026-11-29T20:00:00Z');
const greylisted = new Set<string>();

before(async () => {
  [rcptSink, senderSink, blockingSink] = await startSinksOnOnePort([
    {
      address: '127.0.2.11',
      onRcpt(rcpt) {
        if (rcpt.startsWith('grey') && !greylisted.has(rcpt)) {
          greylisted.add(rcpt);
          return '451 4.7.1 Greylisted, please try again in 5 minutes';
        }
        if (rcpt.startsWith('down')) return '421 4.3.2 System not accepting network messages';
        if (rcpt.startsWith('bad')) return `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`;
        return undefined;
      },
    },
    { address: '127.0.2.12' },
    { address: '127.0.2.13', onConnect: (ip) => `554 5.7.1 Service unavailable; Client host [${ip}] blocked using Spamhaus` },
  ]);
  dns = await startDnsmasq({
    mx: [
      { domain: 'rcpt.test', host: 'mx.rcpt.test', preference: 10 },
      { domain: 'sender.test', host: 'mx.sender.test', preference: 10 },
      { domain: 'nullmx.test', host: '.', preference: 0 },
      { domain: 'blocking.test', host: 'mx.blocking.test', preference: 10 },
    ],
    a: [
      { name: 'mx.rcpt.test', address: '127.0.2.11' },
      { name: 'mx.sender.test', address: '127.0.2.12' },
      { name: 'mx.blocking.test', address: '127.0.2.13' },
    ],
    // Forwarded to a port where nothing answers: the resolver times out (as on a SERVFAIL).
    extra: ['--server=/unreachable-dns.test/127.0.0.1#9'],
  });
  h = await startHarness({
    config: { delivery: { egressIps: [{ address: '127.0.0.2', hostname: 'out-a.mailfleet.test' }] } },
    dnsServer: dns.server,
    mxPort: rcptSink.port,
    clock: () => now,
    options: { mtaSts: false },
  });
});

after(async () => {
  await h?.cleanup();
  await rcptSink?.close();
  await senderSink?.close();
  await blockingSink?.close();
  await dns?.stop();
});

function dsnsFor(id: string) {
  return senderSink.messages.filter((m) => m.body.toString().includes(`X-Mailfleet-Queue-ID: ${id}`));
}

test('4xx, then success at the next attempt (the reply\'s retry hint is honoured)', async () => {
  const id = await h.enqueue('alice@sender.test', ['grey1@rcpt.test']);
  const [deferred] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  assert.equal(deferred!.category, 'policy');
  assert.match(String(deferred!.reply), /^451 4\.7\.1 Greylisted/);
  assert.equal(deferred!.nextAttemptAt, new Date(now + 300_000).toISOString());
  const r = h.store.get(id)!.recipients[0]!;
  assert.deepEqual([r.state, r.attempts, r.nextAttemptAt], ['queued', 1, now + 300_000]);
  now += 300_000;
  h.delivery.wake();
  const [ok] = await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === id);
  assert.equal(ok!.attempts, 2);
  assert.equal(h.store.get(id), undefined, 'a fully delivered message leaves the queue');
});

test('5xx → bounced, DSN to the sender domain\'s MX with status and quoted reply', async () => {
  const body = message('alice@sender.test', 'bad1@rcpt.test', 'quarterly report');
  const id = await h.store.enqueue({ mailFrom: 'alice@sender.test', recipients: ['bad1@rcpt.test', 'good1@rcpt.test'], body: Buffer.from(body) });
  h.delivery.wake();
  const [b] = await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  assert.equal(b!.category, 'unknown-user');
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === id);
  const [d] = await h.waitForEvents((e) => e.event === 'dsn' && e.originalQueueId === id);
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === d!.queueId);
  const [dsn] = dsnsFor(id);
  assert.ok(dsn, 'DSN arrived');
  assert.equal(dsn.from, '', 'DSN has the null sender');
  assert.deepEqual(dsn.to, ['alice@sender.test']);
  const text = dsn.body.toString();
  assert.match(text, /Content-Type: multipart\/report; report-type=delivery-status/);
  assert.match(text, /Final-Recipient: rfc822; bad1@rcpt\.test/);
  assert.match(text, /Action: failed/);
  assert.match(text, /Status: 5\.1\.1/);
  assert.match(text, /Remote-MTA: dns; mx\.rcpt\.test/);
  assert.match(text, /Diagnostic-Code: smtp; 550 5\.1\.1 <bad1@rcpt\.test>: Recipient address rejected: User unknown/);
  assert.match(text, /Subject: quarterly report/, 'original headers included');
  assert.doesNotMatch(text, /good1@rcpt\.test>: delivery failed/);
});

test('a 5xx greeting defers (the session was refused, not the recipient) and reads as reputation', async () => {
  const id = await h.enqueue('alice@sender.test', ['x@blocking.test']);
  const [d] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  assert.match(String(d!.reply), /^451 4\.4\.1 mx\.blocking\.test refused the session: 554 5\.7\.1 Service unavailable; Client host \[127\.0\.0\.2\] blocked using Spamhaus/);
  assert.equal(d!.category, 'reputation');
});

test('null MX → bounced at once with 5.1.10', async () => {
  const id = await h.enqueue('alice@sender.test', ['x@nullmx.test']);
  const [b] = await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  assert.match(String(b!.reply), /^550 5\.1\.10 /);
  assert.equal(b!.category, 'dns');
  const [d] = await h.waitForEvents((e) => e.event === 'dsn' && e.originalQueueId === id);
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === d!.queueId);
  assert.match(dsnsFor(id)[0]!.body.toString(), /Status: 5\.1\.10/);
});

test('NXDOMAIN → bounced at once with 5.1.2', async () => {
  const id = await h.enqueue('alice@sender.test', ['x@no-such-domain.test']);
  const [b] = await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  assert.match(String(b!.reply), /^550 5\.1\.2 .*NXDOMAIN/);
  assert.equal(b!.category, 'dns');
});

test('DNS timeout → deferred with 4.4.3, not bounced', async () => {
  const id = await h.enqueue('alice@sender.test', ['x@unreachable-dns.test']);
  const [d] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  assert.match(String(d!.reply), /^451 4\.4\.3 DNS lookup of MX unreachable-dns\.test failed \(ETIMEOUT\)/);
  assert.equal(d!.category, 'dns');
  assert.equal(h.store.get(id)!.recipients[0]!.state, 'queued');
});

test('no DSN for a null sender, nor for a DSN', async () => {
  const id = await h.enqueue('', ['bad2@rcpt.test']);
  await h.waitForEvents((e) => e.event === 'bounced' && e.queueId === id);
  assert.equal(h.events.filter((e) => e.event === 'dsn' && e.originalQueueId === id).length, 0);
});

test('max age: deferred until the deadline, then expired with a DSN (injected clock)', async () => {
  const start = now;
  const id = await h.enqueue('alice@sender.test', ['down1@rcpt.test']);
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  // Jump to just before the deadline: one more (final) attempt is scheduled exactly at it.
  now = start + 5 * 86400_000 - 1000;
  h.delivery.wake();
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id, 2);
  assert.equal(h.store.get(id)!.recipients[0]!.nextAttemptAt, start + 5 * 86400_000);
  now = start + 5 * 86400_000;
  h.delivery.wake();
  const [x] = await h.waitForEvents((e) => e.event === 'expired' && e.queueId === id);
  assert.equal(x!.attempts, 3);
  const [d] = await h.waitForEvents((e) => e.event === 'dsn' && e.originalQueueId === id);
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === d!.queueId);
  const dsn = dsnsFor(id)[0]!.body.toString();
  assert.match(dsn, /Status: 4\.4\.7/);
  assert.match(dsn, /Diagnostic-Code: smtp; 421 4\.3\.2 System not accepting network messages/);
  assert.equal(h.store.get(id), undefined);
});

test('a DSN that cannot be stored postpones the bounce instead of losing the notice', async () => {
  const id = await h.enqueue('alice@sender.test', ['bad3@rcpt.test']);
  const store = h.store;
  const enqueue = store.enqueue.bind(store);
  store.enqueue = async () => {
    store.enqueue = enqueue;
    throw new Error('disk full (simulated)');
  };
  await h.waitForEvents((e) => e.msg === 'DSN could not be queued; bounce postponed' && e.queueId === id);
  const r = h.store.get(id)!.recipients[0]!;
  assert.deepEqual([r.state, r.nextAttemptAt], ['queued', now + 60_000]);
  now += 60_000;
  h.delivery.wake();
  const [d] = await h.waitForEvents((e) => e.event === 'dsn' && e.originalQueueId === id);
  await h.waitForEvents((e) => e.event === 'delivered' && e.queueId === d!.queueId);
  assert.equal(dsnsFor(id).length, 1);
  assert.equal(h.store.get(id), undefined);
});

test('outcomes are counted in metrics with bounded labels', async () => {
  const text = await h.metrics.registry.metrics();
  assert.match(text, /mailfleet_delivery_attempts_total\{result="delivered",source_ip="127\.0\.0\.2",provider="other",category="none"\} \d+/);
  assert.match(text, /mailfleet_delivery_attempts_total\{result="deferred",source_ip="127\.0\.0\.2",provider="other",category="policy"\} 1/);
  assert.match(text, /mailfleet_delivery_attempts_total\{result="bounced",source_ip="127\.0\.0\.2",provider="other",category="unknown-user"\} \d+/);
  assert.match(text, /mailfleet_delivery_attempts_total\{result="bounced",source_ip="127\.0\.0\.2",provider="none",category="dns"\} 2/);
  assert.match(text, /mailfleet_delivery_attempts_total\{result="expired",source_ip="127\.0\.0\.2",provider="other",category="soft"\} 1/);
  assert.match(text, /mailfleet_delivery_latency_seconds_count\{provider="other"\} [1-9]/);
  assert.match(text, /mailfleet_delivery_dsn_total\{action="failed"\} [1-9]/);
  assert.match(text, /mailfleet_queue_recipients\{state="queued"\} \d+/);
  for (const line of text.split('\n').filter((l) => l.startsWith('mailfleet_delivery'))) {
    assert.doesNotMatch(line, /@|\.test"/, `unbounded label value in ${line}`);
  }
});

test('the registry passes promtool check metrics', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  if (!existsSync('/usr/bin/promtool')) {
    t.skip('promtool not installed');
    return;
  }
  const r = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: await h.metrics.registry.metrics(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
