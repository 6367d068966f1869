// Claim at birth: fresh mail the engine has room for is handed to it by the intake's own commit,
// without a queue scan; it is delivered and gone like any other, it does not overtake due mail
// of its class, and a relay killed (-9) after the 250 but before delivering it delivers it after
// the restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventEmitter, once } from 'node:events';
import { fsync } from 'node:fs';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { freeTcpPort, startSink, startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { workspace, baseConfig, writeConfig, USER, PASSWORD, startRelayProcess } from '../support/relay-harness.ts';
import { QueueStore, type DueRecipient } from '../../relay/queue/store.ts';
import { message, startHarness, type Harness } from './harness.ts';

let dns: Dnsmasq;
let sink: Sink;
let h: Harness;
let now = Date.parse('2026-11-29T20:00:00Z');
const greylisted = new Set<string>();
const claims: DueRecipient[][] = [];

before(async () => {
  [sink] = await startSinksOnOnePort([
    {
      address: '127.0.9.11',
      onRcpt(rcpt) {
        if (!rcpt.startsWith('grey') || greylisted.has(rcpt)) return undefined;
        greylisted.add(rcpt);
        return '451 4.7.1 Greylisted, please try again in 5 minutes';
      },
    },
  ]);
  dns = await startDnsmasq({
    mx: [{ domain: 'birth.test', host: 'mx.birth.test', preference: 10 }],
    a: [{ name: 'mx.birth.test', address: '127.0.9.11' }],
  });
  h = await startHarness({ config: {}, dnsServer: dns.server, mxPort: sink.port, clock: () => now, options: { mtaSts: false } });
  // Every queue scan the engine makes, with what it got.
  const claimDue = h.store.claimDue.bind(h.store);
  h.store.claimDue = (...args) => {
    const got = claimDue(...args);
    claims.push(got);
    return got;
  };
});

after(async () => {
  await h?.cleanup();
  await sink?.close();
  await dns?.stop();
});

/** Straight into the store, as the intake does, and without waking the engine. */
function enqueue(to: string): Promise<string> {
  return h.store.enqueue({ mailFrom: 'sender@mailfleet.test', recipients: [to], body: Buffer.from(message('sender@mailfleet.test', to)) });
}

test('fresh mail is taken at birth: delivered without a queue scan, every outcome recorded, and its row is gone', async () => {
  const scans = claims.length;
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const id = await enqueue(`fresh${i}@birth.test`);
    // Acknowledged and already the engine's: written inflight by the intake's own commit.
    assert.equal(h.store.get(id)!.recipients[0]!.state, 'inflight');
    ids.push(id);
  }
  // And ten at once, one group commit.
  ids.push(...(await Promise.all(Array.from({ length: 10 }, (_, i) => enqueue(`batch${i}@birth.test`)))));
  await h.waitForEvents((e) => e.event === 'delivered' && ids.includes(String(e.queueId)), 20);
  assert.equal(claims.length, scans, 'no queue scan was needed');
  await sink.waitForMessages(20);
  assert.deepEqual(sink.messages.flatMap((m) => m.to).sort(), [...Array.from({ length: 10 }, (_, i) => `batch${i}@birth.test`), ...Array.from({ length: 10 }, (_, i) => `fresh${i}@birth.test`)].sort());
  assert.equal(h.store.messageCount(), 0, 'every outcome was recorded and every message deleted');
  assert.deepEqual(h.store.counts(), { queued: 0, inflight: 0, delivered: 0, bounced: 0 });
});

test('fresh mail does not overtake mail of its class that came due in the queue', async () => {
  const retried = await enqueue('grey1@birth.test');
  await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === retried);
  now += 301_000; // past the first retry (300 s)
  const scans = claims.length;
  const fresh = await enqueue('after-grey@birth.test');
  await h.waitForEvents((e) => e.event === 'delivered' && (e.queueId === retried || e.queueId === fresh), 2);
  // The fresh message was queued, and the scan that followed took the due retry first.
  const scan = claims.slice(scans).find((c) => c.length > 0)!;
  assert.deepEqual(scan.map((d) => d.messageId), [retried, fresh]);
  assert.equal(h.store.messageCount(), 0);
});

async function send(port: number, msgId: string): Promise<string> {
  const p = await SmtpProbe.open(port);
  try {
    await p.reply();
    await p.command('EHLO birth.test');
    assert.equal((await p.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`)).code, 235);
    assert.equal((await p.command('MAIL FROM:<app@example.com>')).code, 250);
    assert.equal((await p.command('RCPT TO:<someone@birth.test>')).code, 250);
    assert.equal((await p.command('DATA')).code, 354);
    const r = await p.command(`Message-ID: ${msgId}\r\nSubject: born\r\n\r\nhello\r\n.`);
    assert.equal(r.code, 250, r.text);
    return /queued as ([0-9A-Z]{16})/.exec(r.text)![1]!;
  } finally {
    p.close();
  }
}

test('kill -9 after the 250, while the message taken at birth is being delivered: delivered once after the restart', async () => {
  const ws = await workspace();
  const address = '127.0.9.12';
  const port = await freeTcpPort(address);
  // A smarthost that accepts the connection and never says a word: the attempt hangs.
  const held: net.Socket[] = [];
  const tarpit = net.createServer((s) => held.push(s));
  tarpit.listen(port, address);
  await once(tarpit, 'listening');
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' }, delivery: { routes: [{ domains: ['*'], host: address, port }] } });
  let relay = await startRelayProcess(configFile);
  try {
    const connected = once(tarpit, 'connection');
    const id = await send(relay.port, '<born.1@birth.test>');
    await connected;
    relay.child.kill('SIGKILL');
    await relay.exited;
    const seen = new QueueStore(`${ws.dir}/data/queue`, { readOnlyRecovery: true });
    assert.deepEqual(seen.get(id)!.recipients.map((r) => r.state), ['inflight']);
    await seen.close();

    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => tarpit.close(() => resolve()));
    const smarthost = await startSink({ address, port });
    try {
      relay = await startRelayProcess(configFile);
      const [m] = await smarthost.waitForMessages(1);
      assert.deepEqual(m!.to, ['someone@birth.test']);
      assert.match(m!.body.toString(), /Message-ID: <born\.1@birth\.test>/);
      relay.child.kill('SIGTERM');
      assert.equal(await relay.exited, 0);
      assert.equal(smarthost.messages.length, 1, 'delivered once');
      const after = new QueueStore(`${ws.dir}/data/queue`, { readOnlyRecovery: true });
      assert.equal(after.messageCount(), 0);
      await after.close();
    } finally {
      await smarthost.close();
    }
  } finally {
    relay.child.kill('SIGKILL');
    for (const s of held) s.destroy();
    tarpit.close();
  }
});

test('an engine that stops while the fsync of mail it took at birth runs puts that mail back in the queue, due at once', async (t) => {
  // An fsync that waits until the test lets it go.
  const held: (() => void)[] = [];
  const fsyncs = new EventEmitter();
  const slowFsync = (fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    held.push(() => fsync(fd, cb));
    fsyncs.emit('held');
  };
  const s = await startHarness({ config: {}, dnsServer: dns.server, mxPort: sink.port, clock: () => now, options: { mtaSts: false }, storeOptions: { fsync: slowFsync } });
  t.after(() => s.cleanup());
  const id = '0000000000DDDDDD';
  const fsyncing = once(fsyncs, 'held');
  const acked = s.store.enqueue({ id, mailFrom: 'sender@mailfleet.test', recipients: ['late@birth.test'], body: Buffer.from(message('sender@mailfleet.test', 'late@birth.test')) });
  await fsyncing;
  assert.equal(s.store.get(id)!.recipients[0]!.state, 'inflight', 'committed for the engine, not acknowledged yet');
  await s.delivery.stop();
  for (const go of held.splice(0)) go();
  assert.equal(await acked, id);
  const r = s.store.get(id)!.recipients[0]!;
  assert.deepEqual([r.state, r.nextAttemptAt, r.attempts], ['queued', now, 0]);
});
