// Every alert of monitoring/alerts.ts under `promtool test rules`: each fires on the series it is
// about (with the labels an SRE routes on) and stays quiet beside it on series that must not page.
// The annotation templates are checked by `promtool check rules` and, expanded, by the live
// Prometheus test (test/monitoring/live.test.ts); here they are dropped so that each case states
// only when an alert fires and for whom.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { alertNames, ruleGroups, type RuleGroup } from '../../monitoring/alerts.ts';

const repo = path.resolve(import.meta.dirname, '..', '..');
const OP = 'job="mailfleet",namespace="mailfleet-system"';
const groups = ruleGroups({ operatorSelector: OP, runbookBaseUrl: 'https://example.test/runbooks' });
const promtool = ['/usr/bin/promtool', path.join(os.homedir(), 'bin/promtool')].find((p) => existsSync(p));

type Labels = Record<string, string>;
const R: Labels = { job: 'mailfleet-relay', cluster: 'c1', namespace: 'mail', pool: 'tx', pod: 'tx-0', ip: '10-0-0-1' };
const sel = (l: Labels) => Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(',');
const s = (metric: string, labels: Labels, values: string) => ({ series: `${metric}{${sel(labels)}}`, values });
const pick = (l: Labels, ...keys: string[]) => Object.fromEntries(keys.map((k) => [k, l[k]!]));
const POD = ['cluster', 'namespace', 'pool', 'pod'];
const at = (eval_time: string, alertname: string, ...exp: Labels[]) => ({ eval_time, alertname, exp_alerts: exp.map((exp_labels) => ({ exp_labels })) });

interface Case {
  name: string;
  interval?: string;
  input_series: { series: string; values: string }[];
  alert_rule_test: ReturnType<typeof at>[];
}

const tx1 = { ...R, pod: 'tx-1', ip: '10-0-0-2' };
const pool = pick(R, 'cluster', 'namespace', 'pool');
const dom = (d: string, result: string, category: string) => ({ ...R, sending_domain: d, result, category });
const attempts = (provider: string, result: string, category: string) => ({ ...R, source_ip: '10.0.0.1', provider, result, category });

export const cases: Case[] = [
  {
    name: 'a relay that stops answering scrapes is down after 5 minutes; its neighbour is not',
    input_series: [s('up', R, '1x5 0x20'), s('up', tx1, '1x25')],
    alert_rule_test: [at('9m', 'MailfleetRelayDown'), at('12m', 'MailfleetRelayDown', { ...R, severity: 'critical' })],
  },
  {
    name: 'a relay not ready for 10 minutes',
    input_series: [s('mailfleet_relay_ready', R, '1x5 0x20'), s('mailfleet_relay_ready', tx1, '1x25')],
    alert_rule_test: [at('14m', 'MailfleetRelayNotReady'), at('17m', 'MailfleetRelayNotReady', { ...R, severity: 'warning' })],
  },
  {
    name: 'a refused config version warns; a relay applying its versions does not',
    input_series: [
      s('mailfleet_relay_config_reload_failures_total', R, '0x5 1x20'),
      s('mailfleet_relay_config_reload_failures_total', tx1, '0x25'),
      s('mailfleet_relay_config_reloads_total', tx1, '0x5 1x20'),
    ],
    alert_rule_test: [at('5m', 'MailfleetRelayConfigRefused'), at('8m', 'MailfleetRelayConfigRefused', { ...R, severity: 'warning' })],
  },
  {
    name: 'OTP waiting over 30 s pages; old bulk does not page as OTP',
    input_series: [
      s('mailfleet_queue_oldest_age_seconds', { ...R, class: 'otp' }, '0 5 10 40x10'),
      s('mailfleet_queue_oldest_age_seconds', { ...tx1, class: 'otp' }, '0 5 10 20x10'),
      s('mailfleet_queue_oldest_age_seconds', { ...tx1, class: 'bulk' }, '100x13'),
    ],
    alert_rule_test: [at('4m', 'MailfleetOtpQueueAgeHigh'), at('6m', 'MailfleetOtpQueueAgeHigh', { ...pick(R, ...POD), severity: 'critical' })],
  },
  {
    name: 'bulk over 6 h and transactional over 30 min warn; younger mail does not',
    input_series: [
      s('mailfleet_queue_oldest_age_seconds', { ...R, class: 'bulk' }, '30000x30'),
      s('mailfleet_queue_oldest_age_seconds', { ...R, class: 'transactional' }, '600x30'),
      s('mailfleet_queue_oldest_age_seconds', { ...tx1, class: 'transactional' }, '2000x30'),
      s('mailfleet_queue_oldest_age_seconds', { ...tx1, class: 'bulk' }, '20000x30'),
    ],
    alert_rule_test: [
      at('10m', 'MailfleetQueueAgeHigh'),
      at('20m', 'MailfleetQueueAgeHigh', { ...pick(R, ...POD), class: 'bulk', severity: 'warning' }, { ...pick(tx1, ...POD), class: 'transactional', severity: 'warning' }),
    ],
  },
  {
    name: 'half the OTP mail slower than 10 s burns the budget (fast, then slow windows); 0.5 % slow does not',
    input_series: [
      s('mailfleet_delivery_class_latency_seconds_bucket', { ...R, class: 'otp', le: '10' }, '0+5x200'),
      s('mailfleet_delivery_class_latency_seconds_count', { ...R, class: 'otp' }, '0+10x200'),
      s('mailfleet_delivery_class_latency_seconds_bucket', { ...R, pool: 'ok', class: 'otp', le: '10' }, '0+995x200'),
      s('mailfleet_delivery_class_latency_seconds_count', { ...R, pool: 'ok', class: 'otp' }, '0+1000x200'),
    ],
    alert_rule_test: [
      at('1m', 'MailfleetOtpLatencyBudgetBurn'),
      at('10m', 'MailfleetOtpLatencyBudgetBurn', { ...pool, severity: 'critical', long: '1h', short: '5m' }),
      at('20m', 'MailfleetOtpLatencyBudgetBurn', { ...pool, severity: 'critical', long: '1h', short: '5m' }, { ...pool, severity: 'critical', long: '6h', short: '30m' }),
      at('180m', 'MailfleetOtpLatencyBudgetBurn',
        { ...pool, severity: 'critical', long: '1h', short: '5m' },
        { ...pool, severity: 'critical', long: '6h', short: '30m' },
        { ...pool, severity: 'warning', long: '1d', short: '2h' }),
    ],
  },
  {
    name: 'bounce rate per sending domain: 15 % crosses both lines, 7 % (sync + async) the review line; low volume and "other" stay quiet',
    input_series: [
      s('mailfleet_delivery_domain_attempts_total', dom('brand.test', 'delivered', 'none'), '0+85x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('brand.test', 'bounced', 'bad_mailbox'), '0+15x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('async.test', 'delivered', 'none'), '0+98x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('async.test', 'bounced', 'bad_mailbox'), '0+2x40'),
      s('mailfleet_feedback_bounces_total', { ...R, sending_domain: 'async.test', category: 'bad_mailbox' }, '0+5x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('tiny.test', 'delivered', 'none'), '0+1x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('tiny.test', 'bounced', 'bad_mailbox'), '0+1x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('other', 'delivered', 'none'), '0+50x40'),
      s('mailfleet_delivery_domain_attempts_total', dom('other', 'bounced', 'bad_mailbox'), '0+50x40'),
    ],
    alert_rule_test: [
      at('8m', 'MailfleetDomainBounceRatePause'),
      at('25m', 'MailfleetDomainBounceRatePause', { cluster: 'c1', sending_domain: 'brand.test', severity: 'critical' }),
      at('25m', 'MailfleetDomainBounceRateReview', { cluster: 'c1', sending_domain: 'async.test', severity: 'warning' }, { cluster: 'c1', sending_domain: 'brand.test', severity: 'warning' }),
    ],
  },
  {
    name: 'complaints: 0.5 % of a day\'s delivered mail crosses both lines, 0.05 % neither',
    input_series: [
      s('mailfleet_feedback_complaints_total', { ...R, sending_domain: 'spam.test', provider: 'gmail' }, '0+1x120'),
      s('mailfleet_delivery_domain_attempts_total', dom('spam.test', 'delivered', 'none'), '0+200x120'),
      s('mailfleet_feedback_complaints_total', { ...R, sending_domain: 'clean.test', provider: 'gmail' }, '0+1x120'),
      s('mailfleet_delivery_domain_attempts_total', dom('clean.test', 'delivered', 'none'), '0+2000x120'),
    ],
    alert_rule_test: [
      at('50m', 'MailfleetDomainComplaintRatePause'),
      at('90m', 'MailfleetDomainComplaintRatePause', { cluster: 'c1', sending_domain: 'spam.test', severity: 'critical' }),
      at('90m', 'MailfleetDomainComplaintRateReview', { cluster: 'c1', sending_domain: 'spam.test', severity: 'warning' }),
    ],
  },
  {
    name: 'an IP listed for 10 minutes, and quarantined for 5; a clean list and an unknown answer (-1) stay quiet',
    input_series: [
      { series: `mailfleet_operator_dnsbl_listed{${OP},pool="mail/tx",ip="192.0.2.1",list="spamhaus-zen"}`, values: '0x5 1x20' },
      { series: `mailfleet_operator_dnsbl_listed{${OP},pool="mail/tx",ip="192.0.2.1",list="barracuda"}`, values: '0x25' },
      { series: `mailfleet_operator_dnsbl_listed{${OP},pool="mail/tx",ip="192.0.2.2",list="spamhaus-zen"}`, values: '-1x25' },
      s('mailfleet_ip_quarantined', { ...R, source_ip: '192.0.2.1' }, '0x5 1x20'),
      s('mailfleet_ip_quarantined', { ...tx1, source_ip: '192.0.2.2' }, '0x25'),
    ],
    alert_rule_test: [
      at('14m', 'MailfleetIpListed'),
      at('17m', 'MailfleetIpListed', { pool: 'mail/tx', ip: '192.0.2.1', list: 'spamhaus-zen', severity: 'warning' }),
      at('12m', 'MailfleetIpQuarantined', { ...pick(R, 'cluster', 'namespace', 'pool'), source_ip: '192.0.2.1', severity: 'warning' }),
    ],
  },
  {
    name: 'warm-up on the same stage for over a day; a finished warm-up and an advancing one stay quiet',
    interval: '4m',
    input_series: [
      s('mailfleet_warmup_stage_changed_timestamp_seconds', { ...R, source_ip: '192.0.2.1' }, '0x400'),
      s('mailfleet_warmup_stage_changed_timestamp_seconds', { ...R, source_ip: '192.0.2.2' }, '0x400'),
      s('mailfleet_warmup_complete', { ...R, source_ip: '192.0.2.2' }, '1x400'),
      s('mailfleet_warmup_stage_changed_timestamp_seconds', { ...R, source_ip: '192.0.2.3' }, '0+240x400'),
    ],
    alert_rule_test: [
      at('24h30m', 'MailfleetWarmupHeld'),
      at('26h', 'MailfleetWarmupHeld', { ...pick(R, 'cluster', 'namespace', 'pool'), source_ip: '192.0.2.1', severity: 'warning' }),
    ],
  },
  {
    name: 'one provider deferring 40 % of attempts spikes; 3 % at another does not',
    input_series: [
      s('mailfleet_delivery_attempts_total', attempts('gmail', 'deferred', 'rate_limited'), '0+20x40'),
      s('mailfleet_delivery_attempts_total', attempts('gmail', 'delivered', 'none'), '0+30x40'),
      s('mailfleet_delivery_attempts_total', attempts('yahoo', 'deferred', 'rate_limited'), '0+1x40'),
      s('mailfleet_delivery_attempts_total', attempts('yahoo', 'delivered', 'none'), '0+30x40'),
    ],
    alert_rule_test: [
      at('8m', 'MailfleetProviderDeferralSpike'),
      at('25m', 'MailfleetProviderDeferralSpike', { ...pick(R, 'cluster', 'namespace', 'pool'), provider: 'gmail', severity: 'warning' }),
    ],
  },
  {
    name: 'queue volume: 15 % free warns, 5 % free is critical too, 50 % free is fine',
    input_series: [
      s('mailfleet_queue_volume_free_bytes', R, '15x30'),
      s('mailfleet_queue_volume_size_bytes', R, '100x30'),
      s('mailfleet_queue_volume_free_bytes', tx1, '5x30'),
      s('mailfleet_queue_volume_size_bytes', tx1, '100x30'),
      s('mailfleet_queue_volume_free_bytes', { ...R, pod: 'tx-2' }, '50x30'),
      s('mailfleet_queue_volume_size_bytes', { ...R, pod: 'tx-2' }, '100x30'),
    ],
    alert_rule_test: [
      at('20m', 'MailfleetQueueVolumeAlmostFull', { ...R, severity: 'warning' }, { ...tx1, severity: 'warning' }, { ...tx1, severity: 'critical' }),
    ],
  },
  {
    name: 'dead-lettered webhook events; none in another pool',
    input_series: [s('mailfleet_webhook_dead_letters_total', R, '0x10 1+1x10'), s('mailfleet_webhook_dead_letters_total', { ...R, pool: 'q' }, '0x20')],
    alert_rule_test: [at('9m', 'MailfleetWebhookDeadLetters'), at('13m', 'MailfleetWebhookDeadLetters', { ...pick(R, 'cluster', 'namespace', 'pool'), severity: 'warning' })],
  },
  {
    name: 'suppression store unreachable for 5 minutes',
    input_series: [s('mailfleet_suppression_store_up', R, '1x5 0x20'), s('mailfleet_suppression_store_up', tx1, '1x25')],
    alert_rule_test: [at('9m', 'MailfleetSuppressionStoreUnreachable'), at('12m', 'MailfleetSuppressionStoreUnreachable', { ...pick(R, ...POD), severity: 'warning' })],
  },
  {
    name: 'operator: two replicas up, neither leading, SendingPool reconciles failing',
    input_series: [
      { series: `up{${OP},pod="a"}`, values: '1x60' },
      { series: `up{${OP},pod="b"}`, values: '1x60' },
      { series: `mailfleet_operator_leader{${OP},pod="a"}`, values: '0x60' },
      { series: `mailfleet_operator_leader{${OP},pod="b"}`, values: '0x60' },
      { series: `mailfleet_operator_reconcile_errors_total{${OP},pod="a",kind="SendingPool"}`, values: '0+3x60' },
    ],
    alert_rule_test: [
      at('4m', 'MailfleetOperatorNoLeader'),
      at('6m', 'MailfleetOperatorNoLeader', { severity: 'critical' }),
      at('50m', 'MailfleetOperatorDown'),
      at('50m', 'MailfleetOperatorReconcileErrors', { severity: 'warning', kind: 'SendingPool' }),
    ],
  },
  {
    name: 'operator: a DNSBL refuses the resolver; an IP without FCrDNS',
    input_series: [
      { series: `mailfleet_operator_dnsbl_unknown_checks{${OP},pool="mail/bulk",ip="192.0.2.10",list="spamhaus-zen"}`, values: '0 1 2 3+1x60' },
      { series: `mailfleet_operator_dnsbl_unknown_checks{${OP},pool="mail/bulk",ip="192.0.2.10",list="barracuda"}`, values: '0x60' },
      { series: `mailfleet_operator_ip_ptr_ok{${OP},pool="mail/bulk",ip="192.0.2.11"}`, values: '0x90' },
      { series: `mailfleet_operator_ip_ptr_ok{${OP},pool="mail/bulk",ip="192.0.2.10"}`, values: '1x90' },
    ],
    alert_rule_test: [
      at('20m', 'MailfleetDnsblUnavailable'),
      at('40m', 'MailfleetDnsblUnavailable', { severity: 'warning', list: 'spamhaus-zen' }),
      at('50m', 'MailfleetIpPtrMismatch'),
      at('70m', 'MailfleetIpPtrMismatch', { severity: 'warning', pool: 'mail/bulk', ip: '192.0.2.11' }),
    ],
  },
  {
    name: 'operator: no replica scraped',
    input_series: [{ series: `up{${OP},pod="a"}`, values: '0x30' }],
    alert_rule_test: [at('9m', 'MailfleetOperatorDown'), at('11m', 'MailfleetOperatorDown', { severity: 'critical' })],
  },
];

function withoutAnnotations(g: RuleGroup[]): RuleGroup[] {
  return g.map((x) => ({ ...x, rules: x.rules.map(({ annotations: _a, ...r }) => r) }));
}

test('every alert has severity, summary, description, runbook_url and for; every runbook exists', () => {
  for (const r of groups.flatMap((g) => g.rules).filter((r) => r.alert)) {
    assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, r.alert);
    assert.ok(r.for, `${r.alert} has a for duration`);
    for (const k of ['summary', 'description', 'runbook_url']) assert.ok(r.annotations?.[k], `${r.alert} has ${k}`);
    assert.equal(r.annotations!.runbook_url, `https://example.test/runbooks/${r.alert}.md`);
    const runbook = path.join(repo, 'docs', 'runbooks', `${r.alert}.md`);
    assert.ok(existsSync(runbook), `docs/runbooks/${r.alert}.md exists`);
    const text = readFileSync(runbook, 'utf8');
    for (const h of ['## Meaning', '## Check', '## Act', '## Escalate']) assert.ok(text.includes(h), `docs/runbooks/${r.alert}.md has a "${h}" section`);
  }
});

test('promtool check rules passes and promtool test rules proves every alert fires and stays quiet', (t) => {
  if (!promtool) return t.skip('promtool not installed (apt-get install prometheus)');
  const tested = new Set(cases.flatMap((c) => c.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  assert.deepEqual(alertNames(groups).filter((a) => !tested.has(a)), [], 'every alert has a case where it fires');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailfleet-alerts-'));
  try {
    writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
    const check = spawnSync(promtool, ['check', 'rules', path.join(dir, 'rules.yaml')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    writeFileSync(path.join(dir, 'test-rules.yaml'), stringify({ groups: withoutAnnotations(groups) }));
    writeFileSync(path.join(dir, 'tests.yaml'), stringify({
      rule_files: ['test-rules.yaml'],
      evaluation_interval: '1m',
      tests: cases.map(({ name: _n, interval, ...c }) => ({ interval: interval ?? '1m', ...c })),
    }));
    const r = spawnSync(promtool, ['test', 'rules', path.join(dir, 'tests.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
