// The chart's monitoring objects for an SRE with kube-prometheus-stack: a PodMonitor that selects
// the pods the operator renders (with pool and ip labels), the relays' NetworkPolicy admitting the
// Prometheus named in values and nobody else, and the dashboards as sidecar ConfigMaps.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { pool } from '../../operator/render/fixtures.test-helper.ts';
import { renderNetworkPolicy } from '../../operator/render/pool.ts';
import { relayLabels } from '../../operator/render/names.ts';
import { parseScrapePeers } from '../../operator/render/scrape-peers.ts';
import { byKind, chartDir, helmTools, one, renderChart, type K8sObject } from './helm.ts';

let helm = '';
let skipped = '';
before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
});

type PodMonitor = K8sObject & {
  spec: {
    jobLabel: string;
    namespaceSelector: Record<string, unknown>;
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: { port: string; path: string; relabelings: { sourceLabels?: string[]; targetLabel: string }[] }[];
  };
};
const operatorArg = (objs: K8sObject[], flag: string) =>
  (one(objs, 'Deployment') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template.spec.containers[0]!.args
    .find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe('charts/mailfleet: monitoring', () => {
  test('the PodMonitor selects the relay pods the operator renders, names the job and adds pool and ip', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm, ['--set', 'relayMetrics.podMonitor.enabled=true', '--set', 'relayMetrics.podMonitor.labels.release=kps']);
    const pm = one(objs, 'PodMonitor') as PodMonitor;
    assert.equal(pm.metadata.labels?.release, 'kps', 'kube-prometheus-stack selects release: <name>');
    assert.deepEqual(pm.spec.namespaceSelector, { any: true });
    const podLabels = relayLabels(pool(), '192.0.2.10');
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) assert.equal(podLabels[k], v, `relay pods carry ${k}=${v}`);
    assert.equal(podLabels[pm.spec.jobLabel], 'mailfleet-relay', 'job="mailfleet-relay", as monitoring/alerts.ts selects');
    const ep = pm.spec.podMetricsEndpoints[0]!;
    assert.equal(`${ep.port}${ep.path}`, 'http/metrics');
    // Prometheus' pod label meta names: non-alphanumerics become underscores.
    const meta = (l: string) => `__meta_kubernetes_pod_label_${l.replace(/[^a-zA-Z0-9_]/g, '_')}`;
    assert.deepEqual(ep.relabelings.map((r) => [r.sourceLabels?.[0], r.targetLabel]), [[meta('mailfleet.io/pool'), 'pool'], [meta('mailfleet.io/ip'), 'ip']]);
    assert.ok(podLabels['mailfleet.io/pool'] && podLabels['mailfleet.io/ip']);

    const namespaced = one(await renderChart(helm, ['--set', 'relayMetrics.podMonitor.enabled=true', '--set', 'watchNamespace=team-a']), 'PodMonitor') as PodMonitor;
    assert.deepEqual(namespaced.spec.namespaceSelector, { matchNames: ['team-a'] });
  });

  test('the relays\' NetworkPolicy admits the operator and relayMetrics.allowFrom to the metrics port, nobody else', async (t) => {
    if (skipped) return t.skip(skipped);
    const values = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } }, podSelector: { matchLabels: { app: 'vmagent' } } }];
    for (const [set, expected] of [
      [[], [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }]],
      [['--set-json', `relayMetrics.allowFrom=${JSON.stringify(values)}`], values],
      [['--set-json', 'relayMetrics.allowFrom=[]'], undefined],
    ] as const) {
      const objs = await renderChart(helm, [...set]);
      const arg = operatorArg(objs, '--relay-metrics-from');
      assert.deepEqual(arg === undefined ? undefined : parseScrapePeers(arg), expected);
      const np = renderNetworkPolicy(pool(), { operatorNamespace: 'mailfleet-system', ...(arg ? { metricsScrapers: parseScrapePeers(arg) } : {}) });
      const from = (np.spec as { ingress: { from?: unknown[]; ports: { port: number }[] }[] }).ingress.filter((r) => r.ports.some((p) => p.port === 8080)).flatMap((r) => r.from);
      assert.deepEqual(from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'mailfleet-system' } } }, ...(expected ?? [])]);
    }
    const bad = await renderChart(helm, ['--set-json', 'relayMetrics.allowFrom=[{"ports":[80]}]']).catch((e: Error) => e);
    assert.ok(bad instanceof Error && /allowFrom/.test(bad.message), 'the schema refuses a peer with unknown fields');
  });

  test('dashboards: one ConfigMap per dashboard for the Grafana sidecar, runbook links following runbookBaseUrl', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm, ['--set', 'dashboards.enabled=true', '--set', 'dashboards.annotations.grafana_folder=mail', '--set', 'prometheusRule.runbookBaseUrl=https://wiki.example.com/runbooks']);
    const cms = byKind(objs, 'ConfigMap') as (K8sObject & { data: Record<string, string> })[];
    assert.deepEqual(cms.map((c) => Object.keys(c.data)[0]).sort(), ['mailfleet-domain.json', 'mailfleet-fleet.json', 'mailfleet-operator.json', 'mailfleet-pool.json', 'mailfleet-relay.json']);
    for (const cm of cms) {
      assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
      assert.equal(cm.metadata.annotations?.grafana_folder, 'mail');
      const [file, json] = Object.entries(cm.data)[0]!;
      const shipped = JSON.parse(readFileSync(path.join(chartDir, 'dashboards', file), 'utf8')) as unknown;
      assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(shipped).replaceAll('https://github.com/mailfleet/mailfleet/blob/main/docs/runbooks', 'https://wiki.example.com/runbooks')));
    }
    assert.ok(cms.some((c) => Object.values(c.data)[0]!.includes('https://wiki.example.com/runbooks/MailfleetRelayDown.md')));
    const relabelled = byKind(await renderChart(helm, ['--set', 'dashboards.enabled=true', '--set-json', 'dashboards.labels={"grafana_dashboard":"mailfleet"}']), 'ConfigMap');
    assert.ok(relabelled.every((c) => c.metadata.labels?.grafana_dashboard === 'mailfleet'));
  });
});
