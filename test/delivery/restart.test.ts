// A relay restarted with a retry backlog delivers every recipient exactly once: nothing lost
// (deferred state is durable, claims of a dead process are released), nothing duplicated.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { startHarness, type Harness, type LogEvent } from './harness.ts';
import { QueueStore } from '../../relay/queue/store.ts';
import net from 'node:net';
import { once } from 'node:events';

let dns: Dnsmasq;
let sink: Sink;
let h: Harness;
let accepting = false;
let now = Date.parse('2026-11-29T20:00:00Z');

before(async () => {
  [sink] = await startSinksOnOnePort([{ address: '127.0.3.11', onRcpt: () => (accepting ? undefined : '451 4.3.0 Temporary local problem - please try later') }]);
  dns = await startDnsmasq({
    mx: [
      { domain: 'backlog.test', host: 'mx.backlog.test', preference: 10 },
      { domain: 'other.test', host: 'mx.backlog.test', preference: 10 },
      { domain: 'tarpit.test', host: 'mx.tarpit.test', preference: 10 },
    ],
    a: [{ name: 'mx.backlog.test', address: '127.0.3.11' }, { name: 'mx.tarpit.test', address: '127.0.3.12' }],
  });
  h = await startHarness({ config: {}, dnsServer: dns.server, mxPort: sink!.port, clock: () => now, options: { mtaSts: false } });
});

after(async () => {
  await h?.cleanup();
  await sink?.close();
  await dns?.stop();
});

test('restart with a retry backlog loses and duplicates nothing', async () => {
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) {
    const rcpts = i % 4 === 0 ? [`m${i}a@backlog.test`, `m${i}b@backlog.test`, `m${i}c@other.test`] : [`m${i}@backlog.test`];
    expected.push(...rcpts);
    await h.enqueue('sender@mailfleet.test', rcpts);
  }
  await h.waitForEvents((e) => e.event === 'deferred', expected.length);
  assert.equal(h.store.counts().queued, expected.length);
  await h.stop();

  // A relay that died mid-attempt leaves claims (inflight) behind; simulate one.
  const crashed = new QueueStore(h.dataDir, { clock: () => now + 3600_000 });
  const claimed = crashed.claimDue(now + 3600_000, 5);
  assert.equal(claimed.length, 5);
  await crashed.close();

  accepting = true;
  now += 3600_000;
  await h.restart();
  h.delivery.wake();
  await h.waitForEvents((e) => e.event === 'delivered', expected.length, 30_000);
  const got = sink.messages.flatMap((m) => m.to).sort();
  assert.deepEqual(got, [...expected].sort(), 'each recipient exactly once');
  assert.equal(h.store.messageCount(), 0);
  assert.deepEqual(h.store.counts(), { queued: 0, inflight: 0, delivered: 0, bounced: 0 });
});

/** A receiver that accepts connections and never says a word. */
async function startTarpit(address: string, port: number): Promise<{ server: net.Server; port: number; close(): void }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  server.listen(port, address);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Mail to `recipient`, held by the tarpit, when the relay stops (within its grace): the stop does
 * not wait for it, and the recipient is queued again, due at once. Returns its deferred event.
 */
async function stopWhileStuck(tarpit: { server: net.Server }, recipient: string): Promise<LogEvent> {
  await h.restart({ stopGraceMs: 300 });
  const id = await h.enqueue('sender@mailfleet.test', [recipient]);
  await once(tarpit.server, 'connection');
  const t = performance.now();
  await h.stop();
  assert.ok(performance.now() - t < 3000, `stop took ${performance.now() - t} ms`);
  const [ev] = await h.waitForEvents((e) => e.event === 'deferred' && e.queueId === id);
  const inspect = new QueueStore(h.dataDir, { readOnlyRecovery: true });
  const r = inspect.get(id)!.recipients[0]!;
  await inspect.close();
  assert.deepEqual([r.state, r.nextAttemptAt], ['queued', now]);
  return ev!;
}

test('stop cuts attempts still in flight after the grace period; they are requeued, due at once', async () => {
  const tarpit = await startTarpit('127.0.3.12', sink.port);
  try {
    await h.stop();
    const ev = await stopWhileStuck(tarpit, 'stuck@tarpit.test');
    assert.match(String(ev.reply), /shutting down/);
  } finally {
    tarpit.close();
  }
});

test('stop does not wait for a DNS lookup that never ends; the recipient is requeued', async () => {
  const { MailResolver } = await import('../../relay/dns/resolver.ts');
  const { EventEmitter } = await import('node:events');
  const asked = new EventEmitter();
  const never = () => {
    asked.emit('query');
    return new Promise<never>(() => {});
  };
  const resolver = new MailResolver({ backend: { resolveMx: never, resolve4: never, resolve6: never, resolveTxt: never } });
  await h.restart({ stopGraceMs: 200, resolver });
  const id = await h.enqueue('sender@mailfleet.test', ['x@hanging-dns.test']);
  await once(asked, 'query');
  const t = performance.now();
  await h.stop();
  assert.ok(performance.now() - t < 3000, `stop took ${performance.now() - t} ms`);
  const inspect = new QueueStore(h.dataDir, { readOnlyRecovery: true });
  const r = inspect.get(id)!.recipients[0]!;
  await inspect.close();
  assert.equal(r.state, 'queued');
  assert.match(String(r.lastReply), /shutting down/);
});

test('stop cuts an attempt in flight through a route to an IP address (no race per attempt); requeued, due at once', async () => {
  const tarpit = await startTarpit('127.0.3.13', 0);
  const before = h.config.delivery;
  try {
    // As a live reload does: a new delivery section with the route.
    h.config.delivery = { ...before, routes: [{ domains: ['routed-tarpit.test'], host: '127.0.3.13', port: tarpit.port }] };
    const ev = await stopWhileStuck(tarpit, 'stuck@routed-tarpit.test');
    // The outcome the race gave: every recipient 451 4.4.1 "shutting down", as from the connect phase.
    assert.equal(ev.reply, '451 4.4.1 delivery stopped: the relay is shutting down');
    assert.equal(ev.mx, undefined);
  } finally {
    h.config.delivery = before;
    tarpit.close();
    await h.restart();
  }
});
