// Proof against a live Prometheus: relays (processes, file-based service discovery; the same
// proof against the relay and operator pods on the test node is live-fleet.test.ts) and the operator (against a local control
// plane, when one can be started) are scraped while a scenario runs — normal traffic, a bounce
// storm for one sending domain, a deferral spike at one provider, a backoff restriction. Then
// every panel query of every dashboard, its variables substituted, must return data (when the
// metrics it reads exist: planned ones are listed and skipped), every variable query must list
// values, and the scenario's alerts must be firing through the Prometheus API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { PROMETHEUS_BIN } from '../support/prometheus.ts';
import { runScenario, startFleet, type Fleet, type ScenarioWindow } from './fleet.ts';
import { PODS_ONLY, emptyVariables, walkPanels } from './panels.ts';

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

const operatorSkipped = (): string | undefined =>
  fleet.operator === undefined ? 'operator not run (disabled)' : 'skipped' in fleet.operator ? `operator not run (${fleet.operator.skipped})` : undefined;

test('every panel query of every dashboard returns data from the live fleet', { skip }, async (t) => {
  const decisions = (metrics: string[]) => (metrics.some((m) => PODS_ONLY.metrics.includes(m)) ? PODS_ONLY.why : undefined);
  const walk = await walkPanels(fleet.prometheus, window, (uid) => (uid === 'mailfleet-operator' ? operatorSkipped() : undefined), decisions);
  t.diagnostic(`${walk.proven.length} panel queries returned data; ${walk.skipped.length} skipped:\n  ${walk.skipped.join('\n  ')}`);
  assert.deepEqual(walk.empty, [], 'panel queries over existing metrics that returned no data');
  assert.ok(walk.proven.length >= 40, `${walk.proven.length} panel queries proven`);
});

test('every dashboard variable query lists values', { skip }, async () => {
  assert.deepEqual(await emptyVariables(fleet.prometheus, window, (uid) => uid === 'mailfleet-operator' && operatorSkipped() !== undefined), []);
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
