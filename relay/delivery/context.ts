// What every outbound phase of the delivery engine shares: the configuration, the queue, the
// scheduler's shaper, the connection pool, DNS, signing, stats, metrics, the clock, and the stop
// signal. Built once by startDelivery (relay/delivery/engine.ts); the phases take it as their
// first argument, the way smtp-server hands each of its hooks the session.
import { setMaxListeners } from 'node:events';
import type { RelayConfig } from '../config/schema.ts';
import type { QueueStore } from '../queue/store.ts';
import type { Logger } from '../log.ts';
import type { RelayMetrics } from '../metrics.ts';
import { MailResolver } from '../dns/resolver.ts';
import { DkimSigner } from '../dkim/sign.ts';
import { MtaStsCache, type MtaStsOptions } from './mta-sts.ts';
import { ConnectionPool } from './pool.ts';
import { DelayNoticeLedger } from './delay-notices.ts';
import { DeliveryBodyMemory } from './body-memory.ts';
import { Shaper } from '../scheduler/shaper.ts';
import { ShapingLedger } from '../scheduler/ledger.ts';
import { StatsCollector } from '../stats/collector.ts';
import type { ProviderPattern } from '../scheduler/providers.ts';
import type { Feedback } from '../feedback/feedback.ts';
import type { DeliveryCounters } from '../stats/counters.ts';
import type { DueRecipient } from '../queue/store.ts';
import { returnPathChooser, loadKeysOnce, type ReturnPathChooser } from '../returnpath/envelope.ts';
import type { ReturnPathKey } from '../returnpath/token.ts';

export interface DeliveryOptions {
  config: RelayConfig;
  store: QueueStore;
  logger: Logger;
  metrics: RelayMetrics;
  clock?: () => number;
  resolver?: MailResolver;
  random?: () => number;
  /** Port MX hosts listen on: 25, except in tests that run sinks on free ports. */
  mxPort?: number;
  /** Extra CA trusted when TLS must be verified (tests). */
  tlsCa?: string | Buffer;
  /** MTA-STS policy fetching; `false` turns MTA-STS off. */
  mtaSts?: MtaStsOptions | false;
  /** RFC 5321 §4.5.3.2 suggests minutes per command; tests use less. */
  commandTimeoutMs?: number;
  /**
   * How long stop() lets attempts in flight finish before cutting their connections (they are then
   * requeued, due at once). Below Kubernetes' default 30 s termination grace period.
   */
  stopGraceMs?: number;
  /** Suppression screening before each attempt, events after it (relay/feedback). */
  feedback?: Feedback | undefined;
  /** Durable per-hour counters for GET /v1/stats (relay/stats/counters.ts); absent in engine-only tests. */
  counters?: DeliveryCounters | undefined;
  /** Return-path keys (the first signs), current at each call; default: read once from config.returnPath.keysFile. */
  returnPathKeys?: (() => readonly ReturnPathKey[]) | undefined;
}

export interface DeliveryContext {
  config: RelayConfig;
  store: QueueStore;
  logger: Logger;
  metrics: RelayMetrics;
  clock: () => number;
  resolver: MailResolver;
  mtaSts: MtaStsCache | undefined;
  /** Derived from the config; rebuilt on a live reload (reconfigureContext). */
  signer: DkimSigner;
  pool: ConnectionPool;
  shaper: Shaper;
  shapingLedger: ShapingLedger;
  stats: StatsCollector;
  /** Remembers delay notices sent; undefined when delay notices are off. */
  delayNotices: DelayNoticeLedger | undefined;
  delayNoticeMs: number | undefined;
  /** Providers the config names by MX suffix, for the provider rollup. */
  customProviders: readonly ProviderPattern[];
  /** The configured sending domains: they bound the sending_domain label of the per-domain counter. */
  sendingDomains: ReadonlySet<string>;
  // The rest of the config (retry, bounce rules, routes, hostname) is read where it is used, so a
  // live reload that changes the config object in place reaches it without a rebuild.
  mxPort: number;
  tlsCa: string | Buffer | undefined;
  commandTimeoutMs: number;
  /** Aborted when stop() gives up waiting for attempts in flight: their sockets are cut. */
  stopping: AbortController;
  /** Suppression screening before each attempt, events after it; undefined: neither. */
  feedback: Feedback | undefined;
  counters: DeliveryCounters | undefined;
  /** The MAIL FROM of each attempt: a signed return-path token when configured (relay/returnpath). */
  returnPath: ReturnPathChooser;
  /** Recipients that go in a transaction of their own: a token of their own (VERP) or a one-click link. */
  ownTransaction: (d: DueRecipient) => boolean;
  /** Message bytes the attempts hold; an attempt waits for room before reading a large body (body-memory.ts). */
  bodyMemory: DeliveryBodyMemory;
}

function sendingDomainsOf(config: RelayConfig): ReadonlySet<string> {
  return new Set(config.domains.map((d) => d.domain.toLowerCase()));
}

function delayNoticeMsOf(config: RelayConfig): number | undefined {
  return config.retry.delayNoticeSeconds !== undefined ? config.retry.delayNoticeSeconds * 1000 : undefined;
}

/** The config object changed in place (a live reload, relay/config/live.ts): rebuild what was derived from it. */
export function reconfigureContext(ctx: DeliveryContext): void {
  const { config } = ctx;
  ctx.signer = new DkimSigner(config.domains);
  ctx.delayNoticeMs = delayNoticeMsOf(config);
  if (ctx.delayNoticeMs !== undefined && !ctx.delayNotices) ctx.delayNotices = new DelayNoticeLedger(ctx.store.path);
  ctx.customProviders = config.shaping.providers.filter((p) => p.mxSuffixes.length > 0);
  ctx.sendingDomains = sendingDomainsOf(config);
  ctx.shaper.reconfigure(config.shaping, config.delivery);
}

// Signed VERP return paths: the relay shares the bounce MX's keys when it runs one; the chooser
// reads config.domains at each call, so a live reload reaches it.
function returnPathParts(opts: DeliveryOptions): Pick<DeliveryContext, 'returnPath' | 'ownTransaction'> {
  const returnPath = returnPathChooser(opts.config, opts.returnPathKeys ?? loadKeysOnce(opts.config));
  return { returnPath, ownTransaction: (d) => returnPath.perRecipient || Boolean(opts.feedback?.ownTransaction(d)) };
}

export function createDeliveryContext(opts: DeliveryOptions): DeliveryContext {
  const { config, store, logger, metrics } = opts;
  const clock = opts.clock ?? Date.now;
  const resolver = opts.resolver ?? new MailResolver({ servers: config.delivery.dnsServers, clock });
  const delayNoticeMs = delayNoticeMsOf(config);
  const shapingLedger = new ShapingLedger(store.path);
  shapingLedger.onError = (err) => logger.error({ err }, 'could not save the warm-up counters; tried again with the next attempt');
  const stopping = new AbortController();
  // One listener per open connection; the count is bounded by the pool, not a leak.
  setMaxListeners(0, stopping.signal);
  return {
    config, store, logger, metrics, clock, resolver,
    mtaSts: opts.mtaSts === false ? undefined : new MtaStsCache(resolver, { allowPrivate: config.delivery.allowPrivateMx, ...opts.mtaSts }, clock),
    signer: new DkimSigner(config.domains),
    ...returnPathParts(opts),
    pool: new ConnectionPool({
      maxMessagesPerConnection: config.delivery.maxMessagesPerConnection,
      maxConnectionsPerHost: config.delivery.maxConnectionsPerHost,
      onOpen: (o, ok) => metrics.deliveryConnections.inc({ source_ip: o.localAddress ?? 'default', result: ok ? 'ok' : 'failed' }),
    }),
    shaper: new Shaper({ shaping: config.shaping, delivery: config.delivery, ledger: shapingLedger, clock, random: opts.random ?? Math.random }),
    shapingLedger,
    stats: new StatsCollector(clock()),
    delayNotices: delayNoticeMs !== undefined ? new DelayNoticeLedger(store.path) : undefined,
    delayNoticeMs,
    bodyMemory: new DeliveryBodyMemory(() => config.delivery.bodyMemoryBytes),
    customProviders: config.shaping.providers.filter((p) => p.mxSuffixes.length > 0),
    sendingDomains: sendingDomainsOf(config),
    mxPort: opts.mxPort ?? 25,
    tlsCa: opts.tlsCa,
    commandTimeoutMs: opts.commandTimeoutMs ?? 300_000,
    stopping,
    feedback: opts.feedback,
    counters: opts.counters,
  };
}
