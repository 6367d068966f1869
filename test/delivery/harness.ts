// A relay's delivery side, wired to a private dnsmasq, for the delivery integration tests.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../../relay/config/load.ts';
import type { RelayConfig } from '../../relay/config/schema.ts';
import { QueueStore, type QueueStoreOptions } from '../../relay/queue/store.ts';
import { createLogger } from '../../relay/log.ts';
import { createRelayMetrics, type RelayMetrics } from '../../relay/metrics.ts';
import { collectQueueGauge } from '../../relay/scrape-gauges.ts';
import { MailResolver } from '../../relay/dns/resolver.ts';
import { startDelivery, type Delivery, type DeliveryOptions } from '../../relay/delivery/engine.ts';
import { waitUntil } from '../support/sink.ts';
import type { SignedDeliveryRig } from '../support/dkim-keys.ts';

export interface LogEvent {
  event?: string;
  queueId?: string;
  recipient?: string;
  sourceIp?: string;
  mx?: string;
  reply?: string;
  category?: string;
  msg?: string;
  [k: string]: unknown;
}

export interface Harness {
  config: RelayConfig;
  store: QueueStore;
  metrics: RelayMetrics;
  delivery: Delivery;
  dataDir: string;
  events: LogEvent[];
  emitter: EventEmitter;
  /** Waits until `n` log events satisfy `pred`. */
  waitForEvents(pred: (e: LogEvent) => boolean, n?: number, timeoutMs?: number): Promise<LogEvent[]>;
  enqueue(mailFrom: string, recipients: string[], body?: string): Promise<string>;
  /** Stops the engine and closes the store (the data directory stays, for restart tests). */
  stop(): Promise<void>;
  /** Starts a new engine on a reopened store in the same data directory. */
  restart(extra?: Partial<DeliveryOptions>): Promise<void>;
  cleanup(): Promise<void>;
}

export function message(from: string, to: string, subject = 'test', body = 'hello'): string {
  return `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nDate: Sun, 29 Nov 2026 20:00:00 +0000\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@mailfleet.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${body}\r\n`;
}

export async function startHarness(input: {
  config: Record<string, unknown>;
  dnsServer: string;
  mxPort?: number;
  clock?: () => number;
  options?: Partial<DeliveryOptions>;
  /** For the queue store (a failing or slow fsync). */
  storeOptions?: QueueStoreOptions;
}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailfleet-delivery-'));
  const config = parseRelayConfig({
    hostname: 'relay.mailfleet.test',
    dataDir,
    listeners: [{ name: 'sub', port: 2525, tls: 'none' }],
    ...input.config,
    // Every MX in these tests is a sink on 127.0.x.y.
    delivery: { dnsServers: [input.dnsServer], connectTimeoutMs: 2000, allowPrivateMx: true, ...(input.config.delivery as object | undefined) },
  });
  const events: LogEvent[] = [];
  const emitter = new EventEmitter();
  emitter.setMaxListeners(100);
  const logger = createLogger('info', 'test', {
    write(line: string) {
      const e = JSON.parse(line) as LogEvent;
      events.push(e);
      emitter.emit('event', e);
      if (process.env.DELIVERY_TEST_LOG) process.stderr.write(line);
    },
  });
  const metrics = createRelayMetrics({ defaultMetrics: false });
  const clock = input.clock ?? Date.now;
  const h = {} as Harness;
  // As relay/relay.ts does for its store (the engine does not write the queue gauge).
  collectQueueGauge(metrics, () => h.store.counts());
  const start = (extra: Partial<DeliveryOptions> = {}) => {
    h.store = new QueueStore(dataDir, { clock, ...input.storeOptions });
    h.delivery = startDelivery({
      config,
      store: h.store,
      logger,
      metrics,
      clock,
      resolver: new MailResolver({ servers: [input.dnsServer], clock, timeoutMs: 1000, tries: 1 }),
      mxPort: input.mxPort,
      commandTimeoutMs: 10_000,
      ...input.options,
      ...extra,
    });
  };
  start();
  Object.assign(h, {
    config,
    metrics,
    dataDir,
    events,
    emitter,
    async waitForEvents(pred: (e: LogEvent) => boolean, n = 1, timeoutMs = 20_000) {
      await waitUntil(emitter, 'event', () => events.filter(pred).length >= n, timeoutMs, `${n} matching log event(s); saw ${JSON.stringify(events.filter((e) => e.event).map((e) => [e.event, e.recipient, e.reply]))}`);
      return events.filter(pred);
    },
    async enqueue(mailFrom: string, recipients: string[], body?: string) {
      const id = await h.store.enqueue({ mailFrom, recipients, body: Buffer.from(body ?? message(mailFrom, recipients[0]!)) });
      h.delivery.wake();
      return id;
    },
    async stop() {
      await h.delivery.stop();
      await h.store.close();
    },
    async restart(extra?: Partial<DeliveryOptions>) {
      start(extra);
    },
    async cleanup() {
      await h.delivery.stop().catch(() => {});
      await h.store.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
  return h;
}

/** A harness whose relay signs for the rig's domain and delivers to the rig's sink as the MX (no MTA-STS). */
export function startSignedHarness(rig: SignedDeliveryRig): Promise<Harness> {
  return startHarness({ config: { domains: [rig.keys.domain] }, dnsServer: rig.dns.server, mxPort: rig.sink.port, options: { mtaSts: false } });
}
