// Pool / IP detail: per IP, warm-up and sending; per provider, deferrals and restrictions.
import { THRESHOLDS as T } from '../alerts.ts';
import { OPERATOR_IP, OPERATOR_JOB, RELAY_IP, RELAY_POOL, UID, build, dashboard, panel, row } from './common.ts';

const domain = { uid: UID.domain, title: 'Sending domain' };
const relay = { uid: UID.relay, title: 'Relay internals' };

export function poolDetail() {
  return build(
    dashboard(UID.pool, 'mailfleet / Pool & IP detail', 'One pool\'s IPs: warm-up stage, cap and sent; outcomes, deferrals and restrictions per provider; blocklist state.', ['pool', 'ip'])
      .withRow(row('Warm-up'))
      .withPanel(panel({
        title: 'Warm-up: sent vs cap (today)', unit: 'short', min: 0, runbook: 'MailfleetWarmupHeld', drill: relay,
        description: 'Recipients sent from each IP in the current UTC day, and its warm-up cap for the day.',
        targets: [
          { expr: `max by (source_ip) (mailfleet_warmup_quota_used{${RELAY_IP},window="day"})`, legend: '{{source_ip}} sent' },
          { expr: `max by (source_ip) (mailfleet_warmup_quota_cap{${RELAY_IP},window="day"})`, legend: '{{source_ip}} cap' },
        ],
      }))
      .withPanel(panel({
        title: 'Warm-up stage', unit: 'none', min: 0, runbook: 'MailfleetWarmupHeld',
        description: 'Warm-up stage (index into the IP\'s plan) per IP, as the operator\'s control loop judges it from what the relays report (docs/control-loop.md).',
        // The operator's own namespace label is its target's; its pool label is the pool's name.
        targets: [{ expr: `max by (ip) (mailfleet_operator_warmup_stage{${OPERATOR_JOB},pool=~"$pool",ip=~"$ip"})`, legend: '{{ip}}' }],
      }))
      .withRow(row('Sending'))
      .withPanel(panel({
        title: 'Outcomes per IP', unit: 'suffix: rcpt/s', stack: true, drill: relay,
        description: 'Delivery outcomes per second by source IP and result.',
        targets: [{ expr: `sum by (source_ip, result) (rate(mailfleet_delivery_attempts_total{${RELAY_IP}}[$__rate_interval]))`, legend: '{{source_ip}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'Deferral share per provider', unit: 'percentunit', min: 0, max: 1, runbook: 'MailfleetProviderDeferralSpike',
        thresholds: [{ value: T.deferralRatio, color: 'orange' }],
        description: `Deferred attempts over all attempts, per mailbox provider. Line: the deferral-spike alert (${T.deferralRatio * 100} %).`,
        targets: [{ expr: `sum by (provider) (rate(mailfleet_delivery_attempts_total{${RELAY_IP},result="deferred"}[$__rate_interval])) / sum by (provider) (rate(mailfleet_delivery_attempts_total{${RELAY_IP}}[$__rate_interval]))`, legend: '{{provider}}' }],
      }))
      .withPanel(panel({
        title: 'Outcomes per provider', unit: 'suffix: rcpt/s', drill: domain,
        description: 'Delivery outcomes per second by provider and result.',
        targets: [{ expr: `sum by (provider, result) (rate(mailfleet_delivery_attempts_total{${RELAY_IP}}[$__rate_interval]))`, legend: '{{provider}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'Bounces by category', unit: 'suffix: rcpt/s', stack: true, drill: domain,
        description: 'Bounced and expired recipients per second by bounce category (docs/bounce-categories.md).',
        targets: [{ expr: `sum by (category) (rate(mailfleet_delivery_attempts_total{${RELAY_IP},result=~"bounced|expired"}[$__rate_interval]))`, legend: '{{category}}' }],
      }))
      .withRow(row('Restrictions and reputation'))
      .withPanel(panel({
        title: 'Adaptive backoff restrictions', unit: 'none', min: 0, runbook: 'MailfleetProviderDeferralSpike',
        description: 'IP → provider pairs suspended or throttled by adaptive backoff now, and restrictions started in the range.',
        targets: [
          { expr: `sum by (source_ip, provider, action) (mailfleet_shaping_restricted{${RELAY_IP}})`, legend: 'active {{source_ip}} → {{provider}} {{action}}' },
          { expr: `sum by (provider, action) (increase(mailfleet_shaping_restrictions_total{${RELAY_IP}}[$__range]))`, legend: 'started {{provider}} {{action}}' },
        ],
      }))
      .withPanel(panel({
        title: 'Held back by the scheduler', unit: 'suffix: rcpt/s', stack: true,
        description: 'Recipients sent back to the queue unattempted, by class and reason (suspended, quota, rate, no-ip).',
        targets: [{ expr: `sum by (class, reason) (rate(mailfleet_shaping_held_back_total{${RELAY_POOL}}[$__rate_interval]))`, legend: '{{class}} {{reason}}' }],
      }))
      .withPanel(panel({
        title: 'Blocklist state', unit: 'none', min: -1, max: 1, runbook: 'MailfleetIpListed', thresholds: [{ value: 1, color: 'red' }],
        description: 'Per IP and DNS blocklist, from the operator\'s checks: 1 listed, 0 clean, -1 unknown (no usable answer; never counted as listed).',
        targets: [{ expr: `max by (ip, list) (mailfleet_operator_dnsbl_listed{${OPERATOR_IP}})`, legend: '{{ip}} {{list}}' }],
      }))
      .withPanel(panel({
        title: 'Quarantined IPs', unit: 'none', min: 0, max: 1, runbook: 'MailfleetIpQuarantined', thresholds: [{ value: 1, color: 'red' }],
        description: '1 while the operator has taken an IP out of sending.',
        targets: [{ expr: `max by (source_ip) (mailfleet_ip_quarantined{${RELAY_IP}})`, legend: '{{source_ip}}' }],
      })),
  );
}
