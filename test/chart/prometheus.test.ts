// The chart's PrometheusRule is monitoring/alerts.ts with the release's operator selector and
// runbook base filled in (the alerts themselves are proven by test/monitoring/alerts.test.ts), and
// every metric it names is exported by the relay or the operator, or reserved as planned in
// docs/observability.md.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { ruleGroups, type RuleGroup } from '../../monitoring/alerts.ts';
import { plannedMetrics } from '../../monitoring/queries.ts';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { createFeedbackMetrics } from '../../relay/feedback/metrics.ts';
import { helmTools, one, renderChart } from './helm.ts';

let helm = '';
let skipped = '';

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
});

async function renderedRules(args: string[] = []): Promise<RuleGroup[]> {
  const objs = await renderChart(helm, ['--set', 'prometheusRule.enabled=true', ...args]);
  return (one(objs, 'PrometheusRule') as unknown as { spec: { groups: RuleGroup[] } }).spec.groups;
}

/** Metric names the relay and operator export today (histograms with their series suffixes). */
export async function exportedMetrics(): Promise<Set<string>> {
  const names = new Set<string>();
  const relay = createRelayMetrics({ defaultMetrics: false }).registry;
  // The relay's feedback metrics (suppressions, events, webhooks) live in their own module.
  createFeedbackMetrics(relay);
  for (const r of [relay, createOperatorMetrics({ defaultMetrics: false }).registry]) {
    for (const m of await r.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(m.name + s);
    }
  }
  return names;
}

describe('charts/mailfleet: PrometheusRule', () => {
  test('renders monitoring/alerts.ts with the release\'s operator selector and the runbook base', async (t) => {
    if (skipped) return t.skip(skipped);
    assert.deepEqual(await renderedRules(), ruleGroups({ operatorSelector: 'job="mailfleet",namespace="mailfleet-system"', runbookBaseUrl: 'https://github.com/mailfleet/mailfleet/blob/main/docs/runbooks' }));
    const custom = await renderedRules(['--set', 'prometheusRule.runbookBaseUrl=https://wiki.example.com/mail/'.replace(/,/g, '\\,')]);
    assert.equal(custom.flatMap((g) => g.rules).find((r) => r.alert === 'MailfleetRelayDown')?.annotations?.runbook_url, 'https://wiki.example.com/mail/MailfleetRelayDown.md');
  });

  test('every metric the rules use is exported today or reserved as planned in docs/observability.md', async (t) => {
    if (skipped) return t.skip(skipped);
    const exported = await exportedMetrics();
    const planned = plannedMetrics();
    const used = new Set((await renderedRules()).flatMap((g) => g.rules.flatMap((r) => r.expr.match(/\bmailfleet_[a-z_]+/g) ?? [])));
    assert.ok(used.size > 10);
    for (const m of used) assert.ok(exported.has(m) || planned.has(m), `a rule uses ${m}, which neither the relay (relay/metrics.ts, relay/feedback/metrics.ts) nor the operator exports and docs/observability.md does not plan`);
  });
});
