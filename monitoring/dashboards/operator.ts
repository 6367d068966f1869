// Operator: reconciles, errors, work queue, leader, control-loop decisions.
import { OPERATOR, UID, build, dashboard, panel, row } from './common.ts';

export function operatorDashboard() {
  const O = OPERATOR;
  return build(
    dashboard(UID.operator, 'mailfleet / Operator', 'The mailfleet operator: reconciles by kind and result, errors, work queue depth, leader, informers, control-loop decisions.', [], 'operator')
      .withRow(row('Reconciles'))
      .withPanel(panel({
        title: 'Reconciles by kind and result', unit: 'suffix: /s', runbook: 'MailfleetOperatorReconcileErrors',
        description: 'Reconciles finished per second.',
        targets: [{ expr: `sum by (kind, result) (rate(mailfleet_operator_reconciles_total{${O}}[$__rate_interval]))`, legend: '{{kind}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'Reconcile duration p99', unit: 's',
        description: 'Time in one reconcile, p99 by kind.',
        targets: [{ expr: `histogram_quantile(0.99, sum by (le, kind) (rate(mailfleet_operator_reconcile_duration_seconds_bucket{${O}}[$__rate_interval])))`, legend: '{{kind}}' }],
      }))
      .withPanel(panel({
        title: 'Errors and conflicts', unit: 'suffix: /s', runbook: 'MailfleetOperatorReconcileErrors',
        description: 'Failed reconciles (re-queued with backoff) and status writes refused with 409, per second.',
        targets: [
          { expr: `sum by (kind) (rate(mailfleet_operator_reconcile_errors_total{${O}}[$__rate_interval]))`, legend: 'errors {{kind}}' },
          { expr: `sum by (kind) (rate(mailfleet_operator_status_conflicts_total{${O}}[$__rate_interval]))`, legend: 'conflicts {{kind}}' },
        ],
      }))
      .withPanel(panel({
        title: 'Work queue depth', unit: 'short', min: 0,
        description: 'Keys waiting to be reconciled, by kind.',
        targets: [{ expr: `sum by (kind) (mailfleet_operator_workqueue_depth{${O}})`, legend: '{{kind}}' }],
      }))
      .withRow(row('Leadership and process'))
      .withPanel(panel({
        kind: 'stat', title: 'Leader', unit: 'none', runbook: 'MailfleetOperatorNoLeader', width: 6, thresholds: [{ value: 2, color: 'red' }],
        description: 'Replicas holding the leader Lease (1 is right; 0 means nothing is reconciled).',
        targets: [{ expr: `sum(mailfleet_operator_leader{${O}})`, legend: 'leaders' }],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Replicas up', unit: 'none', runbook: 'MailfleetOperatorDown', width: 6,
        description: 'Operator replicas scraped.',
        targets: [{ expr: `sum(up{${O}})`, legend: 'up' }],
      }))
      .withPanel(panel({
        title: 'Memory', unit: 'bytes', width: 12,
        description: 'Resident set size and V8 heap used per operator pod.',
        targets: [
          { expr: `max by (pod) (mailfleet_operator_process_resident_memory_bytes{${O}})`, legend: '{{pod}} RSS' },
          { expr: `max by (pod) (mailfleet_operator_nodejs_heap_size_used_bytes{${O}})`, legend: '{{pod}} heap used' },
        ],
      }))
      .withPanel(panel({
        title: 'Informer restarts', unit: 'short',
        description: 'Informer restarts in the range after a watch error or a stall, by resource and reason.',
        targets: [{ expr: `sum by (resource, reason) (increase(mailfleet_operator_informer_restarts_total{${O}}[$__range]))`, legend: '{{resource}} {{reason}}' }],
      }))
      .withRow(row('Control loop'))
      .withPanel(panel({
        title: 'Decisions', unit: 'short',
        description: 'Control-loop decisions applied in the range (warm-up advance/hold/step back, domain pause/resume, IP quarantine/release).',
        targets: [{ expr: `sum by (decision) (increase(mailfleet_operator_decisions_total{${O}}[$__range]))`, legend: '{{decision}}' }],
      }))
      .withPanel(panel({
        title: 'SendingPools by Ready', unit: 'short', thresholds: [{ value: 1, color: 'red' }],
        description: 'SendingPools by their Ready condition.',
        targets: [{ expr: `sum by (ready) (mailfleet_operator_sendingpools{${O}})`, legend: 'ready={{ready}}' }],
      })),
  );
}
