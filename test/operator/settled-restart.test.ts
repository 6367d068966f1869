// A settled operator restarted against the real apiserver writes nothing (issue 17: at 2,000
// domains a restart still made 12 status writes, at 1,000 58). Small scale: two pools, eight
// MailDomains, DNS re-checks every second (records unpublished: every check finds the same),
// the stats loop every 300 ms (no relay runs, so every round judges the same). What a user would
// notice is compared: every object's resourceVersion and the namespace's Events; what the operator
// sends is counted too (every request other than GET through operator/runtime/kube.ts), since a
// write that changes nothing keeps the resourceVersion but is still load on the apiserver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { clusterEnv, operatorOn, waitFor, condition, samplePool, sampleDomain, type Env } from './harness.ts';
import { Kube, type KubeObject } from '../../operator/runtime/kube.ts';
import { runOperator, type RunningOperator } from '../../operator/main.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'settled';
const DOMAINS = 8;
let e: Env;
let op: RunningOperator | undefined;

// Every write the operator's Kube client sends (the test's own client only reads while counting).
const writes: string[] = [];
const request = Kube.prototype.request;
Kube.prototype.request = function (this: Kube, ...args: Parameters<Kube['request']>) {
  if (args[0] !== 'GET') writes.push(`${args[0]} ${args[1].split('?')[0]}`);
  return request.apply(this, args);
} as Kube['request'];

const OPTS = { namespace: NS, dnsRecheckMs: 1000, statsIntervalMs: 300 };
// The restarted one without operatorOn, whose CRD install is the test's own write.
const restart = () =>
  runOperator({ kubeconfig: e.kubeconfig, leaderElection: false, metricsPort: 0, metricsHost: '127.0.0.1', handleSignals: false, logLevel: process.env.LOG_LEVEL ?? 'error', dnsServers: ['127.0.0.1:9'], ...OPTS });

before(async () => {
  if (skip) return;
  e = env as Env;
  op = await operatorOn(e, [NS], OPTS);
});

after(async () => {
  await op?.stop();
  Kube.prototype.request = request;
  if (!skip) await e.cluster.stop();
});

const KINDS: Array<[string, string]> = [
  ['mailfleet.io/v1alpha1', 'SendingPool'],
  ['mailfleet.io/v1alpha1', 'MailDomain'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['v1', 'Service'],
  ['apps/v1', 'StatefulSet'],
  ['policy/v1', 'PodDisruptionBudget'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['v1', 'Event'],
];

/** Every object of the namespace by "Kind/name" → resourceVersion (Events: their count too). */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [apiVersion, kind] of KINDS) {
    for (const o of (await e.kube.list<KubeObject & { count?: number }>(apiVersion, kind, NS)).items) {
      out[`${kind}/${o.metadata?.name}`] = `${o.metadata?.resourceVersion}${o.count !== undefined ? ` x${o.count}` : ''}`;
    }
  }
  return out;
}

const sample = async (name: string, labels: Record<string, string> = {}) => {
  const m = (await op!.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return m.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
};

test('a settled operator restarted makes zero writes: no status, child, Secret or Event', { skip, timeout: 180_000 }, async () => {
  await e.kube.create(samplePool('p0', NS, { ips: [{ address: '198.18.0.1', hostname: 'mta0.p0.test' }] }));
  await e.kube.create(samplePool('p1', NS, { ips: [{ address: '198.18.0.2', hostname: 'mta0.p1.test' }] }));
  for (let i = 0; i < DOMAINS; i++) {
    const d = sampleDomain(`d${i}`, NS, `d${i}.settled.test`, `p${i % 2}`);
    (d['spec'] as Record<string, unknown>)['dkim'] = { algorithm: 'ed25519' };
    await e.kube.create(d);
  }
  // Settled: every domain signed for and judged by the stats loop, every pool Ready-reported,
  // and nothing written for 3 s while DNS is re-checked every second and the loop runs ~10 times.
  await waitFor('every domain DKIMReady with a health verdict, every pool with a Degraded condition', async () => {
    const ds = (await e.kube.list('mailfleet.io/v1alpha1', 'MailDomain', NS)).items;
    const ps = (await e.kube.list('mailfleet.io/v1alpha1', 'SendingPool', NS)).items;
    return ds.length === DOMAINS && ds.every((d) => condition(d, 'DKIMReady')?.status === 'True' && (d['status'] as { health?: unknown }).health) && ps.every((p) => condition(p, 'Degraded') && condition(p, 'Ready'))
      ? true
      : undefined;
  }, 60_000);
  let settled: Record<string, string> = {};
  await waitFor('no object changed for 3 s', async () => {
    const a = await snapshot();
    const checks = await sample('mailfleet_operator_dns_checks_total');
    await new Promise((r) => setTimeout(r, 3000));
    const b = await snapshot();
    settled = b;
    assert.ok((await sample('mailfleet_operator_dns_checks_total')) > checks, 'DNS was re-checked meanwhile');
    return JSON.stringify(a) === JSON.stringify(b) ? true : undefined;
  }, 60_000, 0);
  assert.ok((await sample('mailfleet_operator_dns_checks_total', { outcome: 'unchanged' })) > 0, 'a re-check that found the same is counted');

  await op!.stop();
  // Stopping may save what the stats loop merged since its last save (operator/observe, for the
  // next leader): part of the stop, not of the restart, so the baseline is taken after it.
  settled = await snapshot();
  writes.length = 0;
  op = await restart();
  // Resynced: every object reconciled with the queues empty, DNS re-checked (each domain's first
  // re-check falls within one interval of the start), and two rounds of the stats loop.
  await waitFor('every object reconciled, DNS re-checked, two stats rounds', async () => {
    const ok =
      (await sample('mailfleet_operator_reconciles_total', { kind: 'MailDomain' })) >= DOMAINS &&
      (await sample('mailfleet_operator_reconciles_total', { kind: 'SendingPool' })) >= 2 &&
      (await sample('mailfleet_operator_workqueue_depth')) === 0 &&
      (await sample('mailfleet_operator_dns_checks_total')) >= DOMAINS &&
      (await sample('mailfleet_operator_stats_rounds_total')) >= 2;
    return ok ? true : undefined;
  }, 60_000);
  assert.deepEqual(writes, [], 'the restarted operator sent no write');
  assert.deepEqual(await snapshot(), settled, 'every object and Event as before the restart');
  assert.equal(await sample('mailfleet_operator_dns_checks_total', { outcome: 'changed' }), 0);
  const oldest = await sample('mailfleet_operator_dns_oldest_check_timestamp_seconds');
  assert.ok(oldest > Date.now() / 1000 - 5, `the oldest DNS check is recent (${oldest})`);
});

test('a MailDomain moved to another pool: the old pool stops signing for it, the new one signs (the pools\' domain index)', { skip, timeout: 60_000 }, async () => {
  const signs = async (pool: string, address: string) => {
    const cm = await e.kube.get('v1', 'ConfigMap', NS, `${pool}-relay-config`);
    const cfg = parse((cm['data'] as Record<string, string>)[`relay-${address.replaceAll('.', '-')}.yaml`]!) as { domains?: { domain: string }[] };
    return (cfg.domains ?? []).map((d) => d.domain).includes('d0.settled.test');
  };
  assert.equal(await signs('p0', '198.18.0.1'), true);
  assert.equal(await signs('p1', '198.18.0.2'), false);
  await e.kube.mergePatch({ apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', namespace: NS, name: 'd0' }, { spec: { poolRef: { name: 'p1' } } });
  await waitFor('p1 signs for d0.settled.test and p0 no longer does', async () => ((await signs('p1', '198.18.0.2')) && !(await signs('p0', '198.18.0.1')) ? true : undefined));
});
