// Fleet overview: is mail flowing, is it healthy, where to look next.
import { THRESHOLDS as T, otpSlowRatio } from '../alerts.ts';
import { FINAL, OPERATOR_JOB, OPERATOR_POOLS, RELAY, UID, build, dashboard, panel, row } from './common.ts';

const pool = { uid: UID.pool, title: 'Pool / IP detail' };
const domain = { uid: UID.domain, title: 'Sending domain' };
const relay = { uid: UID.relay, title: 'Relay internals' };

export function fleetOverview() {
  return build(
    dashboard(UID.fleet, 'mailfleet / Fleet overview', 'Throughput, delivery, bounce and complaint rates, queue age, OTP latency, IP and pool health across the fleet.', [])
      .withRow(row('Traffic'))
      .withPanel(panel({
        title: 'Accepted and delivered', unit: 'suffix: msg/s', drill: pool,
        description: 'Messages accepted over SMTP, and recipients delivered, bounced, deferred or expired per second.',
        targets: [
          { expr: `sum(rate(mailfleet_smtp_messages_total{${RELAY},result="accepted"}[$__rate_interval]))`, legend: 'accepted (messages)' },
          { expr: `sum by (result) (rate(mailfleet_delivery_attempts_total{${RELAY}}[$__rate_interval]))`, legend: '{{result}} (recipients)' },
        ],
      }))
      .withPanel(panel({
        title: 'Delivery and bounce rates', unit: 'percentunit', min: 0, max: 1, drill: domain, runbook: 'MailfleetDomainBounceRatePause',
        thresholds: [{ value: T.bounceReview, color: 'orange' }, { value: T.bouncePause, color: 'red' }],
        description: `Share of final outcomes (delivered, bounced, expired) that were delivered, and that bounced. Lines: review ${T.bounceReview * 100} %, pause ${T.bouncePause * 100} % (per sending domain on the Sending domain dashboard).`,
        targets: [
          { expr: `sum(rate(mailfleet_delivery_attempts_total{${RELAY},result="delivered"}[$__rate_interval])) / sum(rate(mailfleet_delivery_attempts_total{${RELAY},${FINAL}}[$__rate_interval]))`, legend: 'delivered' },
          { expr: `sum(rate(mailfleet_delivery_attempts_total{${RELAY},result="bounced"}[$__rate_interval])) / sum(rate(mailfleet_delivery_attempts_total{${RELAY},${FINAL}}[$__rate_interval]))`, legend: 'bounced' },
        ],
      }))
      .withPanel(panel({
        title: 'Complaint rate (1 d)', unit: 'percentunit', min: 0, drill: domain, runbook: 'MailfleetDomainComplaintRatePause',
        thresholds: [{ value: T.complaintReview, color: 'orange' }, { value: T.complaintPause, color: 'red' }],
        description: `Complaints over the last day per delivered message. Lines: ${T.complaintReview * 100} % and ${T.complaintPause * 100} % (Gmail/Yahoo sender rules).`,
        targets: [{ expr: `sum(increase(mailfleet_feedback_complaints_total{${RELAY}}[1d])) / sum(increase(mailfleet_delivery_attempts_total{${RELAY},result="delivered"}[1d]))`, legend: 'complaints / delivered' }],
      }))
      .withPanel(panel({
        title: 'Oldest queued mail by class', unit: 's', min: 0, drill: relay, runbook: 'MailfleetQueueAgeHigh',
        thresholds: [{ value: T.otpOldestSeconds, color: 'red' }, { value: T.transactionalOldestSeconds, color: 'orange' }],
        description: `Age of the oldest recipient not yet delivered or bounced. Lines: ${T.otpOldestSeconds} s (OTP alert), ${T.transactionalOldestSeconds / 60} min (transactional alert); bulk alerts at ${T.bulkOldestSeconds / 3600} h.`,
        targets: [{ expr: `max by (class) (mailfleet_queue_oldest_age_seconds{${RELAY}})`, legend: '{{class}}' }],
      }))
      .withRow(row('Latency and health'))
      .withPanel(panel({
        title: 'OTP delivery latency p99', unit: 's', min: 0, runbook: 'MailfleetOtpLatencyBudgetBurn',
        thresholds: [{ value: T.otpSloSeconds, color: 'red' }],
        description: `99th percentile of acceptance → delivery for OTP mail, and transactional for comparison. Line: the SLO (${T.otpSloTarget * 100} % within ${T.otpSloSeconds} s).`,
        targets: [
          { expr: `histogram_quantile(0.99, sum by (le) (rate(mailfleet_delivery_class_latency_seconds_bucket{${RELAY},class="otp"}[$__rate_interval])))`, legend: 'otp p99' },
          { expr: `histogram_quantile(0.99, sum by (le) (rate(mailfleet_delivery_class_latency_seconds_bucket{${RELAY},class="transactional"}[$__rate_interval])))`, legend: 'transactional p99' },
        ],
      }))
      .withPanel(panel({
        title: 'OTP slower than the SLO (5 m)', unit: 'percentunit', min: 0, runbook: 'MailfleetOtpLatencyBudgetBurn',
        thresholds: [{ value: 14.4 * (1 - T.otpSloTarget), color: 'red' }],
        description: 'Share of OTP deliveries over the SLO latency, per pool (recorded by the chart\'s rules). Line: the fast-burn alert level.',
        targets: [{ expr: `${otpSlowRatio('5m')}{cluster=~"$cluster",namespace=~"$namespace"}`, legend: '{{namespace}}/{{pool}}' }],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Relays up / ready', unit: 'none', drill: relay, runbook: 'MailfleetRelayDown', width: 6,
        description: 'Relay pods scraped, and ready.',
        targets: [
          { expr: `sum(up{${RELAY}})`, legend: 'up' },
          { expr: `sum(mailfleet_relay_ready{${RELAY}})`, legend: 'ready' },
        ],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Pools not Ready', unit: 'none', runbook: 'MailfleetOperatorReconcileErrors', width: 6, thresholds: [{ value: 1, color: 'red' }],
        description: 'SendingPools whose Ready condition is not True, in every namespace (the operator counts them; $namespace lists the relays\' namespaces, not the operator\'s).',
        targets: [{ expr: `sum(mailfleet_operator_sendingpools{${OPERATOR_JOB},ready="false"})`, legend: 'not ready' }],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Listed IPs', unit: 'none', drill: pool, runbook: 'MailfleetIpListed', width: 6, thresholds: [{ value: 1, color: 'red' }],
        description: 'Source IPs listed on at least one DNS blocklist the operator checks (docs/reputation.md).',
        targets: [{ expr: `count(max by (pool, ip) (mailfleet_operator_dnsbl_listed{${OPERATOR_POOLS}}) == 1) or (0 * count(max by (pool, ip) (mailfleet_operator_dnsbl_listed{${OPERATOR_POOLS}})))`, legend: 'listed' }],
      }))
      .withPanel(panel({
        kind: 'stat', title: 'Warm-up: sent today / cap', unit: 'percentunit', drill: pool, runbook: 'MailfleetWarmupHeld', width: 6, min: 0, max: 1,
        description: 'Recipients sent today from IPs with a warm-up cap, over their summed daily caps.',
        targets: [{ expr: `sum(mailfleet_warmup_quota_used{${RELAY},window="day"}) / sum(mailfleet_warmup_quota_cap{${RELAY},window="day"})`, legend: 'used' }],
      })),
  );
}
