// The relay's Prometheus registry. Labels stay bounded: listener names, results and reasons from
// fixed sets, never recipients, domains or client addresses.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

export function createRelayMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'mailfleet_relay_' });
  const m = {
    registry,
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
  };
  return m;
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
