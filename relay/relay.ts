// One relay process: queue, SMTP listeners, delivery and the HTTP side, started in that order
// and stopped in reverse, so nothing is accepted that cannot be stored.
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { RelayConfig } from './config/schema.ts';
import { QueueStore } from './queue/store.ts';
import { childLogger, createLogger, type Logger } from './log.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { counterChild, histogramChild } from './metric-children.ts';
import { TlsFiles } from './tls-files.ts';
import { CredentialStore } from './intake/credentials.ts';
import { DataSessionCount } from './intake/data-sessions.ts';
import { startListeners, closeListeners, localIntakeShared, type IntakeDeps, type RunningListener } from './intake/listeners.ts';
import { onSessionThreads, startSessionThreads, workerThreadCount, type SessionThreads } from './intake/threads.ts';
import { cpuCount } from './cpu-quota.ts';
import { startHttpServer, sendJson } from './http/server.ts';
import { ApiTokens } from './http/api-token.ts';
import { DeliveryCounters } from './stats/counters.ts';
import { sendingDomainOf } from './stats/categories.ts';
import { statsDocument, hoursParam } from './stats/document.ts';
import { startDelivery } from './delivery/engine.ts';
import { collectQueueGauge, installScrapeGauges } from './scrape-gauges.ts';
import { FeedbackConsumer, type OnFeedback } from './bounce/mx-consumer.ts';
import { toSuppressionFeedback } from './bounce/hand-over.ts';
import type { ReturnPathKey } from './returnpath/token.ts';
import { watch, type FSWatcher } from 'node:fs';
import { Feedback } from './feedback/feedback.ts';
import type { StatsV1 } from './stats/collector.ts';
import { feedbackRoutes } from './feedback/api.ts';
import { startUnsubscribeServer } from './feedback/unsubscribe.ts';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, parseRelayConfigYaml } from './config/load.ts';
import { configVersion } from './config/version.ts';
import { applyLive, restartChanges } from './config/live.ts';
import { aboutFile, watchConfigFile, type ConfigWatcher } from './config/watch.ts';
import { quarantinedOutOfService } from './scheduler/reputation.ts';
import { DEFAULT_IP } from './scheduler/shaper.ts';

export interface Relay {
  config: RelayConfig;
  store: QueueStore;
  logger: Logger;
  metrics: RelayMetrics;
  /** Suppression list, events, webhooks, fleet sync (relay/feedback). */
  feedback: Feedback;
  listeners: RunningListener[];
  http: Server & { port: number };
  /** The one-click unsubscribe endpoint, when feedback.unsubscribe is configured. */
  unsubscribe: (Server & { port: number }) | undefined;
  tls: TlsFiles | undefined;
  /**
   * The durable per-hour counters of GET /v1/stats. Feedback that arrives later (complaints, a
   * suppressed recipient) adds to them: counters.add({ ip, provider, domain, class }, ['complained']).
   */
  counters: DeliveryCounters;
  /** Port of a listener by name (useful when the config asked for port 0). */
  port(name: string): number;
  /** SMTP sessions of the main thread in DATA now (the commit delay's count); undefined when no delay applies. */
  sessionsInData(): number | undefined;
  /** The config version in force and the restart-only fields a newer file changed (docs/live-config.md). */
  configState(): { version: string | undefined; restartPending: string[] };
  /**
   * Validates a new config text whole and applies its live parts atomically; an invalid one is
   * refused (logged, counted) and the running version keeps serving. Returns whether it applied.
   */
  reload(text: string): boolean;
  /** Look at the queue again now (a clock stepped by a test, an administrator's change). */
  wake(): void;
  stop(): Promise<void>;
}

export interface DeliveryHandle {
  wake(): void;
  stop(): Promise<void>;
  /** The versioned stats document served at GET /v1/stats. */
  stats?(): unknown;
  /** The shared config object changed in place (relay/config/live.ts applyLive): rebuild what was derived from it. */
  reconfigure?(): void;
}

export interface StartRelayOptions {
  logger?: Logger;
  clock?: () => number;
  /**
   * Takes each report the bounce MX consumed (a bounce, complaint or auto-reply, parsed); resolves
   * once it is durably kept. Default: appended to <dataDir>/feedback/records.jsonl and fsynced.
   */
  onFeedback?: OnFeedback;
  /** Starts delivery; defaults to the delivery engine. Tests of intake alone pass `false`. */
  delivery?: false | ((deps: { config: RelayConfig; store: QueueStore; logger: Logger; metrics: RelayMetrics; clock?: () => number; feedback?: Feedback; counters?: DeliveryCounters; returnPathKeys?: () => readonly ReturnPathKey[] }) => DeliveryHandle | Promise<DeliveryHandle>);
  /** The file the config came from: watched, and new versions applied live (docs/live-config.md). */
  configFile?: { path: string; version: string; pollMs?: number };
}

export async function startRelay(config: RelayConfig, options: StartRelayOptions = {}): Promise<Relay> {
  const logger = options.logger ?? createLogger(config.log.level, 'relay');
  const metrics = createRelayMetrics();
  // First: a missing or broken return-path keys file is a configuration error, reported before
  // anything is opened. Delivery signs return paths with the keys it loaded.
  // The default hand-over: each attributed result to the suppression list and events
  // (relay/feedback, created below before any listener runs, so the closure never sees it unset).
  const bounceMx = new FeedbackConsumer({
    config, logger: childLogger(logger, { subsystem: 'bounce-mx' }), onFeedback: options.onFeedback,
    handOver: (r) => {
      for (const one of toSuppressionFeedback(r, config, (options.clock ?? Date.now)())) feedback.recordFeedback(one);
    },
    ...(options.clock ? { clock: options.clock } : {}),
    count: (kind, token) => metrics.feedbackReports.inc({ kind, token }),
    countBounce: (sendingDomain, category) => metrics.feedbackBounces.inc({ sending_domain: sendingDomain, category }),
  });
  const store = new QueueStore(join(config.dataDir, 'queue'), options.clock ? { clock: options.clock } : {});
  const commits = { count: counterChild(metrics.queueCommits, {}), messages: histogramChild(metrics.queueCommitMessages, {}), seconds: histogramChild(metrics.queueCommitSeconds, {}) };
  store.onCommit = (n, seconds) => {
    commits.count.inc();
    commits.messages.observe(n);
    commits.seconds.observe(seconds);
  };
  collectQueueGauge(metrics, () => store.counts());

  // Read before anything starts: an unreadable token file is a startup error, not an open API.
  const apiTokens = config.http.apiTokenFile
    ? new ApiTokens(config.http.apiTokenFile, Date.now, (err) => logger.error({ err: err.message }, 'API token file unreadable; keeping the previous tokens'))
    : undefined;
  if (!apiTokens) logger.warn('http.apiTokenFile is not set: the HTTP API (/v1/*) is open to anyone who can reach it');
  let ready = false;
  // A draining relay is not ready: the Service stops sending clients to it (it refuses them anyway).
  // Draining, or every source IP quarantined and told to leave the Service (docs/reputation.md):
  // new mail goes to the pool's other relays; what this one holds is still delivered or waits.
  const isReady = () => ready && !config.draining && !quarantinedOutOfService(config.shaping, config.delivery.egressIps, DEFAULT_IP);
  installScrapeGauges(metrics, { store, queueDir: join(config.dataDir, 'queue'), ready: isReady, ...(options.clock ? { clock: options.clock } : {}) });
  const feedbackLog = childLogger(logger, { subsystem: 'feedback' });
  const feedback = new Feedback({
    config, registry: metrics.registry, background: true, ...(options.clock ? { clock: options.clock } : {}),
    onError: (err, what) => feedbackLog.error({ err: err.message }, `${what} failed`),
  });
  feedback.start();
  // Events a kill -9 left in the journal only, now in feedback.db (relay/events/journal.ts).
  if (feedback.replayedEvents > 0) feedbackLog.info({ replayedEvents: feedback.replayedEvents }, 'events recovered from the events journal');
  feedbackLog.info(
    { store: config.feedback.postgres ? 'postgres' : 'local', webhooks: config.domains.filter((d) => d.webhook).length, unsubscribe: Boolean(config.feedback.unsubscribe) },
    config.feedback.postgres ? 'suppression list: fleet-wide in PostgreSQL, answered from the local copy' : 'suppression list: this relay only (no feedback.postgres configured)',
  );

  const credentials = new CredentialStore();
  let credWatcher: FSWatcher | undefined;
  const credFile = config.auth.credentialsFile;
  if (credFile) {
    await credentials.load(credFile);
    // Only events about the credentials file: a log written beside it reloaded (and logged) per write.
    const ours = aboutFile(credFile);
    credWatcher = watch(dirname(credFile), (_event, filename) => {
      if (!ours(filename)) return;
      credentials.load(credFile).then(
        () => logger.info({ users: credentials.size }, 'credentials reloaded'),
        (err: Error) => logger.error({ err: err.message }, 'credentials file unreadable; keeping the previous users'),
      );
    });
  }

  const tls = config.tls ? new TlsFiles(config.tls.certFile, config.tls.keyFile) : undefined;
  tls?.on('error', (err: Error) => logger.error({ err: err.message }, 'new TLS certificate unusable; keeping the previous one'));

  // Durable per-hour delivery counters (GET /v1/stats); the delivery engine and feedback add to them.
  const counters = new DeliveryCounters(store.path, options.clock ? { clock: options.clock } : {});
  counters.onError = (err) => logger.error({ err: err.message }, 'delivery counters could not be written; retrying');
  feedback.onComplaint = (c) => counters.add({
    ip: c.ip ?? 'default', provider: c.provider ?? 'default', domain: sendingDomainOf(`x@${c.sendingDomain}`, config.domains),
    class: c.class === 'otp' || c.class === 'transactional' ? c.class : 'bulk',
  }, ['complained']);
  const deliveryDeps = { config, store, feedback, counters, logger: childLogger(logger, { subsystem: 'delivery' }), metrics, returnPathKeys: () => bounceMx.currentKeys(), ...(options.clock ? { clock: options.clock } : {}) };
  const delivery = options.delivery === false || !config.delivery.enabled ? undefined : await (options.delivery ?? startDelivery)(deliveryDeps);

  // The config in force: its version (the file's hash) and restart-only fields a newer file changed.
  let version = options.configFile?.version;
  let refused: string | undefined;
  let restartPending: string[] = [];
  if (version) metrics.configInfo.set({ version }, 1);
  const configLog = childLogger(logger, { subsystem: 'config' });

  function reload(text: string): boolean {
    const next = configVersion(text);
    if (next === version || next === refused) return next === version;
    let parsed: RelayConfig;
    try {
      parsed = parseRelayConfigYaml(text, options.configFile?.path ?? 'config');
    } catch (err) {
      // Refused whole: nothing of it applies, and the same bad text is not counted twice.
      refused = next;
      metrics.configReloadFailures.inc();
      const issues = err instanceof ConfigError ? err.issues : [(err as Error).message];
      configLog.error({ event: 'config-refused', version: next, running: version, issues }, `config version ${next} refused; version ${version ?? '(initial)'} keeps serving`);
      return false;
    }
    refused = undefined;
    restartPending = restartChanges(config, parsed);
    // One synchronous step: no SMTP session or delivery attempt sees half a config.
    applyLive(config, parsed);
    sessionThreads?.reconfigure(parsed);
    delivery?.reconfigure?.();
    feedback.reconfigure();
    const previous = version;
    version = next;
    metrics.configInfo.reset();
    metrics.configInfo.set({ version }, 1);
    metrics.configReloads.inc();
    metrics.configRestartPending.set(restartPending.length > 0 ? 1 : 0);
    configLog.info({ event: 'config-applied', version, previous, restartPending }, `config version ${version} applied without a restart` +
      (restartPending.length > 0 ? `; ${restartPending.join(', ')} changed and apply at the next restart` : ''));
    return true;
  }

  let listeners: RunningListener[] = [];
  let sessionThreads: SessionThreads | undefined;
  let dataSessions: DataSessionCount | undefined;
  const http = await startHttpServer({
    address: config.http.address, port: config.http.port, registry: metrics.registry, ready: isReady,
    ...(apiTokens ? { auth: (h: string | undefined) => apiTokens.check(h), onUnauthorized: (reason: 'missing' | 'wrong') => metrics.httpUnauthorized.inc({ reason }) } : {}),
    routes: {
      // Versioned: the operator polls it; v1 only ever gains fields.
      // feedback: where the suppression list lives, whether PostgreSQL is reachable, outboxes.
      // draining and queue: when a draining relay holds nothing more and may be removed.
      '/v1/stats': (req, res) => {
        const c = store.counts();
        sendJson(res, 200, statsDocument({
          counters,
          now: (options.clock ?? Date.now)(),
          hours: hoursParam(req.url),
          queued: (c.queued ?? 0) + (c.inflight ?? 0),
          pausedDomains: config.pausedDomains,
          configVersion: version,
          legacy: {
            ...((delivery?.stats?.() as object | undefined) ?? { version: 1, ips: [], providers: [], restrictions: [], delivery: 'disabled' }),
            configRestartPending: restartPending,
            feedback: feedback.status(),
            draining: config.draining,
            queue: { queued: c.queued, inflight: c.inflight },
          } satisfies Partial<StatsV1> & Record<string, unknown>,
        }));
      },
      ...feedbackRoutes({ feedback, store, tokenFile: config.feedback.apiTokenFile, ...(options.clock ? { clock: options.clock } : {}) }),
    },
  });
  let unsubscribe: (Server & { port: number }) | undefined;
  try {
    const u = config.feedback.unsubscribe;
    if (u) {
      unsubscribe = await startUnsubscribeServer({
        feedback, address: u.address, port: u.port, ...(options.clock ? { clock: options.clock } : {}),
        // Read at each request: a rotated Secret applies at once (old links then stop working).
        secret: () => readFileSync(u.secretFile, 'utf8').trim(),
        tls: u.plainHttp ? undefined : u.tls ? { cert: readFileSync(u.tls.certFile), key: readFileSync(u.tls.keyFile) } : tls?.current,
        onUnsubscribe: (recipient, domain) => feedbackLog.info({ event: 'unsubscribed', recipient, domain }, 'one-click unsubscribe'),
      });
    }
    const intakeDeps: IntakeDeps = {
      config, store, credentials, logger, metrics, feedback, bounceMx,
      ...(tls ? { tls } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      // The delivery engine is told by the store itself (it takes fresh mail at birth, or is
      // kicked when mail was queued); a wake here would force a queue scan per message.
      onQueued: () => {
        if (!store.hasAdopter()) delivery?.wake();
      },
    };
    // SMTP sessions on worker threads (relay/intake/threads.ts), as many as the CPU quota allows
    // when 'auto'. A test's fake clock cannot cross threads: sessions stay on this one.
    const cpus = cpuCount();
    // No submission listener, no session thread: an MX-only relay (bounces and complaints) keeps
    // its sessions here, and a thread with nothing to serve would outlive stop().
    const workers = options.clock || !config.listeners.some(onSessionThreads) ? 0 : workerThreadCount(config.intake.workerThreads, cpus);
    if (options.clock && typeof config.intake.workerThreads === 'number' && config.intake.workerThreads > 0) logger.warn('intake.workerThreads ignored: an injected clock keeps SMTP sessions on the main thread');
    metrics.intakeWorkerThreads.set(workers);
    const shared = localIntakeShared(config, options.clock);
    // The commit delay waits for sessions mid-DATA; it counts this thread's sessions only, so with
    // session threads (which take the submission listeners) there is no delay.
    if (workers === 0 && config.queue.commitDelayMs > 0) {
      dataSessions = new DataSessionCount();
      store.setCommitDelay({ delayMs: config.queue.commitDelayMs, siblings: config.queue.commitSiblings, sessions: dataSessions });
      intakeDeps.dataSessions = dataSessions;
    } else if (config.queue.commitDelayMs > 0) logger.info('queue.commitDelayMs not applied: the SMTP sessions run on worker threads');
    listeners = await startListeners(intakeDeps, shared, workers > 0 ? (l) => !onSessionThreads(l) : undefined);
    if (workers > 0) {
      sessionThreads = await startSessionThreads({ count: workers, deps: intakeDeps, shared });
      listeners.push(...sessionThreads.listeners);
    }
    logger.info(
      { workerThreads: workers, setting: config.intake.workerThreads, cpus: cpus.cpus, cpuSource: cpus.source, ...(cpus.quota !== undefined ? { cpuQuota: cpus.quota } : {}) },
      workers > 0 ? `SMTP sessions on ${workers} worker thread(s); queue and delivery on the main thread` : 'SMTP sessions on the main thread',
    );
  } catch (err) {
    unsubscribe?.close();
    http.close();
    await delivery?.stop();
    await feedback.stop();
    feedback.close();
    counters.close();
    await store.close();
    await bounceMx.close();
    tls?.close();
    credWatcher?.close();
    throw err;
  }
  ready = true;
  let configWatcher: ConfigWatcher | undefined;
  if (options.configFile) {
    configWatcher = watchConfigFile(options.configFile.path, (text) => void reload(text), (err) => configLog.warn({ err: err.message }, 'config file unreadable; keeping the running version'), {
      ...(options.configFile.pollMs !== undefined ? { pollMs: options.configFile.pollMs } : {}),
    });
  }
  logger.info({ listeners: listeners.map((l) => `${l.name}:${l.port}`), http: http.port, configVersion: version }, 'relay started');

  let stopping: Promise<void> | undefined;
  return {
    config, store, logger, metrics, feedback, listeners, http, unsubscribe, tls, counters,
    sessionsInData: () => dataSessions?.count,
    port(name) {
      const l = listeners.find((x) => x.name === name);
      if (!l) throw new Error(`no listener named "${name}"`);
      return l.port;
    },
    configState: () => ({ version, restartPending }),
    reload,
    wake: () => delivery?.wake(),
    // Safe to call twice (a test's own stop and its after hook, SIGTERM during a stop): the
    // second call waits for the first.
    stop: () => (stopping ??= (async () => {
      ready = false;
      configWatcher?.close();
      await closeListeners(listeners);
      await delivery?.stop();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (unsubscribe) {
        await new Promise<void>((resolve) => unsubscribe.close(() => resolve()));
        unsubscribe.closeAllConnections();
      }
      http.closeAllConnections();
      await feedback.stop();
      feedback.close();
      counters.close();
      await store.close();
      await bounceMx.close();
      tls?.close();
      credWatcher?.close();
    })()),
  };
}
