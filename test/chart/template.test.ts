// charts/mailfleet without a cluster: helm lint, and `helm template` output validated object by
// object with kubernetes-models, plus the chart's own promises (image, args, probes, restricted
// pod security, least-privilege RBAC in both modes).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { reputationConfigFromEnv } from '../../operator/reputation/lists.ts';
import { parse } from 'yaml';
import { byKind, chartDir, repoRoot, helmTools, one, renderChart, run, validateWithModels, type K8sObject } from './helm.ts';
import { allows, clusterScopedNeeds, describe as describePermission, leaseNeeds, operatorForbidden, operatorNeeds, type PolicyRule } from './permissions.ts';

let helm = '';
let skipped = '';
let appVersion = '';

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
  appVersion = String((parse(await readFile(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion);
});

/** Every object validated; returns the ones kubernetes-models has no schema for. */
async function validateAll(objs: readonly K8sObject[]): Promise<string[]> {
  const unvalidated: string[] = [];
  for (const obj of objs) {
    const v = await validateWithModels(obj);
    if (!v.validated) unvalidated.push(`${obj.apiVersion} ${obj.kind}`);
  }
  return unvalidated;
}

function rulesOf(obj: K8sObject): PolicyRule[] {
  return (obj as unknown as { rules: PolicyRule[] }).rules;
}

interface Container {
  name: string;
  image: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet: { path: string; port: string | number } };
  readinessProbe?: { httpGet: { path: string; port: string | number } };
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
}
interface PodSpec {
  serviceAccountName: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext: Record<string, unknown> & { seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: Record<string, unknown>[];
}
function podSpec(deploy: K8sObject): PodSpec {
  return (deploy as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

/** The "restricted" Pod Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/). */
function assertRestricted(spec: PodSpec): void {
  assert.ok(!spec.hostNetwork && !spec.hostPID && !spec.hostIPC, 'no host namespaces');
  for (const v of spec.volumes ?? []) {
    assert.ok(!('hostPath' in v), `volume ${String(v.name)} must not be a hostPath`);
  }
  const podSc = spec.securityContext;
  for (const c of spec.containers) {
    const sc = c.securityContext;
    assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation=false`);
    assert.notEqual(sc.privileged, true, `${c.name}: not privileged`);
    assert.ok(sc.runAsNonRoot === true || podSc.runAsNonRoot === true, `${c.name}: runAsNonRoot`);
    assert.notEqual(sc.runAsUser ?? podSc.runAsUser, 0, `${c.name}: not uid 0`);
    const seccomp = (sc.seccompProfile as { type?: string } | undefined)?.type ?? podSc.seccompProfile?.type;
    assert.ok(seccomp === 'RuntimeDefault' || seccomp === 'Localhost', `${c.name}: seccompProfile RuntimeDefault`);
    assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${c.name}: drops ALL capabilities`);
    assert.ok((sc.capabilities?.add ?? []).every((cap) => cap === 'NET_BIND_SERVICE'), `${c.name}: adds no capability`);
    assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem (beyond restricted, our own rule)`);
  }
}

function arg(c: Container, flag: string): string | undefined {
  const a = c.args.find((x) => x.startsWith(`${flag}=`));
  return a?.slice(flag.length + 1);
}

describe('charts/mailfleet: lint and template', () => {
  test('helm lint --strict passes with default, namespaced and all-features values', async (t) => {
    if (skipped) return t.skip(skipped);
    for (const set of [[], ['--set', 'watchNamespace=team-a'], allFeatures]) {
      const r = await run(helm, ['lint', '--strict', chartDir, ...set]);
      assert.equal(r.code, 0, `helm lint ${set.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    }
  });

  test('default values: every object is valid, the operator Deployment is as specified', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm);
    const unvalidated = await validateAll(objs);
    assert.deepEqual(unvalidated.filter((k) => !k.includes('CustomResourceDefinition')), [], 'only CRDs may lack a model');

    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment', 'Service']) {
      assert.ok(kinds.has(k), `renders a ${k}`);
    }
    assert.ok(!kinds.has('ServiceMonitor') && !kinds.has('PodMonitor') && !kinds.has('PrometheusRule') && !kinds.has('PodDisruptionBudget') && !kinds.has('ConfigMap'), 'optional objects are off by default');

    const deploy = one(objs, 'Deployment');
    assert.equal(deploy.metadata.namespace, 'mailfleet-system');
    const spec = podSpec(deploy);
    assert.equal(spec.serviceAccountName, one(objs, 'ServiceAccount').metadata.name);
    const c = spec.containers[0]!;
    assert.equal(c.image, `ghcr.io/mailfleet/mailfleet:${appVersion}`);
    assert.deepEqual(c.args, [
      'operator', '--leader-elect', '--lease-name=mf-mailfleet', '--metrics-port=8080', `--relay-image=ghcr.io/mailfleet/mailfleet:${appVersion}`,
      '--relay-metrics-from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}},"podSelector":{"matchLabels":{"app.kubernetes.io/name":"prometheus"}}}]',
    ]);
    assert.deepEqual(c.ports.map((p) => [p.name, p.containerPort]), [['metrics', 8080]]);
    assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' });
    assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' });
    const env = (c as unknown as { env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] }).env;
    assert.equal(env.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace', 'the Lease namespace');
    assert.equal((env as { name: string; value?: string }[]).find((e) => e.name === 'LOG_LEVEL')?.value, 'info');
    // Reputation monitoring is off by default (no resolver of the user's own: every list would say "refused").
    assert.equal((env as { name: string; value?: string }[]).find((e) => e.name === 'MAILFLEET_REPUTATION'), undefined);
    assertRestricted(spec);

    const svc = one(objs, 'Service') as unknown as { spec: { selector: Record<string, string>; ports: { port: number }[] } };
    const podLabels = (deploy as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(podLabels[k], v, `metrics Service selects the pod (${k})`);
    assert.equal(svc.spec.ports[0]?.port, 8080);
  });

  test('default values: cluster-wide RBAC grants what the operator needs and no more', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm);
    const sa = one(objs, 'ServiceAccount');
    const binding = one(objs, 'ClusterRoleBinding', 'mf-mailfleet-operator') as unknown as {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string; namespace: string }[];
    };
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'mailfleet-system' }]);
    const rules = rulesOf(one(objs, binding.roleRef.kind, binding.roleRef.name));
    for (const p of [...operatorNeeds, ...clusterScopedNeeds]) assert.ok(allows(rules, p), `ClusterRole allows ${describePermission(p)}`);
    for (const p of operatorForbidden) assert.ok(!allows(rules, p), `ClusterRole must not allow ${describePermission(p)}`);
    for (const r of rules) {
      assert.ok(![...(r.verbs ?? []), ...(r.resources ?? []), ...(r.apiGroups ?? [])].includes('*'), `no wildcards: ${JSON.stringify(r)}`);
    }

    const lease = one(objs, 'Role', 'mf-mailfleet-leader-election');
    assert.equal(lease.metadata.namespace, 'mailfleet-system');
    for (const p of leaseNeeds) {
      assert.ok(allows(rulesOf(lease), p, 'mf-mailfleet'), `lease Role allows ${describePermission(p)} on its Lease`);
    }
    assert.ok(!allows(rulesOf(lease), { group: 'coordination.k8s.io', resource: 'leases', verb: 'update' }, 'kube-controller-manager'), 'only its own Lease');
    assert.ok(!allows(rulesOf(lease), { group: 'coordination.k8s.io', resource: 'leases', verb: 'list' }), 'cannot list Leases');

    // Aggregation into the built-in roles for users of SendingPools / MailDomains.
    const view = one(objs, 'ClusterRole', 'mf-mailfleet-view');
    assert.equal(view.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'], 'true');
    assert.ok(!allows(rulesOf(view), { group: 'mailfleet.io', resource: 'sendingpools', verb: 'create' }));
    const edit = one(objs, 'ClusterRole', 'mf-mailfleet-edit');
    assert.equal(edit.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'], undefined);
    assert.ok(allows(rulesOf(edit), { group: 'mailfleet.io', resource: 'maildomains', verb: 'create' }));
  });

  test('watchNamespace: a Role + RoleBinding in that namespace, cluster-wide only the cluster-scoped egress objects', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm, ['--set', 'watchNamespace=team-a', '--set', 'rbac.aggregateClusterRoles=false']);
    const unvalidated = await validateAll(objs);
    assert.deepEqual(unvalidated.filter((k) => !k.includes('CustomResourceDefinition')), []);

    const c = podSpec(one(objs, 'Deployment')).containers[0]!;
    assert.equal(arg(c, '--namespace'), 'team-a');

    const role = one(objs, 'Role', 'mf-mailfleet-operator');
    assert.equal(role.metadata.namespace, 'team-a');
    const rb = one(objs, 'RoleBinding', 'mf-mailfleet-operator') as unknown as K8sObject & {
      roleRef: { kind: string; name: string };
      subjects: { name: string; namespace: string }[];
    };
    assert.equal(rb.metadata.namespace, 'team-a');
    assert.deepEqual(rb.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mf-mailfleet-operator' });
    assert.deepEqual(rb.subjects.map((s) => `${s.namespace}/${s.name}`), ['mailfleet-system/mf-mailfleet']);
    for (const p of operatorNeeds) assert.ok(allows(rulesOf(role), p), `Role allows ${describePermission(p)}`);
    for (const p of operatorForbidden) assert.ok(!allows(rulesOf(role), p), `Role must not allow ${describePermission(p)}`);

    // operator/main.ts keeps its Lease in the watched namespace when there is one.
    const lease = one(objs, 'Role', 'mf-mailfleet-leader-election');
    assert.equal(lease.metadata.namespace, 'team-a');
    for (const p of leaseNeeds) assert.ok(allows(rulesOf(lease), p, 'mf-mailfleet'), `lease Role allows ${describePermission(p)}`);
    assert.equal(one(objs, 'RoleBinding', 'mf-mailfleet-leader-election').metadata.namespace, 'team-a');

    // The only cluster-wide grant left: CiliumEgressGatewayPolicies are cluster-scoped.
    const clusterRoles = byKind(objs, 'ClusterRole');
    assert.deepEqual(clusterRoles.map((r) => r.metadata.name), ['mf-mailfleet-operator-cluster-scoped']);
    const cr = rulesOf(clusterRoles[0]!);
    for (const p of clusterScopedNeeds) assert.ok(allows(cr, p), `ClusterRole allows ${describePermission(p)}`);
    for (const p of operatorNeeds) assert.ok(!allows(cr, p), `ClusterRole must not allow ${describePermission(p)} in every namespace`);

    // Without the Cilium mode nothing cluster-wide at all.
    const none = await renderChart(helm, ['--set', 'watchNamespace=team-a', '--set', 'rbac.aggregateClusterRoles=false', '--set', 'rbac.egress.ciliumEgressGateway=false']);
    assert.deepEqual(byKind(none, 'ClusterRole').concat(byKind(none, 'ClusterRoleBinding')), []);
  });

  test('all optional features on: ServiceMonitor, PodMonitor, dashboards, PrometheusRule, PDB, two replicas, digest', async (t) => {
    if (skipped) return t.skip(skipped);
    const objs = await renderChart(helm, allFeatures);
    const unvalidated = await validateAll(objs);
    assert.deepEqual(
      unvalidated.filter((k) => !k.includes('CustomResourceDefinition')).sort(),
      ['monitoring.coreos.com/v1 PodMonitor', 'monitoring.coreos.com/v1 PrometheusRule', 'monitoring.coreos.com/v1 ServiceMonitor'],
    );
    const sm = one(objs, 'ServiceMonitor') as unknown as K8sObject & {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    };
    assert.equal(sm.metadata.labels?.release, 'prom');
    assert.deepEqual(sm.spec.endpoints.map((e) => `${e.port}${e.path}`), ['metrics/metrics']);
    const svc = one(objs, 'Service');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels?.[k], v, `ServiceMonitor selects the metrics Service (${k})`);
    const rule = one(objs, 'PrometheusRule') as unknown as { spec: { groups: { rules: { alert?: string }[] }[] } };
    // The generated groups (monitoring/alerts.ts; test/chart/prometheus.test.ts compares them), then the user's.
    assert.ok(rule.spec.groups.some((g) => g.rules.some((r) => r.alert === 'MailfleetOperatorDown')));
    assert.deepEqual(rule.spec.groups.at(-1)?.rules.map((r) => r.alert), ['Extra']);
    const deploy = one(objs, 'Deployment') as unknown as { spec: { replicas: number } };
    assert.equal(deploy.spec.replicas, 2);
    assert.equal(podSpec(one(objs, 'Deployment')).containers[0]?.image, `ghcr.io/mailfleet/mailfleet@sha256:${'a'.repeat(64)}`);
    assert.equal((one(objs, 'PodDisruptionBudget') as unknown as { spec: { minAvailable: number } }).spec.minAvailable, 1);
  });

  test('reputation: off by default; on with a resolver, the operator parses the defaults; on without one is refused naming reputation.resolver', async (t) => {
    if (skipped) return t.skip(skipped);
    const envOf = (objs: K8sObject[]) => (podSpec(one(objs, 'Deployment')).containers[0] as unknown as { env: { name: string; value?: string }[] }).env;
    const on = await renderChart(helm, ['--set', 'reputation.enabled=true', '--set', 'reputation.resolver=10.0.0.53']);
    // As the operator parses them (operator/reputation/lists.ts).
    const rep = reputationConfigFromEnv(envOf(on).find((e) => e.name === 'MAILFLEET_REPUTATION')?.value)!;
    assert.deepEqual([rep.intervalSeconds, rep.jitter, rep.cleanChecksToRelease, rep.resolver, rep.lists], [900, 0.1, 3, '10.0.0.53', undefined]);
    const r = await run(helm, ['template', 'mf', chartDir, '--set', 'reputation.enabled=true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /reputation\.enabled needs reputation\.resolver: a recursive resolver of your own/);
    const lint = await run(helm, ['lint', '--strict', chartDir, '--set', 'reputation.enabled=true', '--set', 'reputation.resolver=10.0.0.53:5353']);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  });

  test('two replicas without leader election are refused with a reason', async (t) => {
    if (skipped) return t.skip(skipped);
    const r = await run(helm, ['template', 'mf', chartDir, '--set', 'replicaCount=2', '--set', 'leaderElection.enabled=false']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /replicaCount > 1 needs leaderElection\.enabled=true/);
    const single = await renderChart(helm, ['--set', 'leaderElection.enabled=false']);
    const c = podSpec(one(single, 'Deployment')).containers[0]!;
    assert.ok(c.args.includes('--no-leader-elect') && !c.args.includes('--leader-elect'));
    assert.equal(arg(c, '--lease-name'), undefined);
    assert.equal(byKind(single, 'Role').length, 0, 'no Lease Role without leader election');
  });
  test('the relay image: the release\'s own image by default, relay.image when set', async (t) => {
    if (skipped) return t.skip(skipped);
    const relayImage = async (set: string[]) => arg(podSpec(one(await renderChart(helm, set), 'Deployment')).containers[0]!, '--relay-image');
    const appVersion = (parse(await readFile(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
    assert.equal(await relayImage([]), `ghcr.io/mailfleet/mailfleet:${appVersion}`);
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(await relayImage(['--set', `image.digest=${digest}`]), `ghcr.io/mailfleet/mailfleet@${digest}`);
    assert.equal(await relayImage(['--set', 'relay.image=registry.example/relay:1.2.3']), 'registry.example/relay:1.2.3');
  });
  test('every rendering of the operator args is accepted by the real `mailfleet operator` CLI', async (t) => {
    if (skipped) return t.skip(skipped);
    const node = process.execPath;
    const cli = path.join(repoRoot, 'cli', 'mailfleet.ts');
    const variants: string[][] = [
      [],
      ['--set', 'watchNamespace=team-a', '--set', 'dnsServers[0]=127.0.0.1:5353', '--set', 'dnsServers[1]=[::1]:53'],
      ['--set', 'leaderElection.enabled=false', '--set', 'metrics.port=9090', '--set', 'relay.image=registry.example/relay:1.2.3'],
      allFeatures,
    ];
    for (const v of variants) {
      const c = podSpec(one(await renderChart(helm, v), 'Deployment')).containers[0]!;
      // --help after the rendered flags: the CLI parses (strictly: unknown flags and missing values
      // are errors) and prints its usage without starting the operator.
      const r = await run(node, [cli, ...c.args, '--help']);
      assert.equal(r.code, 0, `mailfleet ${c.args.join(' ')} refused (chart values ${v.join(' ') || 'default'}):\n${r.stderr}`);
      assert.match(r.stdout, /Usage: mailfleet operator/);
    }
  });
});

const allFeatures = [
  '--set', 'serviceMonitor.enabled=true',
  '--set', 'serviceMonitor.labels.release=prom',
  '--set', 'relayMetrics.podMonitor.enabled=true',
  '--set', 'relayMetrics.podMonitor.labels.release=prom',
  '--set', 'dashboards.enabled=true',
  '--set', 'prometheusRule.enabled=true',
  '--set', 'prometheusRule.additionalRules[0].alert=Extra',
  '--set', 'prometheusRule.additionalRules[0].expr=vector(1)',
  '--set', 'podDisruptionBudget.enabled=true',
  '--set', 'replicaCount=2',
  '--set', `image.digest=sha256:${'a'.repeat(64)}`,
];
