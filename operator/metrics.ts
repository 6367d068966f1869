// The operator's Prometheus registry. Labels are bounded: kind and result come from fixed sets,
// never object names (a fleet of thousands of pools must not become thousands of series).
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { createReputationMetrics } from './reputation/metrics.ts';

/** SendingPools by their Ready condition; undefined while there is nothing to count (a follower, caches syncing). */
export type PoolReadiness = () => { ready: number; notReady: number } | undefined;

/** Unix seconds of the oldest MailDomain DNS check this process knows of; undefined with no domains. */
export type OldestDnsCheck = () => number | undefined;

export function createOperatorMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  let poolReadiness: PoolReadiness | undefined;
  let oldestDnsCheck: OldestDnsCheck | undefined;
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'mailfleet_operator_' });
    // prom-client names three gauges *_total, a suffix Prometheus reserves for counters (promtool
    // rejects them); the same numbers stay available without the suffix (as in relay/metrics.ts).
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) {
      registry.removeSingleMetric(`mailfleet_operator_nodejs_${name}`);
    }
  }
  return {
    registry,
    // The control loop's series are per pool and sending domain: bounded by the objects a user
    // created (a few per pool), which is what an on-call engineer needs to see (docs/control-loop.md);
    // the per-domain ones only for domains not Healthy (operator/observe/observer.ts exportDomainSeries).
    relayReads: new Counter({
      name: 'mailfleet_operator_relay_stats_reads_total',
      help: 'Reads of relays\' GET /v1/stats, by result (ok, Unreachable, Unauthorized, UnsupportedSchema, BadResponse).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    domainRatio: new Gauge({
      name: 'mailfleet_operator_domain_ratio',
      help: 'A sending domain\'s rates over its judged volume (24 h, widened to the minimum volume), by kind (bounce, deferral, complaint); 0..1. Domains in Review or Paused only.',
      labelNames: ['namespace', 'pool', 'domain', 'kind'] as const,
      registers: [registry],
    }),
    domainState: new Gauge({
      name: 'mailfleet_operator_domain_state',
      help: 'A sending domain\'s guardrail state (enum: 1 for the current state of Healthy, Review, Paused). Domains in Review or Paused only.',
      labelNames: ['namespace', 'pool', 'domain', 'state'] as const,
      registers: [registry],
    }),
    warmupStage: new Gauge({
      name: 'mailfleet_operator_warmup_stage',
      help: 'The feedback-driven warm-up stage of a pool IP (index into its plan\'s steps; docs/control-loop.md).',
      labelNames: ['namespace', 'pool', 'ip'] as const,
      registers: [registry],
    }),
    controlDecisions: new Counter({
      name: 'mailfleet_operator_decisions_total',
      help: 'Control-loop decisions, by decision (pause_domain, review_domain, recover_domain, resume_domain; advance, hold, step_back, idle_loss).',
      labelNames: ['decision'] as const,
      registers: [registry],
    }),
    reconciles: new Counter({
      name: 'mailfleet_operator_reconciles_total',
      help: 'Reconciles finished, by kind and result (success, error, requeue, invalid).',
      labelNames: ['kind', 'result'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'mailfleet_operator_reconcile_errors_total',
      help: 'Reconciles that failed and were re-queued with backoff, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'mailfleet_operator_reconcile_duration_seconds',
      help: 'Time spent in one reconcile, by kind.',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'mailfleet_operator_workqueue_depth',
      help: 'Keys waiting in the work queue, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: 'mailfleet_operator_informer_restarts_total',
      help: 'Informer restarts after a watch error or a stall, by resource kind and reason.',
      labelNames: ['resource', 'reason'] as const,
      registers: [registry],
    }),
    statusConflicts: new Counter({
      name: 'mailfleet_operator_status_conflicts_total',
      help: 'Status writes refused with 409 Conflict and retried, by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    // Counted at scrape time from the leader's informer cache (countPools), so it is never stale
    // and a follower exports no series: sum() over replicas counts each pool once.
    sendingPools: new Gauge({
      name: 'mailfleet_operator_sendingpools',
      help: 'SendingPools by their Ready condition (ready="true" when it is True; "false" otherwise, also while not yet set).',
      labelNames: ['ready'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const n = poolReadiness?.();
        if (!n) return;
        this.set({ ready: 'true' }, n.ready);
        this.set({ ready: 'false' }, n.notReady);
      },
    }),
    /** Where mailfleet_operator_sendingpools counts from (set once the manager exists). */
    countPools(fn: PoolReadiness): void {
      poolReadiness = fn;
    },
    // DNS re-checks write the status only when a record's result changes (docs/operator.md, "DNS
    // re-checks"): these say that the checks still run, without a status write per domain per interval.
    dnsChecks: new Counter({
      name: 'mailfleet_operator_dns_checks_total',
      help: 'MailDomain DNS checks, by outcome: changed (a record\'s result differs from status.records, which is written) or unchanged (nothing written).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    dnsOldestCheck: new Gauge({
      name: 'mailfleet_operator_dns_oldest_check_timestamp_seconds',
      help: 'When the MailDomain whose DNS records were checked longest ago was last checked (Unix seconds); alert when it falls more than two re-check intervals behind.',
      registers: [registry],
      collect() {
        this.reset();
        const t = oldestDnsCheck?.();
        if (t !== undefined) this.set(t);
      },
    }),
    /** Where mailfleet_operator_dns_oldest_check_timestamp_seconds reads from (the MailDomain controller). */
    countDnsChecks(fn: OldestDnsCheck): void {
      oldestDnsCheck = fn;
    },
    statsRounds: new Counter({
      name: 'mailfleet_operator_stats_rounds_total',
      help: 'Rounds of the stats loop finished (every relay of every pool read once, decisions written).',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'mailfleet_operator_leader',
      help: '1 while this process holds the leader Lease.',
      registers: [registry],
    }),
    // DNSBL, PTR and quarantine metrics (operator/reputation/metrics.ts documents the encoding).
    reputation: createReputationMetrics(registry),
  };
}

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
