// One relay process: queue, SMTP listeners, delivery and the HTTP side, started in that order
// and stopped in reverse, so nothing is accepted that cannot be stored.
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { RelayConfig } from './config/schema.ts';
import { QueueStore } from './queue/store.ts';
import { createLogger, type Logger } from './log.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { TlsFiles } from './tls-files.ts';
import { CredentialStore } from './intake/credentials.ts';
import { startListeners, closeListeners, type RunningListener } from './intake/listeners.ts';
import { startHttpServer, sendJson } from './http/server.ts';
import { startDelivery } from './delivery/engine.ts';
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

export interface Relay {
  config: RelayConfig;
  store: QueueStore;
  logger: Logger;
  metrics: RelayMetrics;
  listeners: RunningListener[];
  http: Server & { port: number };
  tls: TlsFiles | undefined;
  /** Port of a listener by name (useful when the config asked for port 0). */
  port(name: string): number;
  stop(): Promise<void>;
}

export interface DeliveryHandle {
  wake(): void;
  stop(): Promise<void>;
  /** The versioned stats document served at GET /v1/stats. */
  stats?(): unknown;
}

export interface StartRelayOptions {
  logger?: Logger;
  clock?: () => number;
  /** Starts delivery; defaults to the delivery engine. Tests of intake alone pass `false`. */
  delivery?: false | ((deps: { config: RelayConfig; store: QueueStore; logger: Logger; metrics: RelayMetrics; clock?: () => number }) => DeliveryHandle | Promise<DeliveryHandle>);
}

export async function startRelay(config: RelayConfig, options: StartRelayOptions = {}): Promise<Relay> {
  const logger = options.logger ?? createLogger(config.log.level, 'relay');
  const metrics = createRelayMetrics();
  const store = new QueueStore(join(config.dataDir, 'queue'), options.clock ? { clock: options.clock } : {});
  store.onCommit = (n, seconds) => {
    metrics.queueCommits.inc();
    metrics.queueCommitMessages.observe(n);
    metrics.queueCommitSeconds.observe(seconds);
  };
  // prom-client calls a metric's `collect` at scrape time; the typings do not expose it.
  Object.assign(metrics.queueRecipients, {
    collect: () => {
      for (const [state, n] of Object.entries(store.counts())) metrics.queueRecipients.set({ state }, n);
    },
  });

  const credentials = new CredentialStore();
  let credWatcher: FSWatcher | undefined;
  const credFile = config.auth.credentialsFile;
  if (credFile) {
    await credentials.load(credFile);
    credWatcher = watch(dirname(credFile), () => {
      credentials.load(credFile).then(
        () => logger.info({ users: credentials.size }, 'credentials reloaded'),
        (err: Error) => logger.error({ err: err.message }, 'credentials file unreadable; keeping the previous users'),
      );
    });
  }

  const tls = config.tls ? new TlsFiles(config.tls.certFile, config.tls.keyFile) : undefined;
  tls?.on('error', (err: Error) => logger.error({ err: err.message }, 'new TLS certificate unusable; keeping the previous one'));

  const deliveryDeps = { config, store, logger: logger.child({ component: 'delivery' }), metrics, ...(options.clock ? { clock: options.clock } : {}) };
  const delivery = options.delivery === false || !config.delivery.enabled ? undefined : await (options.delivery ?? startDelivery)(deliveryDeps);

  let listeners: RunningListener[] = [];
  let ready = false;
  const http = await startHttpServer({
    address: config.http.address, port: config.http.port, registry: metrics.registry, ready: () => ready,
    routes: {
      // Versioned: the operator polls it; v1 only ever gains fields.
      '/v1/stats': (_req, res) => sendJson(res, 200, delivery?.stats?.() ?? { version: 1, ips: [], providers: [], restrictions: [], delivery: 'disabled' }),
    },
  });
  try {
    listeners = await startListeners({
      config, store, credentials, logger, metrics,
      ...(tls ? { tls } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      // The delivery engine is told by the store itself (it takes fresh mail at birth, or is
      // kicked when mail was queued); a wake here would force a queue scan per message.
      onQueued: () => {
        if (!store.hasAdopter()) delivery?.wake();
      },
    });
  } catch (err) {
    http.close();
    await delivery?.stop();
    await store.close();
    tls?.close();
    credWatcher?.close();
    throw err;
  }
  ready = true;
  logger.info({ listeners: listeners.map((l) => `${l.name}:${l.port}`), http: http.port }, 'relay started');

  return {
    config, store, logger, metrics, listeners, http, tls,
    port(name) {
      const l = listeners.find((x) => x.name === name);
      if (!l) throw new Error(`no listener named "${name}"`);
      return l.port;
    },
    async stop() {
      ready = false;
      await closeListeners(listeners);
      await delivery?.stop();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await store.close();
      tls?.close();
      credWatcher?.close();
    },
  };
}
