// Webhooks at least once, on an injected clock against real HTTP receivers: a receiver down for an
// hour then back gets every event, signatures verify, an event keeps its id on every retry; a
// receiver answering 500 forever gets retries with backoff for the retry period, then the events
// are dead-lettered and counted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import { verifyWebhook, SIGNATURE_HEADER } from '../../relay/events/webhooks.ts';

interface Received { ids: string[]; verified: boolean; at: number; tags: string[][] }

let dir: string;
let feedback: Feedback;
let registry: Registry;
let config: ReturnType<typeof parseRelayConfig>;
let now = Date.parse('2026-12-06T10:00:00Z');
let okServer: Server | undefined;
let okPort: number;
let failServer: Server;
const received: Received[] = [];
const failedAttempts: string[][] = [];

function receiver(status: () => number, into: (r: Received) => void): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const events = JSON.parse(body).events as { id: string; tags: string[] }[];
      into({
        ids: events.map((e) => e.id),
        tags: events.map((e) => e.tags),
        verified: verifyWebhook(String(req.headers[SIGNATURE_HEADER]), body, { k2: 'the-shop-secret' }, Math.floor(now / 1000)),
        at: now,
      });
      res.writeHead(status()).end();
    });
  });
}

async function listen(s: Server, port = 0): Promise<number> {
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
  return (s.address() as AddressInfo).port;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mailfleet-webhooks-'));
  writeFileSync(join(dir, 'shop-secret'), 'the-shop-secret\n');
  writeFileSync(join(dir, 'broken-secret'), 'other\n');
  okServer = receiver(() => 200, (r) => received.push(r));
  okPort = await listen(okServer);
  failServer = receiver(() => 500, (r) => failedAttempts.push(r.ids));
  const failPort = await listen(failServer);
  config = parseRelayConfig({
    hostname: 'relay.mailfleet.test', dataDir: dir, listeners: [{ name: 'sub', port: 0, tls: 'none' }],
    domains: [
      { domain: 'shop.test', webhook: { url: `http://127.0.0.1:${okPort}/hook`, secretFile: join(dir, 'shop-secret'), keyId: 'k2' } },
      { domain: 'broken.test', webhook: { url: `http://127.0.0.1:${failPort}/hook`, secretFile: join(dir, 'broken-secret') } },
    ],
  });
  registry = new Registry();
  // background without start(): the test drives the dispatcher's ticks on its clock.
  feedback = new Feedback({ config, registry, background: true, clock: () => now });
});

after(async () => {
  feedback?.close();
  okServer?.close();
  failServer?.close();
  rmSync(dir, { recursive: true, force: true });
});

function accept(queueId: string, from: string, recipients: string[], tags: string[] = []): void {
  feedback.accepted({ queueId, messageId: `<${queueId}@shop.test>`, recipients, mailFrom: from, body: Buffer.from(`From: <${from}>\r\nSubject: x\r\n\r\nhi\r\n`), class: 'transactional', tags });
}

test('receiver down for an hour, then back: every event delivered once it is back, signed, same ids on every retry', async () => {
  await new Promise<void>((r) => okServer!.close(() => r()));
  okServer = undefined;
  for (let i = 0; i < 150; i++) accept(`01WEBHOOKTEST${String(i).padStart(3, '0')}`, 'billing@shop.test', [`c${i}@rcpt.test`], [`invoice-${i}`]);
  feedback.flush();
  const ids = new Set(feedback.events.query({ limit: 1000 }).filter((e) => e.sendingDomain === 'shop.test').map((e) => e.id));
  assert.equal(ids.size, 150);
  // An hour of retries into a closed port: 30 s, 60 s, 120 s, … (doubling, capped at an hour).
  const start = now;
  let ticks = 0;
  while (now - start < 3600_000) {
    await feedback.webhooks!.tick();
    ticks++;
    now += 30_000;
  }
  const pending = feedback.events.outboxStats(now);
  assert.equal(pending.pending, 150, 'nothing given up after an hour');
  assert.equal(pending.dead, 0);
  assert.ok(pending.oldestAgeSeconds >= 3600);
  const metrics = await registry.metrics();
  const retried = Number(/^mailfleet_webhook_deliveries_total\{result="retry"\} (\d+)$/m.exec(metrics)?.[1]);
  // 150 events in two batches, each failing at 0, 30, 90, 210, 450, 930, 1890 s (doubling gaps).
  assert.ok(retried >= 2 * 6 && retried <= 2 * 8, `failed POSTs counted: ${retried} after ${ticks} ticks`);
  assert.match(metrics, /^mailfleet_webhook_pending_events 150$/m);

  okServer = receiver(() => 200, (r) => received.push(r));
  await listen(okServer, okPort);
  // The next retry is at most maxRetrySeconds (1 h) away.
  for (let i = 0; i < 120 && feedback.events.outboxStats(now).pending > 0; i++) {
    now += 60_000;
    await feedback.webhooks!.tick();
  }
  assert.equal(feedback.events.outboxStats(now).pending, 0, 'every event delivered');
  const got = received.flatMap((r) => r.ids);
  assert.deepEqual(new Set(got), ids, 'the same ids that were recorded (stable across retries)');
  assert.equal(got.length, 150, 'each once: the receiver never took a batch before');
  assert.ok(received.every((r) => r.verified), 'every signature verifies with key k2');
  assert.ok(received.every((r) => r.ids.length <= 100), 'batches of at most 100');
  assert.deepEqual(received.flatMap((r) => r.tags).slice(0, 2), [['invoice-0'], ['invoice-1']]);
  assert.match(await registry.metrics(), /^mailfleet_webhook_deliveries_total\{result="ok"\} 2$/m);
  assert.match(await registry.metrics(), /^mailfleet_webhook_lag_seconds_count 2$/m);
});

test('a receiver answering 500 forever: backoff retries for maxAgeSeconds (3 days), then dead letters, counted', async () => {
  for (let i = 0; i < 5; i++) accept(`01BROKENTEST${String(i).padStart(4, '0')}`, 'news@broken.test', [`d${i}@rcpt.test`]);
  feedback.flush();
  const start = now;
  while (now - start < 4 * 86400_000 && feedback.events.outboxStats(now).pending > 0) {
    await feedback.webhooks!.tick();
    now += 600_000;
  }
  const s = feedback.events.outboxStats(now);
  assert.equal(s.pending, 0);
  assert.equal(s.dead, 5);
  assert.ok(now - start >= 3 * 86400_000 - 3600_000 && now - start <= 3 * 86400_000 + 3600_000, `given up after ${(now - start) / 3600_000} h`);
  // Every attempt carried the same five ids; the gaps grew to the one-hour cap.
  assert.ok(failedAttempts.length >= 70 && failedAttempts.length <= 90, `attempts: ${failedAttempts.length}`);
  for (const a of failedAttempts) assert.deepEqual(a, failedAttempts[0]);
  const m = await registry.metrics();
  assert.match(m, /^mailfleet_webhook_deliveries_total\{result="dead"\} 1$/m);
  assert.match(m, /^mailfleet_webhook_dead_letters_total 5$/m);
  assert.match(m, /^mailfleet_webhook_dead_letter_events 5$/m);
});

test('a webhook added by a live config (domains apply live) gets that domain\'s next events', async () => {
  const before = received.length;
  config.domains = [...config.domains, { domain: 'late.test', dkim: [], oneClickUnsubscribe: false, webhook: { url: `http://127.0.0.1:${okPort}/hook`, secretFile: join(dir, 'shop-secret'), keyId: 'k2' } }];
  feedback.reconfigure();
  accept('01LATEDOMAIN0001', 'news@late.test', ['late@rcpt.test']);
  feedback.flush();
  await feedback.webhooks!.tick();
  const got = received.slice(before).flatMap((r) => r.ids);
  assert.equal(got.length, 1);
  assert.ok(received.slice(before).every((r) => r.verified));
});
