// Metrics of what feedback becomes, with the names docs/observability.md agreed (its alerts and
// dashboards query them). Labels are bounded: reason and event type from fixed lists, class from
// three lanes, sending_domain from the configured domains ("*" for fleet-wide entries, "other"
// for the rest), provider from the MX rollup's names; never a recipient or tag.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function createFeedbackMetrics(registry: Registry) {
  return {
    suppressions: new Gauge({
      name: 'mailfleet_suppressions',
      help: 'Active entries in this relay\'s copy of the suppression list, by scope (a configured sending domain, * for the whole fleet, other) and reason.',
      labelNames: ['sending_domain', 'reason'] as const,
      registers: [registry],
    }),
    suppressionsAdded: new Counter({
      name: 'mailfleet_suppressions_added_total',
      help: 'Suppression entries recorded by this relay (feedback, API, CLI through the API), by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    suppressedAttempts: new Counter({
      name: 'mailfleet_suppressed_attempts_total',
      help: 'Recipients finished as suppressed instead of attempted, by class and reason.',
      labelNames: ['class', 'reason'] as const,
      registers: [registry],
    }),
    events: new Counter({
      name: 'mailfleet_events_total',
      help: 'Events recorded, by type.',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'mailfleet_webhook_deliveries_total',
      help: 'Event webhook POSTs (batches), by result: ok (2xx), retry (failed, its events tried again later), dead (failed, events given up).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    webhookDeadLettersTotal: new Counter({
      name: 'mailfleet_webhook_dead_letters_total',
      help: 'Events given up on after the retry period (or refused with 406/410), moved to the dead letters.',
      registers: [registry],
    }),
    complaints: new Counter({
      name: 'mailfleet_feedback_complaints_total',
      help: 'Complaints (ARF feedback-loop reports) recorded, by sending domain and provider.',
      labelNames: ['sending_domain', 'provider'] as const,
      registers: [registry],
    }),
    webhookLag: new Histogram({
      name: 'mailfleet_webhook_lag_seconds',
      help: 'Time from an event being recorded to its webhook accepting it.',
      buckets: [0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 14400, 86400],
      registers: [registry],
    }),
    webhookOldest: new Gauge({
      name: 'mailfleet_webhook_oldest_pending_seconds',
      help: 'Age of the oldest event waiting for a webhook (0 when none waits).',
      registers: [registry],
    }),
    webhookPending: new Gauge({
      name: 'mailfleet_webhook_pending_events',
      help: 'Events waiting in the webhook outbox.',
      registers: [registry],
    }),
    webhookDead: new Gauge({
      name: 'mailfleet_webhook_dead_letter_events',
      help: 'Events in the dead-letter table (given up after the retry period, or refused by the receiver).',
      registers: [registry],
    }),
    fleetUp: new Gauge({
      name: 'mailfleet_suppression_store_up',
      help: '1 when the fleet\'s shared suppression store (PostgreSQL) was reached by the last sync, 0 when not (entries wait in the outbox); absent without PostgreSQL.',
      registers: [registry],
    }),
    fleetOutbox: new Gauge({
      name: 'mailfleet_fleet_outbox_entries',
      help: 'Entries recorded here and not yet in the fleet\'s PostgreSQL, by table (suppressions, events).',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    fleetSyncs: new Counter({
      name: 'mailfleet_fleet_syncs_total',
      help: 'Syncs with the fleet\'s PostgreSQL, by result (ok, failed).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}

export type FeedbackMetrics = ReturnType<typeof createFeedbackMetrics>;
