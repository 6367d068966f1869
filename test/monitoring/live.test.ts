// Proof against a live Prometheus: relays (processes, file-based service discovery; the target
// list is injectable, so it can point at pods later) and the operator (against a local control
// plane, when one can be started) are scraped while a scenario runs — normal traffic, a bounce
// storm for one sending domain, a deferral spike at one provider, a backoff restriction. Then
// every panel query of every dashboard, its variables substituted, must return data (when the
// metrics it reads exist: planned ones are listed and skipped), every variable query must list
// values, and the scenario's alerts must be firing through the Prometheus API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { loadDashboards, metricsOf, panelQueries, parseLabelValues, plannedMetrics, queryVariables, substitute } from '../../monitoring/queries.ts';
import { PROMETHEUS_BIN } from '../support/prometheus.ts';
import { runScenario, startFleet, type Fleet, type ScenarioWindow } from './fleet.ts';

const skip = PROMETHEUS_BIN ? false : 'prometheus not installed (apt-get install prometheus)';
let fleet: Fleet;
let window: ScenarioWindow;

before(async () => {
  if (skip) return;
  fleet = await startFleet();
  window = await runScenario(fleet);
}, { timeout: 300_000 });

after(async () => {
  await fleet?.stop();
});

/** Grafana's values for the variables: every option ("All"), as a dashboard opens by default. */
function vars(w: ScenarioWindow): Record<string, string> {
  return { cluster: '.*', namespace: '.*', pool: '.*', ip: '.*', domain: '.*', __rate_interval: '10s', __range: `${Math.ceil(w.end - w.start) + 10}s` };
}

test('every panel query of every dashboard returns data from the live fleet', { skip }, async (t) => {
  const planned = plannedMetrics();
  const operatorUp = fleet.operator !== undefined && !('skipped' in fleet.operator);
  const empty: string[] = [];
  const skipped: string[] = [];
  let proven = 0;
  for (const q of panelQueries(loadDashboards())) {
    const name = `${q.dashboardTitle} › ${q.panel} (${q.refId})`;
    const missing = metricsOf(q.expr).filter((m) => planned.has(m));
    if (missing.length) {
      skipped.push(`${name}: planned ${missing.join(', ')}`);
      continue;
    }
    if (q.dashboard === 'mailfleet-operator' && !operatorUp) {
      skipped.push(`${name}: operator not run (${(fleet.operator as { skipped: string } | undefined)?.skipped ?? 'disabled'})`);
      continue;
    }
    const expr = substitute(q.expr, vars(window));
    const series = await fleet.prometheus.queryRange(expr, Math.floor(window.start), Math.ceil(window.end), 1);
    const hasValue = series.some((s) => s.values!.some(([, v]) => v !== 'NaN'));
    if (!hasValue) empty.push(`${name}: ${expr}`);
    else proven++;
  }
  t.diagnostic(`${proven} panel queries returned data; ${skipped.length} skipped:\n  ${skipped.join('\n  ')}`);
  assert.deepEqual(empty, [], 'panel queries over existing metrics that returned no data');
  assert.ok(proven >= 40, `${proven} panel queries proven`);
});

test('every dashboard variable query lists values', { skip }, async () => {
  const planned = plannedMetrics();
  for (const d of loadDashboards()) {
    for (const v of queryVariables(d)) {
      if (d.uid === 'mailfleet-operator' && (fleet.operator === undefined || 'skipped' in fleet.operator)) continue;
      const { match, label } = parseLabelValues(v.query);
      if (metricsOf(match).some((m) => planned.has(m))) continue;
      const values = await fleet.prometheus.labelValues(label, substitute(match, vars(window)));
      assert.ok(values.length > 0, `${d.title}: $${v.name} (${v.query}) lists no values`);
    }
  }
});

test('what every target exposes after the scenario passes promtool check metrics', { skip }, async (t) => {
  const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
  if (!promtool) return t.skip('promtool not installed');
  for (const target of fleet.targets) {
    const text = await (await fetch(`http://${target.address}/metrics`)).text();
    const r: { status: number | null; stdout: string; stderr: string } = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${target.labels.job} ${target.labels.pod}: ${r.stdout}${r.stderr}`);
  }
});

test('the scenario\'s alerts fire through the Prometheus API, with their annotations expanded', { skip }, async () => {
  const p = fleet.prometheus;
  const firing = (name: string, labels: Record<string, string>) =>
    p.until(`${name} ${JSON.stringify(labels)} firing`, async () => {
      const a = (await p.alerts()).find((x) => x.labels.alertname === name && x.state === 'firing' && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      return a;
    }, 90_000);
  const pause = await firing('MailfleetDomainBounceRatePause', { sending_domain: 'storm.test', severity: 'critical' });
  assert.match(pause.annotations.summary!, /^Bounce rate of storm\.test is over the pause line$/);
  assert.match(pause.annotations.description!, /^\d+(\.\d+)?% of the last hour's final outcomes for storm\.test bounced/);
  assert.equal(pause.annotations.runbook_url, 'https://example.test/runbooks/MailfleetDomainBounceRatePause.md');
  await firing('MailfleetDomainBounceRateReview', { sending_domain: 'storm.test' });
  const spike = await firing('MailfleetProviderDeferralSpike', { provider: 'yahoo', pool: 'bulk' });
  assert.match(spike.annotations.summary!, /^yahoo defers mail from pool mail\/bulk$/);
  // brand.test stays under the review line: no bounce alert for it.
  assert.ok(!(await p.alerts()).some((a) => a.labels.sending_domain === 'brand.test'), 'no bounce alert for brand.test');

  // A relay that stops: down after the (shortened) for.
  const bulk = fleet.relays[1]!;
  await bulk.stop();
  const down = await firing('MailfleetRelayDown', { pod: bulk.pod, pool: 'bulk' });
  assert.equal(down.annotations.summary, `Relay mail/${bulk.pod} cannot be scraped`);
});
