// charts/mailfleet on a real kube-apiserver (test/cluster): the rendered objects pass the
// apiserver's strict validation, `helm install` is accepted (cluster-wide and single-namespace
// releases), the operator pod passes the "restricted" Pod Security admission, and the operator's
// ServiceAccount may do exactly what it needs (`kubectl auth can-i --as=system:serviceaccount:…`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, test, type TestContext } from 'node:test';
import { parse } from 'yaml';
import { chartDir, helmTools, parseManifests, repoRoot, run, type RunResult } from './helm.ts';
import {
  clusterScopedNeeds,
  describe as describePermission,
  leaseNeeds,
  operatorForbidden,
  operatorNeeds,
  type Permission,
} from './permissions.ts';

interface ClusterHandle {
  kubeconfig: string;
  stop(): Promise<void>;
}

let skipped = '';
let helm = '';
let kubectl = '';
let cluster: ClusterHandle | undefined;

const SYSTEM_NS = 'mailfleet-system';
const RELEASE = 'mf';
const SA = `system:serviceaccount:${SYSTEM_NS}:mf-mailfleet`;
const NS_RELEASE = 'mfns';
const NS_SYSTEM_NS = 'mailfleet-ns';
const NS_SA = `system:serviceaccount:${NS_SYSTEM_NS}:mfns-mailfleet`;

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) {
    skipped = tools.skipped;
    return;
  }
  ({ helm, kubectl } = tools);
  const clusterModule = path.join(repoRoot, 'test', 'cluster', 'cluster.ts');
  if (!existsSync(clusterModule)) {
    skipped = 'test/cluster/cluster.ts (the real test cluster) is not in this tree';
    return;
  }
  const { startCluster } = (await import(clusterModule)) as {
    startCluster(): Promise<ClusterHandle | { skipped: string }>;
  };
  const c = await startCluster();
  if ('skipped' in c) skipped = `no test cluster: ${c.skipped}`;
  else cluster = c;
});

/**
 * Minimal CRDs of the third-party kinds the operator manages (Multus, Cilium), as a cluster that
 * runs those CNIs has them: `kubectl auth can-i` resolves resource types through discovery.
 */
function stubCrd(group: string, kind: string, plural: string, scope: 'Namespaced' | 'Cluster', version: string): string {
  return JSON.stringify({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  });
}

after(async () => {
  await cluster?.stop();
});

async function k(args: readonly string[], input?: string): Promise<RunResult> {
  return run(kubectl, ['--kubeconfig', cluster!.kubeconfig, ...args], input === undefined ? {} : { input });
}
async function kOk(args: readonly string[], input?: string): Promise<string> {
  const r = await k(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}
async function h(args: readonly string[]): Promise<RunResult> {
  return run(helm, ['--kubeconfig', cluster!.kubeconfig, ...args], { timeoutMs: 180_000 });
}
async function hOk(args: readonly string[]): Promise<string> {
  const r = await h(args);
  assert.equal(r.code, 0, `helm ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `kubectl auth can-i` as the given user; namespace undefined = cluster scope (-A). */
async function canI(user: string, p: Permission, namespace: string | undefined, name?: string): Promise<boolean> {
  const [resource, subresource] = p.resource.split('/');
  const target = `${resource}${p.group ? `.${p.group}` : ''}${name ? `/${name}` : ''}`;
  const args = ['auth', 'can-i', p.verb, target, `--as=${user}`, ...(namespace ? ['-n', namespace] : ['-A'])];
  if (subresource) args.push(`--subresource=${subresource}`);
  const r = await k(args);
  const answer = r.stdout.trim();
  if (answer !== 'yes' && answer !== 'no') throw new Error(`kubectl ${args.join(' ')}: unexpected answer ${JSON.stringify(answer)} ${r.stderr}`);
  // kubectl maps the resource through discovery; an unknown type becomes a resource named
  // "x.group" in the core group, and "no" would be meaningless.
  if (/doesn't have a resource type/.test(r.stderr)) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  return answer === 'yes';
}

interface Check {
  user: string;
  p: Permission;
  namespace: string | undefined;
  name?: string;
  want: boolean;
}

/** Asks the apiserver every check (a few at a time); returns the ones answered wrongly. */
async function wrongAnswers(checks: readonly Check[]): Promise<string[]> {
  const wrong: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < checks.length) {
      const c = checks[next++]!;
      const got = await canI(c.user, c.p, c.namespace, c.name);
      if (got !== c.want) {
        wrong.push(`${c.user} ${c.want ? 'cannot' : 'CAN'} ${describePermission(c.p)}${c.name ? ` ${c.name}` : ''} ${c.namespace ? `in ${c.namespace}` : 'cluster-wide'}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return wrong.sort();
}

/**
 * Proof by use that the RBAC is sufficient: runs `mailfleet operator` (this checkout's CLI) as the
 * release's ServiceAccount — a token from the TokenRequest API — with the args and env of the
 * release's Deployment, applies examples/ (and the multus and cilium pools of examples/egress/),
 * and waits for the operator's writes: children, status, DKIM Secret, Events, the Lease, the
 * NetworkAttachmentDefinition, the cluster-scoped CiliumEgressGatewayPolicies and their removal
 * through the finalizer; then SIGTERM and the Lease is handed back. Any "forbidden" in its
 * output fails the test.
 */
const arg = (args: readonly string[], flag: string): string | undefined => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

async function operatorReconcilesExamples(t: TestContext, release: string, releaseNs: string, examplesNs: string, leaseNs: string): Promise<void> {
  const manifest = parseManifests(await hOk(['get', 'manifest', release, '-n', releaseNs]));
  const deploy = manifest.find((o) => o.kind === 'Deployment')!;
  const container = (deploy as unknown as { spec: { template: { spec: { serviceAccountName: string; containers: { args: string[]; env: { name: string; value?: string }[] }[] } } } })
    .spec.template.spec;
  const c = container.containers[0]!;
  const sa = container.serviceAccountName;

  const token = (await kOk(['create', 'token', sa, '-n', releaseNs, '--duration=10m'])).trim();
  const admin = parse(await readFile(cluster!.kubeconfig, 'utf8')) as { clusters: { cluster: Record<string, string> }[] };
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mailfleet-sa-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  const saKubeconfig = path.join(tmp, 'kubeconfig');
  await writeFile(saKubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'sa',
    clusters: [{ name: 'c', cluster: admin.clusters[0]!.cluster }],
    users: [{ name: 'sa', user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'c', user: 'sa' } }],
  }));
  const who = await run(kubectl, ['--kubeconfig', saKubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
  assert.equal(who.stdout, `system:serviceaccount:${releaseNs}:${sa}`);

  // The pool's referenced Secrets (user-provided in real life); names read from the example.
  const pool = parse(await readFile(path.join(repoRoot, 'examples', 'sendingpool.yaml'), 'utf8')) as {
    metadata: { name: string };
    spec: { ips: unknown[]; submission?: { tlsSecretRef?: { name: string }; authSecretRef?: { name: string; key?: string } } };
  };
  const domain = parse(await readFile(path.join(repoRoot, 'examples', 'maildomain.yaml'), 'utf8')) as { metadata: { name: string } };
  await k(['create', 'namespace', examplesNs]);
  const sub = pool.spec.submission;
  if (sub?.tlsSecretRef) await kOk(['create', 'secret', 'generic', sub.tlsSecretRef.name, '-n', examplesNs, '--from-literal=tls.crt=x', '--from-literal=tls.key=x']);
  if (sub?.authSecretRef) await kOk(['create', 'secret', 'generic', sub.authSecretRef.name, '-n', examplesNs, `--from-literal=${sub.authSecretRef.key ?? 'credentials'}=user:x`]);

  const args = c.args.map((a) => (a.startsWith('--metrics-port=') ? '--metrics-port=0' : a));
  const env: NodeJS.ProcessEnv = { ...process.env, POD_NAMESPACE: releaseNs, KUBECONFIG: '' };
  for (const e of c.env) if (e.value !== undefined) env[e.name] = e.value;
  const child = spawn(process.execPath, [path.join(repoRoot, 'cli', 'mailfleet.ts'), ...args, '--kubeconfig', saKubeconfig], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });

  try {
    const jp = async (args: string[]) => (await k(args)).stdout.trim();
    const count = async (args: string[]) => (await jp([...args, '-o', 'name'])).split('\n').filter(Boolean).length;
    const condition = (kind: string, name: string, type: string) =>
      jp(['get', kind, name, '-n', examplesNs, '-o', `jsonpath={.status.conditions[?(@.type=="${type}")].status}`]);
    /** Polls `observe` until it deep-equals `want` (or the operator died / hit a 403). */
    const waitFor = async <T>(what: string, want: T, observe: () => Promise<T>): Promise<void> => {
      const deadline = Date.now() + 90_000;
      let got = await observe();
      while (!isDeepStrictEqual(got, want) && Date.now() < deadline && child.exitCode === null && !/forbidden/i.test(output)) {
        await new Promise((r) => setTimeout(r, 500));
        got = await observe();
      }
      assert.deepEqual(got, want, `${what}: the operator did not finish its writes; its output:\n${output.slice(-6000)}`);
    };
    const examples = path.join(repoRoot, 'examples');

    await kOk(['apply', '-n', examplesNs, '-f', path.join(examples, 'sendingpool.yaml'), '-f', path.join(examples, 'maildomain.yaml')]);
    await waitFor('examples/sendingpool.yaml + maildomain.yaml', { reconciled: 'True', dkim: 'True', statefulsets: pool.spec.ips.length, events: true, leader: true }, async () => ({
      reconciled: await condition('sendingpool', pool.metadata.name, 'Reconciled'),
      dkim: await condition('maildomain', domain.metadata.name, 'DKIMReady'),
      statefulsets: await count(['get', 'statefulsets', '-n', examplesNs]),
      events: (await count(['get', 'events', '-n', examplesNs, '--field-selector', 'source=mailfleet-operator'])) > 0,
      leader: (await jp(['get', 'lease', `${release}-mailfleet`, '-n', leaseNs, '-o', 'jsonpath={.spec.holderIdentity}'])) !== '',
    }));

    // What the Deployment tells the operator reaches the pool's children: the relay image
    // (--relay-image, the release's own image by default) and the operator's namespace
    // (POD_NAMESPACE), which the NetworkPolicy admits to the relays' stats port.
    const relayImage = arg(c.args, '--relay-image');
    assert.ok(relayImage, `the Deployment passes --relay-image: ${c.args.join(' ')}`);
    const images = (await jp(['get', 'statefulsets', '-n', examplesNs, '-o', 'jsonpath={.items[*].spec.template.spec.containers[0].image}'])).split(' ');
    assert.deepEqual([...new Set(images)], [relayImage]);
    const statsFrom = JSON.parse(await jp(['get', 'networkpolicy', pool.metadata.name, '-n', examplesNs, '-o', 'jsonpath={.spec.ingress[1].from}'])) as unknown;
    assert.deepEqual(statsFrom, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': releaseNs } } }]);

    // The egress modes' objects: a NetworkAttachmentDefinition (namespaced), and one cluster-scoped
    // CiliumEgressGatewayPolicy per IP, removed through the pool's finalizer when it is deleted.
    const egress = (file: string) => parse(readFileSync(path.join(examples, 'egress', file), 'utf8')) as { metadata: { name: string }; spec: { ips: unknown[] } };
    const multus = egress('multus.yaml');
    const cilium = egress('cilium.yaml');
    await kOk(['apply', '-n', examplesNs, '-f', path.join(examples, 'egress', 'multus.yaml'), '-f', path.join(examples, 'egress', 'cilium.yaml')]);
    await waitFor('examples/egress multus + cilium', { multus: 'True', cilium: 'True', nads: 1, ciliumPolicies: cilium.spec.ips.length }, async () => ({
      multus: await condition('sendingpool', multus.metadata.name, 'Reconciled'),
      cilium: await condition('sendingpool', cilium.metadata.name, 'Reconciled'),
      nads: await count(['get', 'network-attachment-definitions.k8s.cni.cncf.io', '-n', examplesNs]),
      ciliumPolicies: await count(['get', 'ciliumegressgatewaypolicies.cilium.io']),
    }));
    // Its relays never run here (no kubelet), so they could never report a drained queue: skip the
    // drain (test/operator/drain.test.ts covers it) and look at the cluster-scoped cleanup alone.
    await kOk(['annotate', 'sendingpool', cilium.metadata.name, '-n', examplesNs, 'mailfleet.io/delete-immediately=true']);
    await kOk(['delete', 'sendingpool', cilium.metadata.name, '-n', examplesNs, '--wait=false']);
    await waitFor('deleting the cilium pool (finalizer path)', { pool: 0, ciliumPolicies: 0 }, async () => ({
      pool: await count(['get', 'sendingpools', '-n', examplesNs, '--field-selector', `metadata.name=${cilium.metadata.name}`]),
      ciliumPolicies: await count(['get', 'ciliumegressgatewaypolicies.cilium.io']),
    }));
  } finally {
    child.kill('SIGTERM');
  }
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
  assert.equal(code, 0, `operator did not stop cleanly on SIGTERM:\n${output.slice(-4000)}`);
  assert.doesNotMatch(output, /forbidden/i, `the operator hit a permission error:\n${output.slice(-6000)}`);
  const holder = (await k(['get', 'lease', `${release}-mailfleet`, '-n', leaseNs, '-o', 'jsonpath={.spec.holderIdentity}'])).stdout.trim();
  assert.equal(holder, '', 'the Lease was handed back on shutdown (update on its own Lease)');
}

describe('charts/mailfleet: install into the test cluster', { concurrency: false }, () => {
  test('the rendered chart passes the apiserver strict (server-side dry-run) validation', async (t) => {
    if (skipped) return t.skip(skipped);
    await kOk(['create', 'namespace', SYSTEM_NS]);
    await kOk(['create', '-f', '-'], stubCrd('k8s.cni.cncf.io', 'NetworkAttachmentDefinition', 'network-attachment-definitions', 'Namespaced', 'v1'));
    await kOk(['create', '-f', '-'], stubCrd('cilium.io', 'CiliumEgressGatewayPolicy', 'ciliumegressgatewaypolicies', 'Cluster', 'v2'));
    // "restricted" enforced: the ReplicaSet controller's Pod for the operator must be admitted.
    await kOk(['label', 'namespace', SYSTEM_NS, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
    for (const set of [[], ['--set', 'watchNamespace=default', '--set', 'podDisruptionBudget.enabled=true', '--set', 'replicaCount=2']]) {
      const rendered = await run(helm, ['template', RELEASE, chartDir, '-n', SYSTEM_NS, ...set]);
      assert.equal(rendered.code, 0, rendered.stderr);
      const r = await k(['create', '--dry-run=server', '--validate=strict', '-f', '-'], rendered.stdout);
      assert.equal(r.code, 0, `apiserver refused the chart (${set.join(' ') || 'default values'}):\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Warning/, `apiserver warned about the chart:\n${r.stderr}`);
    }
  });

  test('helm install (cluster-wide) is accepted; CRDs established; operator pod admitted as restricted', async (t) => {
    if (skipped) return t.skip(skipped);
    const out = await hOk(['install', RELEASE, chartDir, '-n', SYSTEM_NS, '--set', 'replicaCount=2']);
    assert.match(out, /STATUS: deployed/);
    assert.match(out, /reconciles SendingPools and MailDomains in all namespaces/, 'NOTES.txt rendered');
    await kOk(['wait', '--for=condition=Established', '--timeout=60s', 'crd/sendingpools.mailfleet.io', 'crd/maildomains.mailfleet.io',
      'crd/network-attachment-definitions.k8s.cni.cncf.io', 'crd/ciliumegressgatewaypolicies.cilium.io']);
    // The controller-manager's ReplicaSet controller creates the Pods (they stay Pending: no
    // kubelet); under enforce=restricted they exist only if the pod spec is restricted.
    const deadline = Date.now() + 60_000;
    let pods: string[] = [];
    while (Date.now() < deadline) {
      pods = (await kOk(['get', 'pods', '-n', SYSTEM_NS, '-l', 'app.kubernetes.io/instance=mf', '-o', 'name'])).split('\n').filter(Boolean);
      if (pods.length === 2) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (pods.length !== 2) {
      const rs = await k(['get', 'replicasets', '-n', SYSTEM_NS, '-o', 'yaml']);
      assert.fail(`expected 2 operator pods, found ${pods.length}; ReplicaSets:\n${rs.stdout.slice(-3000)}`);
    }
    // And a CR of each kind is served (the CRDs work, not just exist).
    await kOk(['get', 'sendingpools,maildomains', '-A']);
  });

  test('cluster-wide RBAC: the ServiceAccount can do what the operator needs, in any namespace, and no more', async (t) => {
    if (skipped) return t.skip(skipped);
    await kOk(['create', 'namespace', 'team-b']);
    const checks: Check[] = [];
    for (const ns of ['default', 'team-b']) {
      for (const p of operatorNeeds) checks.push({ user: SA, p, namespace: ns, want: true });
      for (const p of operatorForbidden) if (!p.clusterScoped) checks.push({ user: SA, p, namespace: ns, want: false });
    }
    for (const p of clusterScopedNeeds) checks.push({ user: SA, p, namespace: undefined, want: true });
    for (const p of operatorForbidden) if (p.clusterScoped) checks.push({ user: SA, p, namespace: undefined, want: false });
    for (const p of leaseNeeds) checks.push({ user: SA, p, namespace: SYSTEM_NS, name: 'mf-mailfleet', want: true });
    // Only its own Lease, and none elsewhere.
    checks.push({ user: SA, p: { group: 'coordination.k8s.io', resource: 'leases', verb: 'update' }, namespace: SYSTEM_NS, name: 'other', want: false });
    checks.push({ user: SA, p: { group: 'coordination.k8s.io', resource: 'leases', verb: 'update' }, namespace: 'kube-system', name: 'mf-mailfleet', want: false });
    assert.deepEqual(await wrongAnswers(checks), []);
  });

  test('helm install with watchNamespace: RBAC confined to that namespace (+ cluster-scoped egress policies)', async (t) => {
    if (skipped) return t.skip(skipped);
    await kOk(['create', 'namespace', 'team-a']);
    // The CRDs belong to the first release; a second release must not try to own them.
    const out = await hOk([
      'install', NS_RELEASE, chartDir, '-n', NS_SYSTEM_NS, '--create-namespace',
      '--set', 'watchNamespace=team-a', '--set', 'crds.enabled=false', '--set', 'rbac.aggregateClusterRoles=false',
    ]);
    assert.match(out, /in namespace "team-a" only/);
    const checks: Check[] = [];
    for (const p of operatorNeeds) {
      checks.push({ user: NS_SA, p, namespace: 'team-a', want: true });
      checks.push({ user: NS_SA, p, namespace: 'team-b', want: false });
      checks.push({ user: NS_SA, p, namespace: undefined, want: false });
    }
    for (const p of operatorForbidden) if (!p.clusterScoped) checks.push({ user: NS_SA, p, namespace: 'team-a', want: false });
    for (const p of clusterScopedNeeds) checks.push({ user: NS_SA, p, namespace: undefined, want: true });
    // operator/main.ts keeps the Lease in the watched namespace.
    for (const p of leaseNeeds) checks.push({ user: NS_SA, p, namespace: 'team-a', name: 'mfns-mailfleet', want: true });
    checks.push({ user: NS_SA, p: { group: 'coordination.k8s.io', resource: 'leases', verb: 'create' }, namespace: NS_SYSTEM_NS, want: false });
    assert.deepEqual(await wrongAnswers(checks), []);
  });

  test('the real operator, run with the cluster-wide release\'s ServiceAccount token and args, reconciles the examples', async (t) => {
    if (skipped) return t.skip(skipped);
    await operatorReconcilesExamples(t, RELEASE, SYSTEM_NS, 'shop', SYSTEM_NS);
  });

  test('the real operator, run with the watchNamespace release\'s ServiceAccount token and args, reconciles the examples', async (t) => {
    if (skipped) return t.skip(skipped);
    await operatorReconcilesExamples(t, NS_RELEASE, NS_SYSTEM_NS, 'team-a', 'team-a');
  });

  test('a second release that also renders the CRDs is refused (one owner for the CRDs)', async (t) => {
    if (skipped) return t.skip(skipped);
    const r = await h(['install', 'mf2', chartDir, '-n', 'mf2-system', '--create-namespace', '--set', 'watchNamespace=team-b']);
    assert.notEqual(r.code, 0, 'helm installed CRDs already owned by release mf');
    assert.match(r.stderr, /sendingpools\.mailfleet\.io|maildomains\.mailfleet\.io/);
    assert.match(r.stderr, /exists and cannot be imported|invalid ownership metadata|conflict/i);
  });

  test('helm upgrade applies; helm uninstall keeps the CRDs (crds.keep) and removes the rest', async (t) => {
    if (skipped) return t.skip(skipped);
    await hOk(['upgrade', RELEASE, chartDir, '-n', SYSTEM_NS, '--set', 'replicaCount=1', '--set', 'watchNamespace=team-b']);
    assert.equal((await kOk(['get', 'deployment', 'mf-mailfleet', '-n', SYSTEM_NS, '-o', 'jsonpath={.spec.replicas}'])).trim(), '1');
    const rb = await k(['get', 'rolebinding', 'mf-mailfleet-operator', '-n', 'team-b', '-o', 'name']);
    assert.equal(rb.code, 0, 'upgrade to watchNamespace created the RoleBinding');
    const crb = await k(['get', 'clusterrolebinding', 'mf-mailfleet-operator', '-o', 'name']);
    assert.notEqual(crb.code, 0, 'upgrade to watchNamespace removed the cluster-wide binding');

    await hOk(['uninstall', NS_RELEASE, '-n', NS_SYSTEM_NS]);
    await hOk(['uninstall', RELEASE, '-n', SYSTEM_NS]);
    await kOk(['get', 'crd', 'sendingpools.mailfleet.io', 'maildomains.mailfleet.io']);
    for (const [kind, name, ns] of [
      ['deployment', 'mf-mailfleet', SYSTEM_NS],
      ['serviceaccount', 'mf-mailfleet', SYSTEM_NS],
      ['role', 'mf-mailfleet-leader-election', SYSTEM_NS],
      ['rolebinding', 'mf-mailfleet-operator', 'team-b'],
      ['clusterrole', 'mf-mailfleet-view', undefined],
      ['role', 'mfns-mailfleet-operator', 'team-a'],
      ['clusterrole', 'mfns-mailfleet-operator-cluster-scoped', undefined],
    ] as const) {
      const r = await k(['get', kind, name, ...(ns ? ['-n', ns] : []), '--ignore-not-found', '-o', 'name']);
      assert.equal(r.stdout.trim(), '', `${kind} ${name} left behind after uninstall`);
    }
  });
});
