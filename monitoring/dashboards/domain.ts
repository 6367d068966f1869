// Sending domain: bounce and complaint rates against the pause lines, suppressions, events.
import { THRESHOLDS as T } from '../alerts.ts';
import { OPERATOR_JOB, RELAY_DOMAIN, UID, build, dashboard, panel, row } from './common.ts';

const pool = { uid: UID.pool, title: 'Pool / IP detail' };

export function sendingDomain() {
  return build(
    dashboard(UID.domain, 'mailfleet / Sending domain', 'Per MailDomain: bounce and complaint rates against the review and pause lines, bounces by category, suppressions and event webhooks.', ['domain'])
      .withRow(row('Reputation'))
      .withPanel(panel({
        title: 'Bounce rate (1 h)', unit: 'percentunit', min: 0, runbook: 'MailfleetDomainBounceRatePause', drill: pool,
        thresholds: [{ value: T.bounceReview, color: 'orange' }, { value: T.bouncePause, color: 'red' }],
        description: `Bounced (synchronous and asynchronous) over final outcomes in the last hour, per sending domain. Lines: review ${T.bounceReview * 100} %, pause ${T.bouncePause * 100} %; the alerts also need ${T.bounceMinOutcomes1h} outcomes.`,
        targets: [{
          // A domain without bounces reads 0 (its bounced series does not exist yet), not "no data".
          expr: `(sum by (sending_domain) (increase(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN},result="bounced"}[1h]))` +
            ` or 0 * sum by (sending_domain) (increase(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN},result=~"delivered|bounced|expired"}[1h])))` +
            ` / sum by (sending_domain) (increase(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN},result=~"delivered|bounced|expired"}[1h]))`,
          legend: '{{sending_domain}}',
        }],
      }))
      .withPanel(panel({
        title: 'Complaint rate (1 d)', unit: 'percentunit', min: 0, runbook: 'MailfleetDomainComplaintRatePause',
        thresholds: [{ value: T.complaintReview, color: 'orange' }, { value: T.complaintPause, color: 'red' }],
        description: `Complaints over delivered mail in the last day. Lines: ${T.complaintReview * 100} % and ${T.complaintPause * 100} %.`,
        targets: [{
          expr: `sum by (sending_domain) (increase(mailfleet_feedback_complaints_total{${RELAY_DOMAIN}}[1d])) / sum by (sending_domain) (increase(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN},result="delivered"}[1d]))`,
          legend: '{{sending_domain}}',
        }],
      }))
      .withPanel(panel({
        title: 'Outcomes', unit: 'suffix: rcpt/s', drill: pool,
        description: 'Delivery outcomes per second by sending domain and result.',
        targets: [{ expr: `sum by (sending_domain, result) (rate(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN}}[$__rate_interval]))`, legend: '{{sending_domain}} {{result}}' }],
      }))
      .withPanel(panel({
        title: 'Bounces by category', unit: 'suffix: rcpt/s', stack: true,
        description: 'Synchronous bounces per second by category, and asynchronous bounces (DSNs to the return path).',
        targets: [
          { expr: `sum by (category) (rate(mailfleet_delivery_domain_attempts_total{${RELAY_DOMAIN},result=~"bounced|expired"}[$__rate_interval]))`, legend: '{{category}}' },
          { expr: `sum by (category) (rate(mailfleet_feedback_bounces_total{${RELAY_DOMAIN}}[$__rate_interval]))`, legend: 'async {{category}}' },
        ],
      }))
      .withRow(row('Suppressions and events'))
      .withPanel(panel({
        title: 'Suppressed addresses', unit: 'short', min: 0,
        description: 'Addresses suppressed per sending domain and reason.',
        targets: [{ expr: `sum by (sending_domain, reason) (mailfleet_suppressions{${RELAY_DOMAIN}})`, legend: '{{sending_domain}} {{reason}}' }],
      }))
      .withPanel(panel({
        title: 'Domain paused', unit: 'none', min: 0, max: 1, thresholds: [{ value: 1, color: 'red' }], runbook: 'MailfleetDomainBounceRatePause',
        description: '1 while the operator\'s guardrail holds the sending domain Paused (MailDomain condition Paused; docs/control-loop.md).',
        targets: [{ expr: `max by (domain) (mailfleet_operator_domain_state{${OPERATOR_JOB},domain=~"$domain",state="Paused"})`, legend: '{{domain}}' }],
      }))
      .withPanel(panel({
        title: 'Event webhooks', unit: 'suffix: req/s', runbook: 'MailfleetWebhookDeadLetters',
        description: 'Webhook posts by result (ok, retry, dead) for the pools of the selected namespaces.',
        targets: [{ expr: `sum by (result) (rate(mailfleet_webhook_deliveries_total{job="mailfleet-relay",cluster=~"$cluster",namespace=~"$namespace"}[$__rate_interval]))`, legend: '{{result}}' }],
      })),
  );
}
