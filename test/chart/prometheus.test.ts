// The chart's PrometheusRule: promtool accepts it, every metric it names is one the operator
// exports (operator/metrics.ts), and its alerts fire on the series they are about.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { helmTools, one, renderChart, run } from './helm.ts';

let helm = '';
let skipped = '';
let promtool = '';

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
  try {
    promtool = execFileSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).trim();
  } catch {
    promtool = '';
  }
});

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  annotations: Record<string, string>;
}
type Groups = { groups: { name: string; rules: Rule[] }[] };

async function renderedRules(): Promise<Groups> {
  const objs = await renderChart(helm, ['--set', 'prometheusRule.enabled=true']);
  return (one(objs, 'PrometheusRule') as unknown as { spec: Groups }).spec;
}

describe('charts/mailfleet: PrometheusRule', () => {
  test('every metric the alerts use is exported by the operator', async (t) => {
    if (skipped) return t.skip(skipped);
    const spec = await renderedRules();
    const exported = new Set((await createOperatorMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    const used = new Set(spec.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/\bmailfleet_[a-z_]+/g) ?? [])));
    assert.ok(used.size > 0);
    for (const m of used) assert.ok(exported.has(m), `alert uses ${m}, which operator/metrics.ts does not export`);
  });

  test('promtool check rules and promtool test rules pass', async (t) => {
    if (skipped) return t.skip(skipped);
    if (!promtool) return t.skip('promtool not installed (apt-get install prometheus)');
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'mailfleet-rules-'));
    try {
      const spec = await renderedRules();
      await writeFile(path.join(tmp, 'rules.yaml'), stringify(spec));
      // promtool compares annotations too; these two have no templating.
      const annotations = (alert: string) => spec.groups[0]!.rules.find((r) => r.alert === alert)!.annotations;
      const check = await run(promtool, ['check', 'rules', path.join(tmp, 'rules.yaml')]);
      assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);

      const sel = 'job="mailfleet",namespace="mailfleet-system"';
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            // Two replicas up, neither leading, and SendingPool reconciles failing all along.
            interval: '1m',
            input_series: [
              { series: `up{${sel},pod="a"}`, values: '1x60' },
              { series: `up{${sel},pod="b"}`, values: '1x60' },
              { series: `mailfleet_operator_leader{${sel},pod="a"}`, values: '0x60' },
              { series: `mailfleet_operator_leader{${sel},pod="b"}`, values: '0x60' },
              { series: `mailfleet_operator_reconcile_errors_total{${sel},pod="a",kind="SendingPool"}`, values: '0+3x60' },
            ],
            alert_rule_test: [
              { eval_time: '4m', alertname: 'MailfleetOperatorNoLeader', exp_alerts: [] },
              { eval_time: '6m', alertname: 'MailfleetOperatorNoLeader', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: annotations('MailfleetOperatorNoLeader') }] },
              { eval_time: '50m', alertname: 'MailfleetOperatorDown', exp_alerts: [] },
              {
                eval_time: '50m',
                alertname: 'MailfleetOperatorReconcileErrors',
                exp_alerts: [
                  {
                    exp_labels: { severity: 'warning', kind: 'SendingPool' },
                    exp_annotations: {
                      summary: 'mailfleet SendingPool reconciles keep failing',
                      description:
                        'SendingPool reconciles have failed and been retried for 30 minutes; `kubectl get events -A --field-selector source=mailfleet-operator` and the operator\'s logs name the object and the error.',
                    },
                  },
                ],
              },
            ],
          },
          {
            // No replica scraped at all.
            interval: '1m',
            input_series: [{ series: `up{${sel},pod="a"}`, values: '0x30' }],
            alert_rule_test: [
              { eval_time: '9m', alertname: 'MailfleetOperatorDown', exp_alerts: [] },
              { eval_time: '11m', alertname: 'MailfleetOperatorDown', exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: annotations('MailfleetOperatorDown') }] },
            ],
          },
        ],
      };
      await writeFile(path.join(tmp, 'tests.yaml'), stringify(tests));
      const r = await run(promtool, ['test', 'rules', path.join(tmp, 'tests.yaml')]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
