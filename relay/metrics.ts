// The relay's Prometheus registry. Labels stay bounded: listener names, results and reasons from
// fixed sets, never recipients, domains or client addresses.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

// Queue times run from milliseconds (otp) to the days a retry schedule allows.
const QUEUE_TIME_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];

export function createRelayMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'mailfleet_relay_' });
    // prom-client also names three gauges *_total, a suffix Prometheus reserves for counters
    // (promtool rejects them); the same numbers stay available without the suffix.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) registry.removeSingleMetric(`mailfleet_relay_nodejs_${name}`);
  }
  const m = {
    registry,
    httpUnauthorized: new Counter({
      name: 'mailfleet_relay_http_unauthorized_total',
      help: 'HTTP API requests refused with 401, by reason (missing: no bearer token; wrong: a token not accepted).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    smtpConnections: new Counter({
      name: 'mailfleet_smtp_connections_total',
      help: 'SMTP connections accepted, by listener.',
      labelNames: ['listener'] as const,
      registers: [registry],
    }),
    smtpMessages: new Counter({
      name: 'mailfleet_smtp_messages_total',
      help: 'Messages received over SMTP, by listener and result (accepted, rejected, tempfail).',
      labelNames: ['listener', 'result'] as const,
      registers: [registry],
    }),
    smtpRejections: new Counter({
      name: 'mailfleet_smtp_rejections_total',
      help: 'SMTP commands refused, by listener, stage and reason.',
      labelNames: ['listener', 'stage', 'reason'] as const,
      registers: [registry],
    }),
    intakeWorkerThreads: new Gauge({
      name: 'mailfleet_intake_worker_threads',
      help: 'Worker threads running SMTP sessions (intake.workerThreads as resolved at start; 0: sessions on the main thread).',
      registers: [registry],
    }),
    intakeHeldBytes: new Gauge({
      name: 'mailfleet_intake_held_bytes',
      help: 'Message bytes SMTP intake holds in memory now, against limits.intakeMemoryBytes.',
      registers: [registry],
    }),
    slowClients: new Counter({
      name: 'mailfleet_smtp_slow_clients_total',
      help: 'Connections closed with 421 4.4.2 for a command line not finished in time (phase="command") or a message body below the minimum data rate (phase="data").',
      labelNames: ['listener', 'phase'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'mailfleet_smtp_auth_failures_total',
      help: 'Failed AUTH attempts, by listener.',
      labelNames: ['listener'] as const,
      registers: [registry],
    }),
    receivedBytes: new Counter({
      name: 'mailfleet_smtp_received_bytes_total',
      help: 'Message bytes accepted into the queue.',
      registers: [registry],
    }),
    queueCommits: new Counter({
      name: 'mailfleet_queue_commits_total',
      help: 'Durable queue commits (each one fsync of the WAL).',
      registers: [registry],
    }),
    queueCommitMessages: new Histogram({
      name: 'mailfleet_queue_commit_batch_messages',
      help: 'Messages made durable per queue commit (group commit).',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    queueCommitSeconds: new Histogram({
      name: 'mailfleet_queue_commit_duration_seconds',
      help: 'Time to commit and fsync one batch.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    queueRecipients: new Gauge({
      name: 'mailfleet_queue_recipients',
      help: 'Recipients in the queue, by state.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    // Delivery (relay/delivery). source_ip is bounded by the configured egress IPs, provider by the
    // MX rollup in relay/delivery/provider.ts, category by relay/bounce/rules.ts.
    deliveryAttempts: new Counter({
      name: 'mailfleet_delivery_attempts_total',
      help: 'Delivery outcomes per recipient, by result (delivered, deferred, bounced, expired), source IP, provider and bounce category.',
      labelNames: ['result', 'source_ip', 'provider', 'category'] as const,
      registers: [registry],
    }),
    deliveryLatency: new Histogram({
      name: 'mailfleet_delivery_latency_seconds',
      help: 'Time from acceptance into the queue to delivery at the remote MX.',
      labelNames: ['provider'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400],
      registers: [registry],
    }),
    deliveryConnections: new Counter({
      name: 'mailfleet_delivery_connections_total',
      help: 'Outbound SMTP connections opened, by source IP and result (ok, failed).',
      labelNames: ['source_ip', 'result'] as const,
      registers: [registry],
    }),
    dsnGenerated: new Counter({
      name: 'mailfleet_delivery_dsn_total',
      help: 'Delivery status notifications queued to senders, by action (failed, delayed).',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
    // The bounce MX (relay/bounce/mx-consumer.ts): kind and token come from fixed sets.
    feedbackReports: new Counter({
      name: 'mailfleet_bounce_mx_reports_total',
      help: 'Reports consumed by the bounce MX, by kind (dsn, arf, autoreply, delivery-report, unknown) and return-path token verdict (trusted, untrusted, none).',
      labelNames: ['kind', 'token'] as const,
      registers: [registry],
    }),
    feedbackBounces: new Counter({
      name: 'mailfleet_feedback_bounces_total',
      help: 'Recipients that asynchronous bounces (DSNs to a return path) say failed for good, by sending domain (the configured MailDomains, else other) and category.',
      labelNames: ['sending_domain', 'category'] as const,
      registers: [registry],
    }),
    // Scheduler (relay/scheduler). source_ip and provider bounded as above; class is otp,
    // transactional or bulk; reason and action come from fixed sets.
    // Reputation (docs/reputation.md): 1 while the live config quarantines the source IP.
    ipQuarantined: new Gauge({
      name: 'mailfleet_ip_quarantined',
      help: 'Source IP quarantined by the live config (shaping.quarantine): 1 while it sends nothing, 0 otherwise.',
      labelNames: ['source_ip'] as const,
      registers: [registry],
    }),
    shapingRestricted: new Gauge({
      name: 'mailfleet_shaping_restricted',
      help: 'Source IP toward provider currently restricted by adaptive backoff (1), by action (suspend, throttle).',
      labelNames: ['source_ip', 'provider', 'action'] as const,
      registers: [registry],
    }),
    shapingRestrictions: new Counter({
      name: 'mailfleet_shaping_restrictions_total',
      help: 'Suspensions and throttles started by adaptive backoff rules, by source IP, provider and action.',
      labelNames: ['source_ip', 'provider', 'action'] as const,
      registers: [registry],
    }),
    handoffRecipients: new Counter({
      name: 'mailfleet_handoff_recipients_total',
      help: 'Recipients of a quarantined relay offered to a peer relay of the pool: accepted (the peer said 250), deferred (the peer refused or was unreachable; kept here) or held (handed off once already; kept here).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    shapingHeldBack: new Counter({
      name: 'mailfleet_shaping_held_back_total',
      help: 'Recipients the scheduler sent back to the queue unattempted, by class and reason (suspended, quota, rate, no-ip, domain-paused).',
      labelNames: ['class', 'reason'] as const,
      registers: [registry],
    }),
    schedulerHeld: new Gauge({
      name: 'mailfleet_scheduler_held_recipients',
      help: 'Recipients claimed from the queue and waiting in memory for a connection or a token, by class.',
      labelNames: ['class'] as const,
      registers: [registry],
    }),
    warmupUsed: new Gauge({
      name: 'mailfleet_warmup_quota_used',
      help: 'Recipients sent from a source IP in the current UTC hour or day (window).',
      labelNames: ['source_ip', 'window'] as const,
      registers: [registry],
    }),
    warmupCap: new Gauge({
      name: 'mailfleet_warmup_quota_cap',
      help: 'Warm-up cap of a source IP per UTC hour or day (window).',
      labelNames: ['source_ip', 'window'] as const,
      registers: [registry],
    }),
    queueAge: new Histogram({
      name: 'mailfleet_queue_age_seconds',
      help: 'Time a recipient had spent in the queue when an attempt to deliver it started, by class.',
      labelNames: ['class'] as const,
      buckets: QUEUE_TIME_BUCKETS,
      registers: [registry],
    }),
    classLatency: new Histogram({
      name: 'mailfleet_delivery_class_latency_seconds',
      help: 'Time from acceptance into the queue to delivery at the remote MX, by class.',
      labelNames: ['class'] as const,
      buckets: QUEUE_TIME_BUCKETS,
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: 'mailfleet_relay_config_info',
      help: 'The relay config version this relay runs (1 for the running version only; relay/config/version.ts).',
      labelNames: ['version'] as const,
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'mailfleet_relay_config_reloads_total',
      help: 'New config versions applied without a restart.',
      registers: [registry],
    }),
    configReloadFailures: new Counter({
      name: 'mailfleet_relay_config_reload_failures_total',
      help: 'New config versions refused (unreadable or invalid); the previous version keeps serving.',
      registers: [registry],
    }),
    configRestartPending: new Gauge({
      name: 'mailfleet_relay_config_restart_pending',
      help: '1 while the config file changes fields that only a restart applies (listeners, ports, paths).',
      registers: [registry],
    }),
    intakeThrottled: new Counter({
      name: 'mailfleet_intake_throttled_total',
      help: 'Messages over an intake rate limit, by listener, scope (pool, credential) and action (tempfail, queued).',
      labelNames: ['listener', 'scope', 'action'] as const,
      registers: [registry],
    }),
    // Added for SREs (docs/observability.md, issue 16). The gauges below are set at scrape time
    // by relay/scrape-gauges.ts; sending_domain is bounded by the configured MailDomains.
    deliveryDomainAttempts: new Counter({
      name: 'mailfleet_delivery_domain_attempts_total',
      help: 'Delivery outcomes per recipient, by sending domain (a configured MailDomain, else "other"), result and bounce category.',
      labelNames: ['sending_domain', 'result', 'category'] as const,
      registers: [registry],
    }),
    queueClassRecipients: new Gauge({
      name: 'mailfleet_queue_class_recipients',
      help: 'Recipients not yet delivered or bounced (queued or in flight), by class.',
      labelNames: ['class'] as const,
      registers: [registry],
    }),
    queueOldestAge: new Gauge({
      name: 'mailfleet_queue_oldest_age_seconds',
      help: 'Age of the oldest recipient not yet delivered or bounced, by class (0 when there is none).',
      labelNames: ['class'] as const,
      registers: [registry],
    }),
    queueVolumeFree: new Gauge({
      name: 'mailfleet_queue_volume_free_bytes',
      help: 'Bytes available to the relay on the filesystem holding the queue.',
      registers: [registry],
    }),
    queueVolumeSize: new Gauge({
      name: 'mailfleet_queue_volume_size_bytes',
      help: 'Size of the filesystem holding the queue.',
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'mailfleet_relay_ready',
      help: '1 while the relay is ready (its /readyz answers 200).',
      registers: [registry],
    }),
  };
  return m;
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;

/** The sending-domain label of a MAIL FROM: a configured domain, else "other" (bounded). */
export function sendingDomainLabel(mailFrom: string, domains: ReadonlySet<string>): string {
  const at = mailFrom.lastIndexOf('@');
  const domain = at < 0 ? '' : mailFrom.slice(at + 1).toLowerCase();
  return domains.has(domain) ? domain : 'other';
}
