// mailfleet's Prometheus alerting and recording rules, as data (kubernetes-mixin style: severity,
// summary, description, runbook_url, for). `npm run dashboards` writes them into the chart
// (charts/mailfleet/files/prometheus-rules.yaml) with two placeholders the chart fills in: the
// operator's selector and the runbook base URL. Thresholds are sourced in docs/observability.md.
export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: Rule[];
}

export interface RuleOptions {
  /** PromQL label matchers of the operator's targets, e.g. job="mailfleet",namespace="mailfleet-system". */
  operatorSelector: string;
  /** Base URL of docs/runbooks (no trailing slash). */
  runbookBaseUrl: string;
}

/** The relays' job, set by the chart's PodMonitor (jobLabel app.kubernetes.io/name). */
export const RELAY = 'job="mailfleet-relay"';

// Thresholds (docs/observability.md, "Alerts"): SES review/pause lines for bounces, the
// mailbox-provider spam-rate lines for complaints, PostHog's minimum-volume floors.
export const THRESHOLDS = {
  bounceReview: 0.05,
  bouncePause: 0.1,
  bounceMinOutcomes1h: 200,
  complaintReview: 0.001,
  complaintPause: 0.003,
  complaintMinDelivered1d: 1000,
  otpOldestSeconds: 30,
  transactionalOldestSeconds: 1800,
  bulkOldestSeconds: 21600,
  otpSloSeconds: 10,
  otpSloTarget: 0.99,
  deferralRatio: 0.25,
  deferralMinAttempts15m: 50,
  volumeFreeWarning: 0.2,
  volumeFreeCritical: 0.1,
} as const;

const T = THRESHOLDS;
const L = (s: string) => `{{ $labels.${s} }}`;
const V = '{{ $value | humanizePercentage }}';
const POD = 'cluster, namespace, pool, pod';
const DOMAIN = 'cluster, sending_domain';
const FINAL = 'result=~"delivered|bounced|expired"';

/** Share of OTP deliveries slower than the SLO over a window (recorded; the burn-rate alerts and the dashboards read it). */
export const otpSlowRatio = (w: string) => `mailfleet:otp_delivery_slow:ratio_rate${w}`;
const OTP_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d'];

function bounceRatio(): string {
  const sel = `${RELAY},sending_domain!="other"`;
  const bounced = `sum by (${DOMAIN}) (increase(mailfleet_delivery_domain_attempts_total{${sel},result="bounced"}[1h]) or increase(mailfleet_feedback_bounces_total{${sel}}[1h]))`;
  const outcomes = `sum by (${DOMAIN}) (increase(mailfleet_delivery_domain_attempts_total{${sel},${FINAL}}[1h]))`;
  return `((${bounced} / ${outcomes}) and on (${DOMAIN}) (${outcomes} >= ${T.bounceMinOutcomes1h}))`;
}

function complaintRatio(): string {
  const sel = `${RELAY},sending_domain!="other"`;
  const delivered = `sum by (${DOMAIN}) (increase(mailfleet_delivery_domain_attempts_total{${sel},result="delivered"}[1d]))`;
  return `((sum by (${DOMAIN}) (increase(mailfleet_feedback_complaints_total{${sel}}[1d])) / ${delivered}) and on (${DOMAIN}) (${delivered} >= ${T.complaintMinDelivered1d}))`;
}

export function ruleGroups(o: RuleOptions): RuleGroup[] {
  const runbook = (alert: string) => `${o.runbookBaseUrl}/${alert}.md`;
  const alert = (name: string, severity: 'critical' | 'warning' | 'info', expr: string, forDuration: string, summary: string, description: string): Rule => ({
    alert: name,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook_url: runbook(name) },
  });
  const burn = (long: string, short: string, factor: number) =>
    `${otpSlowRatio(long)} > ${+(factor * (1 - T.otpSloTarget)).toFixed(4)} and ${otpSlowRatio(short)} > ${+(factor * (1 - T.otpSloTarget)).toFixed(4)}`;
  // The burn-rate rules share one alert name (one runbook); the windows tell them apart, as in
  // kubernetes-mixin, or two of them would write the same ALERTS series.
  const windows = (r: Rule, long: string, short: string): Rule => ({ ...r, labels: { ...r.labels, long, short } });
  const op = o.operatorSelector;
  return [
    {
      name: 'mailfleet-relay.rules',
      rules: OTP_WINDOWS.map((w) => ({
        record: otpSlowRatio(w),
        expr:
          `1 - (sum by (cluster, namespace, pool) (rate(mailfleet_delivery_class_latency_seconds_bucket{${RELAY},class="otp",le="${T.otpSloSeconds}"}[${w}]))` +
          ` / sum by (cluster, namespace, pool) (rate(mailfleet_delivery_class_latency_seconds_count{${RELAY},class="otp"}[${w}])))`,
      })),
    },
    {
      name: 'mailfleet-relay',
      rules: [
        alert('MailfleetRelayDown', 'critical', `up{${RELAY}} == 0`, '5m',
          `Relay ${L('namespace')}/${L('pod')} cannot be scraped`,
          `Prometheus has not scraped relay ${L('pod')} (pool ${L('pool')}) for 5 minutes: its IP sends nothing and its queued mail waits.`),
        alert('MailfleetRelayNotReady', 'warning', `mailfleet_relay_ready{${RELAY}} == 0`, '10m',
          `Relay ${L('namespace')}/${L('pod')} is not ready`,
          `Relay ${L('pod')} (pool ${L('pool')}) has answered /readyz with 503 for 10 minutes: it takes no new mail.`),
        alert('MailfleetRelayConfigRefused', 'warning',
          `increase(mailfleet_relay_config_reload_failures_total{${RELAY}}[15m]) > 0`, '1m',
          `Relay ${L('namespace')}/${L('pod')} refused a new config`,
          `Relay ${L('pod')} (pool ${L('pool')}) refused a new config version in the last 15 minutes and keeps running the previous one: the operator's latest decisions (warm-up caps, pauses, quarantines) are not applied there.`),
        alert('MailfleetOtpQueueAgeHigh', 'critical',
          `max by (${POD}) (mailfleet_queue_oldest_age_seconds{${RELAY},class="otp"}) > ${T.otpOldestSeconds}`, '2m',
          `OTP mail waits in relay ${L('namespace')}/${L('pod')}`,
          `The oldest one-time-password message in relay ${L('pod')} (pool ${L('pool')}) has waited {{ $value | humanizeDuration }}; OTP codes expire within minutes.`),
        alert('MailfleetQueueAgeHigh', 'warning',
          `max by (${POD}, class) (mailfleet_queue_oldest_age_seconds{${RELAY},class="transactional"}) > ${T.transactionalOldestSeconds}` +
            ` or max by (${POD}, class) (mailfleet_queue_oldest_age_seconds{${RELAY},class="bulk"}) > ${T.bulkOldestSeconds}`, '15m',
          `Old ${L('class')} mail in relay ${L('namespace')}/${L('pod')}`,
          `The oldest ${L('class')} recipient in relay ${L('pod')} (pool ${L('pool')}) has waited {{ $value | humanizeDuration }} (line: ${T.transactionalOldestSeconds / 60} min transactional, ${T.bulkOldestSeconds / 3600} h bulk).`),
        windows(alert('MailfleetOtpLatencyBudgetBurn', 'critical', burn('1h', '5m', 14.4), '2m',
          `OTP deliveries in pool ${L('namespace')}/${L('pool')} burn the latency error budget fast`,
          `More than ${(14.4 * (1 - T.otpSloTarget) * 100).toFixed(1)} % of OTP messages in pool ${L('pool')} took over ${T.otpSloSeconds} s to deliver in the last hour and 5 minutes (SLO: ${T.otpSloTarget * 100} % within ${T.otpSloSeconds} s): the 30-day budget is gone in 2 days at this rate.`), '1h', '5m'),
        windows(alert('MailfleetOtpLatencyBudgetBurn', 'critical', burn('6h', '30m', 6), '15m',
          `OTP deliveries in pool ${L('namespace')}/${L('pool')} burn the latency error budget fast`,
          `More than ${(6 * (1 - T.otpSloTarget) * 100).toFixed(1)} % of OTP messages in pool ${L('pool')} took over ${T.otpSloSeconds} s to deliver in the last 6 hours and 30 minutes (SLO: ${T.otpSloTarget * 100} % within ${T.otpSloSeconds} s): the 30-day budget is gone in 5 days at this rate.`), '6h', '30m'),
        windows(alert('MailfleetOtpLatencyBudgetBurn', 'warning', burn('1d', '2h', 3), '1h',
          `OTP deliveries in pool ${L('namespace')}/${L('pool')} burn the latency error budget`,
          `More than ${(3 * (1 - T.otpSloTarget) * 100).toFixed(1)} % of OTP messages in pool ${L('pool')} took over ${T.otpSloSeconds} s to deliver in the last day and 2 hours (SLO: ${T.otpSloTarget * 100} % within ${T.otpSloSeconds} s).`), '1d', '2h'),
        alert('MailfleetDomainBounceRateReview', 'warning', `${bounceRatio()} > ${T.bounceReview}`, '10m',
          `Bounce rate of ${L('sending_domain')} is over the review line`,
          `${V} of the last hour's final outcomes for ${L('sending_domain')} bounced (review line ${T.bounceReview * 100} %, pause line ${T.bouncePause * 100} %).`),
        alert('MailfleetDomainBounceRatePause', 'critical', `${bounceRatio()} > ${T.bouncePause}`, '10m',
          `Bounce rate of ${L('sending_domain')} is over the pause line`,
          `${V} of the last hour's final outcomes for ${L('sending_domain')} bounced (pause line ${T.bouncePause * 100} %): mailbox providers and ESPs stop senders at this rate.`),
        alert('MailfleetDomainComplaintRateReview', 'warning', `${complaintRatio()} > ${T.complaintReview}`, '1h',
          `Complaint rate of ${L('sending_domain')} is over ${T.complaintReview * 100} %`,
          `${V} of the last day's delivered mail for ${L('sending_domain')} was reported as spam (Gmail and Yahoo ask senders to stay under ${T.complaintReview * 100} %).`),
        alert('MailfleetDomainComplaintRatePause', 'critical', `${complaintRatio()} > ${T.complaintPause}`, '1h',
          `Complaint rate of ${L('sending_domain')} is over ${T.complaintPause * 100} %`,
          `${V} of the last day's delivered mail for ${L('sending_domain')} was reported as spam: over ${T.complaintPause * 100} % Gmail and Yahoo reject or junk the sender's mail.`),
        alert('MailfleetIpQuarantined', 'warning',
          `max by (cluster, namespace, pool, source_ip) (mailfleet_ip_quarantined{${RELAY}}) == 1`, '5m',
          `IP ${L('source_ip')} is quarantined`,
          `The operator took source IP ${L('source_ip')} of pool ${L('namespace')}/${L('pool')} out of sending; its mail goes through the pool's other IPs.`),
        alert('MailfleetWarmupHeld', 'warning',
          `(time() - max by (cluster, namespace, pool, source_ip) (mailfleet_warmup_stage_changed_timestamp_seconds{${RELAY}})) > 86400` +
            ` unless on (cluster, namespace, pool, source_ip) max by (cluster, namespace, pool, source_ip) (mailfleet_warmup_complete{${RELAY}}) == 1`, '1h',
          `Warm-up of ${L('source_ip')} has not advanced for a day`,
          `Source IP ${L('source_ip')} of pool ${L('namespace')}/${L('pool')} has stayed on the same warm-up stage for {{ $value | humanizeDuration }}.`),
        alert('MailfleetProviderDeferralSpike', 'warning',
          `(sum by (cluster, namespace, pool, provider) (rate(mailfleet_delivery_attempts_total{${RELAY},result="deferred"}[15m]))` +
            ` / sum by (cluster, namespace, pool, provider) (rate(mailfleet_delivery_attempts_total{${RELAY}}[15m])) > ${T.deferralRatio})` +
            ` and on (cluster, namespace, pool, provider) sum by (cluster, namespace, pool, provider) (increase(mailfleet_delivery_attempts_total{${RELAY}}[15m])) >= ${T.deferralMinAttempts15m}`, '10m',
          `${L('provider')} defers mail from pool ${L('namespace')}/${L('pool')}`,
          `${V} of the attempts from pool ${L('pool')} toward ${L('provider')} in the last 15 minutes were deferred (line ${T.deferralRatio * 100} %).`),
        alert('MailfleetQueueVolumeAlmostFull', 'warning',
          `mailfleet_queue_volume_free_bytes{${RELAY}} / mailfleet_queue_volume_size_bytes{${RELAY}} < ${T.volumeFreeWarning}`, '15m',
          `Queue volume of relay ${L('namespace')}/${L('pod')} is filling up`,
          `Only ${V} of the queue volume of relay ${L('pod')} is free; when it is full the relay answers 452 to new mail.`),
        alert('MailfleetQueueVolumeAlmostFull', 'critical',
          `mailfleet_queue_volume_free_bytes{${RELAY}} / mailfleet_queue_volume_size_bytes{${RELAY}} < ${T.volumeFreeCritical}`, '5m',
          `Queue volume of relay ${L('namespace')}/${L('pod')} is almost full`,
          `Only ${V} of the queue volume of relay ${L('pod')} is free; when it is full the relay answers 452 to new mail.`),
        alert('MailfleetWebhookDeadLetters', 'warning',
          `sum by (cluster, namespace, pool) (increase(mailfleet_webhook_dead_letters_total{${RELAY}}[15m])) > 0`, '1m',
          `Event webhooks of pool ${L('namespace')}/${L('pool')} are being given up`,
          `{{ $value | humanize }} events of pool ${L('pool')} were dead-lettered in 15 minutes after every retry failed: the receiving application misses them.`),
        alert('MailfleetSuppressionStoreUnreachable', 'warning',
          `max by (${POD}) (mailfleet_suppression_store_up{${RELAY}}) == 0`, '5m',
          `Relay ${L('namespace')}/${L('pod')} cannot reach the suppression store`,
          `Relay ${L('pod')} has not reached the shared suppression store for 5 minutes; it checks its local copy, so addresses suppressed elsewhere since then may still be mailed.`),
      ],
    },
    {
      name: 'mailfleet-operator',
      rules: [
        alert('MailfleetOperatorDown', 'critical', `absent(up{${op}} == 1)`, '10m',
          'No mailfleet operator replica is up',
          'No replica of the mailfleet operator has been scraped successfully for 10 minutes: SendingPools and MailDomains are not reconciled (relays keep sending, but warm-up stages, quotas and DKIM rotation stop advancing).'),
        alert('MailfleetOperatorNoLeader', 'critical', `sum(mailfleet_operator_leader{${op}}) < 1`, '5m',
          'No mailfleet operator replica holds the leader Lease',
          'Operator replicas are up but none has led for 5 minutes: nothing is reconciled.'),
        alert('MailfleetOperatorReconcileErrors', 'warning', `sum by (kind) (rate(mailfleet_operator_reconcile_errors_total{${op}}[15m])) > 0`, '30m',
          `mailfleet ${L('kind')} reconciles keep failing`,
          `${L('kind')} reconciles have failed and been retried for 30 minutes; \`kubectl get events -A --field-selector source=mailfleet-operator\` and the operator's logs name the object and the error.`),
        // The operator's reputation loop (docs/reputation.md, operator/reputation/metrics.ts).
        alert('MailfleetDnsblUnavailable', 'warning', `max by (list) (mailfleet_operator_dnsbl_unknown_checks{${op}}) >= 3`, '30m',
          `DNSBL ${L('list')} gives no usable answer`,
          `Lookups on ${L('list')} have timed out, failed or returned an error code (127.255.255.254: the resolver is refused) for 3 checks in a row and 30 minutes: listings on it go unnoticed; nothing is quarantined on unknown answers.`),
        // Listed is 1; 0 is clean and -1 unknown (a refused resolver is not a listing: MailfleetDnsblUnavailable).
        alert('MailfleetIpListed', 'warning', `max by (cluster, pool, ip, list) (mailfleet_operator_dnsbl_listed{${op}}) == 1`, '10m',
          `IP ${L('ip')} is listed on ${L('list')}`,
          `Source IP ${L('ip')} of pool ${L('pool')} has been listed on DNSBL ${L('list')} for 10 minutes: receivers that use the list refuse its mail. A list with action quarantine takes the IP out of sending (MailfleetIpQuarantined); status.ips[].listed and status.ips[].quarantine name the list.`),
        alert('MailfleetIpPtrMismatch', 'warning', `min by (pool, ip) (mailfleet_operator_ip_ptr_ok{${op}}) == 0`, '1h',
          `IP ${L('ip')} has no forward-confirmed reverse DNS`,
          `The PTR of ${L('ip')} (pool ${L('pool')}) is not its EHLO name, or that name does not resolve to it: Gmail and Outlook refuse bulk mail from such IPs. status.ips[].ptr names the records found.`),
      ],
    },
  ];
}

/** Every alert name, once (a name with two severities is one runbook). */
export function alertNames(groups: RuleGroup[]): string[] {
  return [...new Set(groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))))];
}

export const CHART_PLACEHOLDERS = { operatorSelector: '%OPERATOR_SELECTOR%', runbookBaseUrl: '%RUNBOOK_BASE_URL%' } as const;
