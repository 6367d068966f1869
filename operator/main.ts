// Wires the operator together: kube client, metrics and probe server, leader election, and the
// controller manager that the Lease starts and stops. The `mailfleet operator` CLI is a thin
// shell over runOperator; tests call it directly (or run it as a child process).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js'; // not the index: operator/runtime/client-node-slim.ts
import { createLogger, type Logger } from '../relay/log.ts';
import { Kube } from './runtime/kube.ts';
import { Manager } from './runtime/manager.ts';
import { LeaderElector } from './runtime/leader.ts';
import { EventRecorder } from './runtime/events.ts';
import { startHttpServer } from './runtime/http.ts';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.ts';
import { sendingPoolController } from './controllers/sendingpool/controller.ts';
import { POOL } from './controllers/common.ts';
import { ReputationLoop } from './reputation/loop.ts';
import { reputationConfigFromEnv, type ReputationConfig } from './reputation/lists.ts';
import { mailDomainController } from './controllers/maildomain/controller.ts';
import { makeResolver } from './controllers/maildomain/dns.ts';
import { DKIM_PUBLIC_KEY, type RenderOptions } from './render/index.ts';
import type { NetworkPolicyPeer } from './render/scrape-peers.ts';
import { Observer } from './observe/observer.ts';
import type { FetchLike } from './observe/reader.ts';
import { ObservationTable, type RelayObservations } from './observe/observations.ts';

export interface OperatorOptions {
  /** Path of a kubeconfig; in-cluster config / $KUBECONFIG when unset. */
  kubeconfig?: string;
  /** Watch and manage one namespace only; all namespaces when unset. */
  namespace?: string;
  /** Port of /metrics, /healthz, /readyz; 0 = any free port; default 8080. */
  metricsPort?: number;
  metricsHost?: string;
  /** Default true. Off: reconcile at once (a single replica, or tests). */
  leaderElection?: boolean;
  leaseName?: string;
  /** Namespace of the Lease: `namespace`, else $POD_NAMESPACE, else "default". */
  leaseNamespace?: string;
  /** Unique per replica; defaults to hostname + random suffix. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** DNS servers ("ip" or "ip:port") used to verify MailDomain records; system resolver when unset. */
  dnsServers?: string[];
  /** How often a MailDomain's DNS records are re-checked (DNS changes raise no events). */
  dnsRecheckMs?: number;
  /** Re-check of references the operator does not watch (user Secrets, add-on CRDs). */
  refRecheckMs?: number;
  /** Periodic resync of every object. */
  resyncMs?: number;
  /** Informer stall watchdog threshold. */
  stallMs?: number;
  logLevel?: string;
  logger?: Logger;
  /** The reconcilers' clock (DKIM rotation, condition times); tests move it forward. */
  now?: () => Date;
  /** Relay image for pools without spec.image (the chart passes its own release's image). */
  relayImage?: string;
  /**
   * The operator's namespace, admitted to the relays' stats port by each pool's NetworkPolicy;
   * default $POD_NAMESPACE. Unknown (outside a pod): the policy admits pods labelled
   * app.kubernetes.io/name=mailfleet-operator in the pool's own namespace only.
   */
  operatorNamespace?: string;
  /** Peers (Prometheus) each pool's NetworkPolicy admits to the relays' metrics port, besides the operator. */
  relayMetricsFrom?: NetworkPolicyPeer[];
  /**
   * DNSBL/PTR monitoring of every pool IP (docs/reputation.md); default: $MAILFLEET_REPUTATION
   * (the chart's values), off when neither is set.
   */
  reputation?: ReputationConfig;
  /** Seconds between reputation rounds (who is due; each IP keeps its own interval). Default 30. */
  reputationTickSeconds?: number;
  /** Between two reads of every relay's GET /v1/stats (operator/observe); default 30 s. */
  statsIntervalMs?: number;
  /**
   * How the stats reader fetches (tests: relays run as local processes on loopback addresses,
   * which an EndpointSlice may not hold, so the test maps the slice's pod addresses to them).
   */
  statsFetch?: FetchLike;
  /** Install SIGTERM/SIGINT handlers that stop gracefully and exit. Default true. */
  handleSignals?: boolean;
  /**
   * What the relays report of themselves (queue, draining, config version, warm-up); a drain ends
   * on it. Default: the stats reader's table (operator/observe/observer.ts), which reads every
   * relay of every pool with the pool's API token.
   */
  observations?: RelayObservations;
}

export interface RunningOperator {
  stop(): Promise<void>;
  /** Port the probe/metrics server listens on (useful with metricsPort: 0). */
  port: number;
  identity: string;
  isLeader(): boolean;
  metrics: OperatorMetrics;
  manager: Manager;
  /** What the stats reader last learned of each relay (reachable, configVersion, queued). */
  observations: RelayObservations;
  observer: Observer;
}

function renderOptions(opts: OperatorOptions): RenderOptions {
  const ns = opts.operatorNamespace ?? process.env.POD_NAMESPACE;
  return {
    ...(opts.relayImage ? { defaultImage: opts.relayImage } : {}),
    ...(ns ? { operatorNamespace: ns } : {}),
    ...(opts.relayMetricsFrom?.length ? { metricsScrapers: opts.relayMetricsFrom } : {}),
  };
}

export async function runOperator(opts: OperatorOptions = {}): Promise<RunningOperator> {
  const log = opts.logger ?? createLogger(opts.logLevel ?? process.env.LOG_LEVEL ?? 'info', 'operator');
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  const kube = new Kube(kc);
  const identity = opts.identity ?? `${hostname()}-${randomBytes(3).toString('hex')}`;
  const metrics = createOperatorMetrics();
  const events = new EventRecorder(kube, { instance: identity, onError: (err) => log.warn({ err: String(err) }, 'could not write Event') });
  const manager = new Manager({
    kube,
    log,
    metrics,
    namespace: opts.namespace,
    childSelector: 'app.kubernetes.io/managed-by=mailfleet-operator',
    // The public half of each DKIM key, so a settled MailDomain is checked without an API read.
    cachedSecretKeys: [DKIM_PUBLIC_KEY],
    resyncMs: opts.resyncMs,
    stallMs: opts.stallMs,
  });
  const table = new ObservationTable();
  const deps = {
    kube,
    events,
    log,
    metrics,
    now: opts.now ?? (() => new Date()),
    dns: makeResolver(opts.dnsServers),
    dnsRecheckMs: opts.dnsRecheckMs ?? 5 * 60_000,
    refRecheckMs: opts.refRecheckMs ?? 30_000,
    render: renderOptions(opts),
    observations: opts.observations ?? table,
  };
  manager.add(sendingPoolController(deps));
  manager.add(mailDomainController(deps));
  metrics.countPools(() => {
    if (!manager.synced()) return undefined;
    const pools = manager.list(POOL);
    const ready = pools.filter((p) => ((p['status'] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length;
    return { ready, notReady: pools.length - ready };
  });
  // The reputation loop runs beside the controllers, leader only: it writes status.ips[]
  // reputation fields, which the SendingPool controller renders into the relay configs.
  const reputationConfig = opts.reputation ?? reputationConfigFromEnv(process.env.MAILFLEET_REPUTATION);
  const reputation = reputationConfig
    ? new ReputationLoop({ kube, events, config: reputationConfig, metrics: metrics.reputation, log, namespace: opts.namespace, secretNamespace: opts.namespace ?? opts.operatorNamespace ?? process.env.POD_NAMESPACE, ...(opts.reputationTickSeconds !== undefined ? { tickSeconds: opts.reputationTickSeconds } : {}) })
    : undefined;
  const observations = deps.observations;
  const observer = new Observer({
    kube, log: log.child({ component: 'observe' }), metrics, events, table, namespace: opts.namespace,
    // It runs only while the manager does (startManaging), so its caches are synced.
    caches: manager,
    ...(opts.statsIntervalMs !== undefined ? { intervalMs: opts.statsIntervalMs } : {}),
    ...(opts.statsFetch ? { fetch: opts.statsFetch } : {}),
    ...(opts.now ? { now: () => opts.now!().getTime() } : {}),
  });

  let stopping = false;
  let leading = false;
  // Leadership changes and shutdown are serialised, so a quick lose/regain cannot interleave a
  // manager start with a stop.
  let chain: Promise<void> = Promise.resolve();
  const serial = (fn: () => Promise<void>) => (chain = chain.then(fn, fn).catch((err) => log.error({ err: String(err) }, 'operator state change failed')));

  const startManaging = () =>
    serial(async () => {
      if (stopping) return;
      log.info({ identity }, 'leading: starting controllers');
      await manager.start();
      reputation?.start();
      if (!stopping) observer.start();
    });
  const stopManaging = () => {
    manager.interruptStart();
    return serial(async () => {
      log.info({ identity }, 'not leading: stopping controllers');
      await reputation?.stop();
      await observer.stop();
      await manager.stop();
    });
  };

  const http = await startHttpServer({
    port: opts.metricsPort ?? 8080,
    host: opts.metricsHost,
    registry: metrics.registry,
    probes: {
      healthy: () => ({ ok: !stopping, detail: stopping ? 'shutting down' : 'running' }),
      ready: () => {
        if (stopping) return { ok: false, detail: 'shutting down' };
        if (!leading) return { ok: true, detail: 'standing by (not the leader)' };
        return manager.synced() ? { ok: true, detail: 'leading; caches synced' } : { ok: false, detail: 'leading; caches syncing' };
      },
    },
  });

  let elector: LeaderElector | undefined;
  if (opts.leaderElection === false) {
    leading = true;
    metrics.leader.set(1);
    // Not awaited: with the apiserver unreachable the caches never sync, and the caller must
    // still get its handle (and SIGTERM its handler) rather than hang here.
    void startManaging();
  } else {
    elector = new LeaderElector(kube, {
      namespace: opts.leaseNamespace ?? opts.namespace ?? process.env.POD_NAMESPACE ?? 'default',
      name: opts.leaseName ?? 'mailfleet-operator',
      identity,
      ...(opts.leaseDurationMs !== undefined ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      ...(opts.renewDeadlineMs !== undefined ? { renewDeadlineMs: opts.renewDeadlineMs } : {}),
      ...(opts.retryPeriodMs !== undefined ? { retryPeriodMs: opts.retryPeriodMs } : {}),
      onStartedLeading: () => {
        leading = true;
        metrics.leader.set(1);
        void startManaging();
      },
      onStoppedLeading: () => {
        if (!leading) return;
        leading = false;
        metrics.leader.set(0);
        void stopManaging();
      },
      onError: (err) => log.warn({ err: String(err) }, 'leader election round failed'),
    });
    elector.start();
  }
  log.info({ identity, port: http.port, namespace: opts.namespace ?? '(all)', leaderElection: opts.leaderElection !== false }, 'operator started');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      log.info({ identity }, 'shutting down');
      // Controllers first (finish in-flight reconciles), then hand back the Lease, so the
      // successor never overlaps with our last writes.
      manager.interruptStart();
      await serial(async () => {
        await reputation?.stop();
        await observer.stop();
        await manager.stop();
      });
      await elector?.stop();
      leading = false;
      metrics.leader.set(0);
      await http.close();
      await kube.close();
      if (signalHandler) {
        process.off('SIGTERM', signalHandler);
        process.off('SIGINT', signalHandler);
      }
      log.info({ identity }, 'stopped');
    })());

  let signalHandler: (() => void) | undefined;
  if (opts.handleSignals !== false) {
    signalHandler = () => {
      void stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', signalHandler);
    process.once('SIGINT', signalHandler);
  }

  return { stop, port: http.port, identity, isLeader: () => leading, metrics, manager, observations, observer };
}
