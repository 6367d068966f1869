// Relay internals: intake, durable commit, claim and scheduling, connections, memory, disk.
import { THRESHOLDS as T } from '../alerts.ts';
import { RELAY_POOL, UID, build, dashboard, panel, row } from './common.ts';

export function relayInternals() {
  const P = RELAY_POOL;
  return build(
    dashboard(UID.relay, 'mailfleet / Relay internals', 'Per relay pod: SMTP intake, queue commits (fsync), queue depth and age, scheduling, outbound connections, memory and disk.', ['pool'])
      .withRow(row('Intake'))
      .withPanel(panel({
        title: 'SMTP messages by result', unit: 'suffix: msg/s', width: 6,
        description: 'Messages received per second by listener and result (accepted, rejected, tempfail).',
        targets: [{ expr: `sum by (listener, result) (rate(mailfleet_smtp_messages_total{${P}}[$__rate_interval]))`, legend: '{{listener}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'SMTP connections and refusals', unit: 'suffix: /s', width: 6,
        description: 'Connections accepted, commands refused (by stage and reason), failed AUTH and slow clients closed with 421 4.4.2, per second.',
        targets: [
          { expr: `sum by (listener) (rate(mailfleet_smtp_connections_total{${P}}[$__rate_interval]))`, legend: 'connections {{listener}}' },
          { expr: `sum by (stage, reason) (rate(mailfleet_smtp_rejections_total{${P}}[$__rate_interval]))`, legend: 'refused {{stage}} {{reason}}' },
          { expr: `sum by (listener) (rate(mailfleet_smtp_auth_failures_total{${P}}[$__rate_interval]))`, legend: 'auth failed {{listener}}' },
          { expr: `sum by (phase) (rate(mailfleet_smtp_slow_clients_total{${P}}[$__rate_interval]))`, legend: 'slow client {{phase}}' },
        ],
      }))
      .withPanel(panel({
        title: 'Intake memory held', unit: 'bytes', width: 6, min: 0,
        description: 'Message bytes SMTP intake holds in memory per pod; a message that does not fit limits.intakeMemoryBytes is answered 451 4.3.1.',
        targets: [{ expr: `max by (pod) (mailfleet_intake_held_bytes{${P}})`, legend: '{{pod}}' }],
      }))
      .withPanel(panel({
        title: 'Bytes accepted', unit: 'Bps', width: 6,
        description: 'Message bytes accepted into the queue per second.',
        targets: [{ expr: `sum by (pod) (rate(mailfleet_smtp_received_bytes_total{${P}}[$__rate_interval]))`, legend: '{{pod}}' }],
      }))
      .withRow(row('Durable queue'))
      .withPanel(panel({
        title: 'Commit latency (fsync)', unit: 's', width: 8,
        description: 'p50 and p99 of one group commit including fsync: what a client waits for before its 250.',
        targets: [
          { expr: `histogram_quantile(0.5, sum by (le, pod) (rate(mailfleet_queue_commit_duration_seconds_bucket{${P}}[$__rate_interval])))`, legend: '{{pod}} p50' },
          { expr: `histogram_quantile(0.99, sum by (le, pod) (rate(mailfleet_queue_commit_duration_seconds_bucket{${P}}[$__rate_interval])))`, legend: '{{pod}} p99' },
        ],
      }))
      .withPanel(panel({
        title: 'Commit batch size', unit: 'short', width: 8,
        description: 'Messages made durable per commit (group commit), on average, and commits per second.',
        targets: [
          { expr: `sum by (pod) (rate(mailfleet_queue_commit_batch_messages_sum{${P}}[$__rate_interval])) / sum by (pod) (rate(mailfleet_queue_commit_batch_messages_count{${P}}[$__rate_interval]))`, legend: '{{pod}} messages/commit' },
          { expr: `sum by (pod) (rate(mailfleet_queue_commits_total{${P}}[$__rate_interval]))`, legend: '{{pod}} commits/s' },
        ],
      }))
      .withPanel(panel({
        title: 'Queue depth by class', unit: 'short', width: 8, runbook: 'MailfleetQueueAgeHigh',
        description: 'Recipients not yet delivered or bounced, by class.',
        targets: [{ expr: `sum by (class) (mailfleet_queue_class_recipients{${P}})`, legend: '{{class}}' }],
      }))
      .withPanel(panel({
        title: 'Oldest queued recipient by class', unit: 's', width: 8, runbook: 'MailfleetOtpQueueAgeHigh',
        thresholds: [{ value: T.otpOldestSeconds, color: 'red' }],
        description: `Per pod and class. Line: the OTP alert (${T.otpOldestSeconds} s).`,
        targets: [{ expr: `max by (pod, class) (mailfleet_queue_oldest_age_seconds{${P}})`, legend: '{{pod}} {{class}}' }],
      }))
      .withPanel(panel({
        title: 'Queue time at attempt (p99)', unit: 's', width: 8,
        description: 'How long recipients had waited when an attempt to deliver them started, p99 by class.',
        targets: [{ expr: `histogram_quantile(0.99, sum by (le, class) (rate(mailfleet_queue_age_seconds_bucket{${P}}[$__rate_interval])))`, legend: '{{class}}' }],
      }))
      .withPanel(panel({
        title: 'Claimed and waiting in memory', unit: 'short', width: 8,
        description: 'Recipients claimed from the queue and waiting for a connection or a token, by class.',
        targets: [{ expr: `sum by (class) (mailfleet_scheduler_held_recipients{${P}})`, legend: '{{class}}' }],
      }))
      .withRow(row('Delivery'))
      .withPanel(panel({
        title: 'Outbound connections', unit: 'suffix: conn/s', width: 8,
        description: 'Connections opened to remote MX hosts per second, by source IP and result.',
        targets: [{ expr: `sum by (source_ip, result) (rate(mailfleet_delivery_connections_total{${P}}[$__rate_interval]))`, legend: '{{source_ip}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'DSNs generated', unit: 'suffix: msg/s', width: 8,
        description: 'Delivery status notifications queued to senders, by action.',
        targets: [{ expr: `sum by (action) (rate(mailfleet_delivery_dsn_total{${P}}[$__rate_interval]))`, legend: '{{action}}' }],
      }))
      .withPanel(panel({
        title: 'Delivery latency p99 by provider', unit: 's', width: 8,
        description: 'Acceptance → delivery, p99, per provider.',
        targets: [{ expr: `histogram_quantile(0.99, sum by (le, provider) (rate(mailfleet_delivery_latency_seconds_bucket{${P}}[$__rate_interval])))`, legend: '{{provider}}' }],
      }))
      .withRow(row('Process and disk'))
      .withPanel(panel({
        title: 'Memory', unit: 'bytes', width: 8,
        description: 'Resident set size and V8 heap used per relay pod.',
        targets: [
          { expr: `max by (pod) (mailfleet_relay_process_resident_memory_bytes{${P}})`, legend: '{{pod}} RSS' },
          { expr: `max by (pod) (mailfleet_relay_nodejs_heap_size_used_bytes{${P}})`, legend: '{{pod}} heap used' },
        ],
      }))
      .withPanel(panel({
        title: 'Event loop lag p99 and CPU', unit: 's', width: 8,
        description: 'Event loop delay p99 and CPU seconds per second per relay pod.',
        targets: [
          { expr: `max by (pod) (mailfleet_relay_nodejs_eventloop_lag_p99_seconds{${P}})`, legend: '{{pod}} lag p99' },
          { expr: `sum by (pod) (rate(mailfleet_relay_process_cpu_seconds_total{${P}}[$__rate_interval]))`, legend: '{{pod}} CPU' },
        ],
      }))
      .withPanel(panel({
        title: 'Queue volume free', unit: 'percentunit', width: 8, min: 0, max: 1, runbook: 'MailfleetQueueVolumeAlmostFull',
        thresholds: [{ value: T.volumeFreeCritical, color: 'red' }, { value: T.volumeFreeWarning, color: 'orange' }],
        description: `Free share of the filesystem holding the queue. Lines: warning ${T.volumeFreeWarning * 100} %, critical ${T.volumeFreeCritical * 100} %.`,
        targets: [{ expr: `min by (pod) (mailfleet_queue_volume_free_bytes{${P}} / mailfleet_queue_volume_size_bytes{${P}})`, legend: '{{pod}}' }],
      }))
      .withPanel(panel({
        title: 'Config reloads', unit: 'short', width: 8, runbook: 'MailfleetRelayConfigRefused', min: 0,
        description: 'Config versions applied live and refused in the range, and relays waiting for a restart to apply restart-only fields (docs/live-config.md).',
        targets: [
          { expr: `sum by (pod) (increase(mailfleet_relay_config_reloads_total{${P}}[$__range]))`, legend: '{{pod}} applied' },
          { expr: `sum by (pod) (increase(mailfleet_relay_config_reload_failures_total{${P}}[$__range]))`, legend: '{{pod}} refused' },
          { expr: `sum(mailfleet_relay_config_restart_pending{${P}})`, legend: 'restart pending' },
        ],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Ready relays', unit: 'none', width: 8, runbook: 'MailfleetRelayNotReady',
        description: 'Relay pods ready, of those scraped.',
        targets: [{ expr: `sum(mailfleet_relay_ready{${P}})`, legend: 'ready' }, { expr: `count(up{${P}})`, legend: 'scraped' }],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Relays per config version', unit: 'none', width: 8,
        description: 'Relay config version in use per pod (the operator reports a decision done once the relays run its version).',
        targets: [{ expr: `count by (version) (mailfleet_relay_config_info{${P}})`, legend: '{{version}}' }],
      })),
  );
}
