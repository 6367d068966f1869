// SendingPool against a real kube-apiserver + kube-controller-manager (garbage collection,
// StatefulSet → Pod). The operator runs in-process without leader election.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { parse } from 'yaml';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RelayConfigSchema } from '../../relay/config/schema.ts';
import { runOperator, type RunningOperator } from '../../operator/main.ts';
import { writeStatus } from '../../operator/runtime/status.ts';
import { FIELD_MANAGER, type KubeObject } from '../../operator/runtime/kube.ts';
import {
  clusterEnv,
  installCrds,
  createNamespace,
  waitFor,
  condition,
  events,
  samplePool,
  childrenOf,
  POOL_REF,
  CILIUM_CRD,
  NAD_CRD,
  type Env,
} from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'pools';
let e: Env;
let op: RunningOperator;
/** The reconcilers' clock runs this far ahead of the real one (the warm-up test moves it). */
let clockOffsetMs = 0;

before(async () => {
  if (skip) return;
  e = env as Env;
  await installCrds(e.kube);
  await createNamespace(e.kube, NS);
  op = await runOperator({
    kubeconfig: e.kubeconfig,
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    refRecheckMs: 500,
    dnsServers: ['127.0.0.1:9'],
    now: () => new Date(Date.now() + clockOffsetMs),
  });
});

after(async () => {
  await op?.stop();
  if (!skip) await e.cluster.stop();
});

const twoIps = (n: number) => [
  { address: `203.0.113.${n}`, hostname: 'mta1.example.test' },
  { address: `203.0.113.${n + 1}`, hostname: 'mta2.example.test' },
];

const getPool = (name: string) => e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, name);

async function reconciledAt(name: string, generation: number): Promise<KubeObject> {
  return waitFor(`${name} Reconciled at generation ${generation}`, async () => {
    const p = await getPool(name);
    const c = condition(p, 'Reconciled');
    const st = p['status'] as { observedGeneration?: number } | undefined;
    return c?.status === 'True' && c.observedGeneration === generation && st?.observedGeneration === generation ? p : undefined;
  });
}

test('a SendingPool gets every child, each owned by the pool, with the expected content', { skip }, async () => {
  const created = await e.kube.create(samplePool('p1', NS));
  const uid = created.metadata!.uid!;
  const pool = await reconciledAt('p1', 1);

  const children = await childrenOf(e.kube, NS, 'p1');
  assert.deepEqual(children, [
    'ConfigMap/p1-relay-config',
    'NetworkPolicy/p1',
    'PodDisruptionBudget/p1',
    'Service/p1',
    'Service/p1-relays',
    'StatefulSet/p1-203-0-113-7',
    'StatefulSet/p1-203-0-113-8',
  ]);
  for (const id of children) {
    const [kind, name] = id.split('/') as [string, string];
    const apiVersion = { ConfigMap: 'v1', Service: 'v1', StatefulSet: 'apps/v1', PodDisruptionBudget: 'policy/v1', NetworkPolicy: 'networking.k8s.io/v1' }[kind]!;
    const o = await e.kube.get(apiVersion, kind, NS, name);
    const refs = o.metadata?.ownerReferences ?? [];
    assert.equal(refs.length, 1, `${id} has one owner reference`);
    assert.deepEqual(
      { kind: refs[0]!.kind, name: refs[0]!.name, uid: refs[0]!.uid, controller: refs[0]!.controller },
      { kind: 'SendingPool', name: 'p1', uid, controller: true },
      id,
    );
    const managers = ((o.metadata?.['managedFields'] ?? []) as { manager: string; operation: string }[]).filter((m) => m.operation === 'Apply');
    assert.deepEqual(managers.map((m) => m.manager), ['mailfleet-operator'], `${id} is applied by the one field manager`);
  }

  // The ConfigMap holds one relay config per IP, each valid under the relay's own schema.
  const cm = await e.kube.get('v1', 'ConfigMap', NS, 'p1-relay-config');
  const data = cm['data'] as Record<string, string>;
  assert.deepEqual(Object.keys(data).sort(), ['relay-203-0-113-7.yaml', 'relay-203-0-113-8.yaml']);
  const cfg = RelayConfigSchema.parse(parse(data['relay-203-0-113-7.yaml']!));
  assert.equal(cfg.hostname, 'mta1.example.test');
  // Below 1024 the relay listens 10000 higher (no CAP_NET_BIND_SERVICE); the Service maps 587 to it.
  assert.deepEqual(cfg.listeners.map((l) => l.port), [10587]);

  const sts = await e.kube.get('apps/v1', 'StatefulSet', NS, 'p1-203-0-113-8');
  assert.equal(sts.metadata?.annotations?.['mailfleet.io/address'], '203.0.113.8');
  const spec = sts['spec'] as { replicas: number; template: { metadata: { annotations: Record<string, string> } } };
  assert.equal(spec.replicas, 1, 'one relay pod per IP');
  assert.equal(spec.template.metadata.annotations['mailfleet.io/address'], '203.0.113.8');
  // kube-controller-manager acts on what we applied: the StatefulSet controller creates the pod.
  await waitFor('relay pod created by the StatefulSet controller', () => e.kube.find('v1', 'Pod', NS, 'p1-203-0-113-8-0'));

  // No kubelet here, so relays never become ready: Ready=False says so, per IP too.
  const ready = condition(pool, 'Ready');
  assert.equal(ready?.status, 'False');
  assert.equal(ready?.reason, 'RelaysNotReady');
  const st = pool['status'] as { ips: { address: string; state: string; pod: string }[]; readyIPs: number; totalIPs: number; summary: { ips: string } };
  assert.deepEqual(st.ips.map((i) => [i.address, i.state, i.pod]), [
    ['203.0.113.7', 'Pending', 'p1-203-0-113-7-0'],
    ['203.0.113.8', 'Pending', 'p1-203-0-113-8-0'],
  ]);
  assert.equal(st.summary.ips, '0/2');
  assert.equal(condition(pool, 'Degraded')?.status, 'False');
  await waitFor('a Reconciled Event', async () => (await events(e.kube, NS, 'p1')).find((ev) => ev.reason === 'Reconciled'));
});

test('mailfleet render of the same file prints what the operator applied', { skip }, async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { stringify } = await import('yaml');
  const { configVersion } = await import('../../relay/config/version.ts');
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-render-'));
  writeFileSync(join(dir, 'pool.yaml'), stringify(samplePool('p1', NS)));
  const cli = new URL('../../cli/mailfleet.ts', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [cli, 'render', '-f', join(dir, 'pool.yaml'), '-o', 'json'], { env: { ...process.env, RELAY_IMAGE: '' } });
  const printed = (JSON.parse(stdout) as { items: KubeObject[] }).items;
  const cm = await e.kube.get('v1', 'ConfigMap', NS, 'p1-relay-config');
  assert.deepEqual(printed.find((o) => o.kind === 'ConfigMap')!['data'], cm['data']);
  for (const name of ['p1-203-0-113-7', 'p1-203-0-113-8']) {
    const applied = await e.kube.get('apps/v1', 'StatefulSet', NS, name);
    const mine = printed.find((o) => o.kind === 'StatefulSet' && o.metadata?.name === name)!;
    type Sts = { template: { metadata: { annotations: Record<string, string> }; spec: { containers: { image: string; args: string[] }[] } } };
    const [a, b] = [(applied['spec'] as Sts).template, (mine['spec'] as Sts).template];
    assert.deepEqual(b.metadata.annotations, a.metadata.annotations, name);
    assert.deepEqual([b.spec.containers[0]!.image, b.spec.containers[0]!.args], [a.spec.containers[0]!.image, a.spec.containers[0]!.args], name);
    assert.equal(mine.metadata?.annotations?.['mailfleet.io/template-hash'], applied.metadata?.annotations?.['mailfleet.io/template-hash'], name);
  }
  // status.ips[].configVersion names the file the relay will report running.
  const st = (await getPool('p1'))['status'] as { ips: { address: string; configVersion?: string }[] };
  assert.equal(st.ips.find((i) => i.address === '203.0.113.7')!.configVersion, configVersion((cm['data'] as Record<string, string>)['relay-203-0-113-7.yaml']!));
});

test('the probe and metrics endpoints answer', { skip }, async () => {
  const base = `http://127.0.0.1:${op.port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200);
  assert.match(await ready.text(), /caches synced/);
  const text = await (await fetch(`${base}/metrics`)).text();
  for (const name of [
    'mailfleet_operator_reconciles_total',
    'mailfleet_operator_reconcile_errors_total',
    'mailfleet_operator_reconcile_duration_seconds_bucket',
    'mailfleet_operator_workqueue_depth',
    'mailfleet_operator_leader 1',
  ]) {
    assert.ok(text.includes(name), `${name} in /metrics`);
  }
  const promtool = ['/usr/bin/promtool', join(process.env.HOME ?? '', 'bin/promtool')].find((p) => existsSync(p));
  if (promtool) {
    const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  }
});

test('a spec change updates children in place, without duplicates; a removed IP is pruned', { skip }, async () => {
  const cmBefore = await e.kube.get('v1', 'ConfigMap', NS, 'p1-relay-config');
  const stsBefore = await e.kube.get('apps/v1', 'StatefulSet', NS, 'p1-203-0-113-7');
  await e.kube.mergePatch(
    { ...POOL_REF, namespace: NS, name: 'p1' },
    {
      // Without it the removed IP's relay would drain first (drain.test.ts); this is about pruning.
      metadata: { annotations: { 'mailfleet.io/delete-immediately': 'true' } },
      spec: {
        ips: [
          { address: '203.0.113.7', hostname: 'mta1b.example.test' },
          { address: '203.0.113.9', hostname: 'mta3.example.test' },
        ],
      },
    },
  );
  await reconciledAt('p1', 2);
  await waitFor('the relay of the removed IP pruned', async () => {
    const c = await childrenOf(e.kube, NS, 'p1');
    return c.includes('StatefulSet/p1-203-0-113-9') && !c.includes('StatefulSet/p1-203-0-113-8') ? c : undefined;
  });
  assert.deepEqual(await childrenOf(e.kube, NS, 'p1'), [
    'ConfigMap/p1-relay-config',
    'NetworkPolicy/p1',
    'PodDisruptionBudget/p1',
    'Service/p1',
    'Service/p1-relays',
    'StatefulSet/p1-203-0-113-7',
    'StatefulSet/p1-203-0-113-9',
  ]);
  const cm = await e.kube.get('v1', 'ConfigMap', NS, 'p1-relay-config');
  assert.equal(cm.metadata?.uid, cmBefore.metadata?.uid, 'the ConfigMap is updated, not replaced');
  const data = cm['data'] as Record<string, string>;
  assert.deepEqual(Object.keys(data).sort(), ['relay-203-0-113-7.yaml', 'relay-203-0-113-9.yaml']);
  assert.equal(RelayConfigSchema.parse(parse(data['relay-203-0-113-7.yaml']!)).hostname, 'mta1b.example.test');
  const sts = await e.kube.get('apps/v1', 'StatefulSet', NS, 'p1-203-0-113-7');
  assert.equal(sts.metadata?.uid, stsBefore.metadata?.uid);
  const pool = await getPool('p1');
  const st = pool['status'] as { ips: { address: string }[] };
  assert.deepEqual(st.ips.map((i) => i.address), ['203.0.113.7', '203.0.113.9']);
});

test('a resync of a settled pool writes nothing: the pool unchanged, and no child touched by the operator', { skip }, async () => {
  // The pool is written only by the operator, so its resourceVersion must hold. Children also get
  // status from kube-controller-manager (a StatefulSet's replicas, a PDB's health), so for them
  // what must hold is the operator's own managedFields entry (its time moves on any real change).
  const versions = async () => {
    const out: Record<string, unknown> = { pool: (await getPool('p1')).metadata?.resourceVersion };
    for (const id of await childrenOf(e.kube, NS, 'p1')) {
      const [kind, name] = id.split('/') as [string, string];
      const apiVersion = { ConfigMap: 'v1', Service: 'v1', StatefulSet: 'apps/v1', PodDisruptionBudget: 'policy/v1', NetworkPolicy: 'networking.k8s.io/v1' }[kind]!;
      const meta = (await e.kube.get(apiVersion, kind, NS, name)).metadata as { managedFields?: { manager?: string }[] } | undefined;
      out[id] = (meta?.managedFields ?? []).filter((m) => m.manager === FIELD_MANAGER);
      assert.ok((out[id] as unknown[]).length > 0, `${id} is applied by ${FIELD_MANAGER}`);
    }
    return out;
  };
  const reconciles = async () =>
    (await op.metrics.reconciles.get()).values.filter((v) => v.labels.kind === 'SendingPool').reduce((n, v) => n + v.value, 0);
  const before = await versions();
  const count = await reconciles();
  const pools = op.manager.list(POOL_REF).length;
  op.manager.resync();
  await waitFor('every pool reconciled again', async () => ((await reconciles()) >= count + pools ? true : undefined));
  assert.deepEqual(await versions(), before);
});

test('a bad reference the schema cannot catch: Ready=False naming the field, a Warning Event, then recovery', { skip }, async () => {
  await e.kube.create(
    samplePool('p2', NS, {
      // Every pool lists its own addresses: an address two pools list is a conflict (conflicts.test.ts).
      ips: twoIps(20),
      submission: { ports: [{ name: 'submission', port: 587, tls: 'starttls' }], tlsSecretRef: { name: 'p2-tls' } },
    }),
  );
  const bad = await waitFor('p2 Ready=False SecretNotFound', async () => {
    const p = await getPool('p2');
    const c = condition(p, 'Ready');
    return c?.status === 'False' && c.reason === 'SecretNotFound' ? c : undefined;
  });
  assert.match(bad.message, /spec\.submission\.tlsSecretRef\.name: Secret "p2-tls" not found/);
  assert.equal(bad.observedGeneration, 1);
  // The children are there; their pods wait for the Secret like any pod with a Secret volume.
  assert.equal(condition(await getPool('p2'), 'Reconciled')?.status, 'True');
  assert.ok((await childrenOf(e.kube, NS, 'p2')).includes('StatefulSet/p2-203-0-113-20'));
  const ev = await waitFor('a Warning Event', async () => (await events(e.kube, NS, 'p2')).find((x) => x.reason === 'SecretNotFound'));
  assert.equal(ev.type, 'Warning');
  assert.match(ev.message, /tlsSecretRef/);

  await e.kube.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'p2-tls', namespace: NS },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from('x').toString('base64'), 'tls.key': Buffer.from('y').toString('base64') },
  });
  await waitFor('p2 no longer waiting for its Secret', async () => (condition(await getPool('p2'), 'Ready')?.reason === 'RelaysNotReady' ? true : undefined));
  assert.equal(op.isLeader(), true);
  const metrics = await op.metrics.registry.getSingleMetricAsString('mailfleet_operator_reconciles_total');
  assert.match(metrics, /kind="SendingPool",result="success"/);
});

test('status writes use optimistic concurrency: a 409 is retried on a fresh read; no-op writes are skipped', { skip }, async () => {
  const stale = await getPool('p1');
  // Someone else writes in between: our copy's resourceVersion is now stale.
  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'p1' }, { metadata: { labels: { touched: 'yes' } } });
  const seenLabels: (string | undefined)[] = [];
  const res = await writeStatus(e.kube, stale, (cur) => {
    seenLabels.push(cur.metadata?.labels?.['touched']);
    return { ...(cur['status'] as object), summary: { ...((cur['status'] as { summary?: object }).summary ?? {}), bounceRate: '1.0%' } };
  });
  assert.equal(res.written, true);
  assert.equal(res.attempts, 2, 'first attempt conflicted, second succeeded');
  assert.deepEqual(seenLabels, [undefined, 'yes'], 'the retry recomputed from the fresh object');
  const again = await writeStatus(e.kube, res.object!, (cur) => cur['status']);
  assert.equal(again.written, false, 'an unchanged status is not written');
  const p = await getPool('p1');
  assert.equal((p['status'] as { summary: { bounceRate?: string } }).summary.bounceRate, '1.0%');
});

test('deleting a pool lets the garbage collector remove its children', { skip }, async () => {
  // Without it the relays would drain first (drain.test.ts); this is about garbage collection.
  await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'p2' }, { metadata: { annotations: { 'mailfleet.io/delete-immediately': 'true' } } });
  const pool = await getPool('p2');
  await e.kube.delete({ ...POOL_REF, namespace: NS, name: 'p2' });
  // kube-controller-manager's garbage collector learns a new CRD's kinds only at its 30 s
  // discovery resync, and backs off exponentially on owners it cannot map until then: right after
  // the CRDs were installed, this cascade can take over a minute.
  await waitFor('p2 children garbage-collected', async () => ((await childrenOf(e.kube, NS, 'p2')).length === 0 ? true : undefined), 150_000, 250);
  assert.equal(await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p2'), undefined);
  assert.ok(pool.metadata?.uid);
});

test('cluster-scoped egress policies are removed through the finalizer', { skip }, async () => {
  // A stand-in for Cilium's CRD: same group, kind and scope; any content accepted.
  await e.kube.apply(CILIUM_CRD as never);
  await waitFor('Cilium stand-in CRD served', async () => {
    try {
      await e.kube.list('cilium.io/v2', 'CiliumEgressGatewayPolicy');
      return true;
    } catch {
      return undefined;
    }
  });
  const p3 = samplePool('p3', NS, { ips: twoIps(30), egress: { mode: 'ciliumEgressGateway', ciliumEgressGateway: { nodeSelector: { egress: 'true' } } } });
  p3.metadata!.annotations = { 'mailfleet.io/delete-immediately': 'true' };
  await e.kube.create(p3);
  const policies = () => e.kube.list('cilium.io/v2', 'CiliumEgressGatewayPolicy', undefined, 'mailfleet.io/pool=p3');
  await waitFor('two egress policies', async () => ((await policies()).items.length === 2 ? true : undefined));
  const pool = await reconciledAt('p3', 1);
  assert.ok(pool.metadata?.finalizers?.includes('mailfleet.io/cluster-scoped-children'));
  assert.ok(!pool.metadata?.finalizers?.includes('mailfleet.io/drain'), 'delete-immediately: no drain finalizer');
  const one = (await policies()).items.find((p) => p.metadata?.name?.endsWith('203-0-113-30'));
  assert.equal((one?.['spec'] as { egressGateway: { egressIP: string } }).egressGateway.egressIP, '203.0.113.30');

  await e.kube.delete({ ...POOL_REF, namespace: NS, name: 'p3' });
  await waitFor('policies removed and the pool gone', async () =>
    (await policies()).items.length === 0 && !(await e.kube.find(POOL_REF.apiVersion, POOL_REF.kind, NS, 'p3')) ? true : undefined,
  );
});

test('an egress mode whose add-on is not installed: Ready=False naming spec.egress.mode', { skip }, async () => {
  await e.kube.create(samplePool('p4', NS, { ips: twoIps(50), egress: { mode: 'multus', multus: { master: 'eth1' } } }));
  const c = await waitFor('p4 Ready=False EgressUnavailable', async () => {
    const r = condition(await getPool('p4'), 'Ready');
    return r?.reason === 'EgressUnavailable' ? r : undefined;
  });
  assert.equal(c.status, 'False');
  assert.match(c.message, /^spec\.egress\.mode: multus needs k8s\.cni\.cncf\.io\/v1 NetworkAttachmentDefinition/);
  await waitFor('a Warning Event', async () => (await events(e.kube, NS, 'p4')).find((x) => x.reason === 'EgressUnavailable' && x.type === 'Warning'));
});

test('every egress mode applies on a real apiserver (hostNetwork, multus with a NetworkAttachmentDefinition)', { skip }, async () => {
  await e.kube.apply(NAD_CRD as never);
  await waitFor('NAD stand-in CRD served', async () => {
    try {
      await e.kube.request('GET', `/apis/k8s.cni.cncf.io/v1/namespaces/${NS}/network-attachment-definitions`);
      return true;
    } catch {
      return undefined;
    }
  });
  // p4 asked for multus before the CRD existed; it recovers on its own re-check.
  await reconciledAt('p4', 1);
  const pool = await getPool('p4');
  const nad = await e.kube.request<KubeObject>('GET', `/apis/k8s.cni.cncf.io/v1/namespaces/${NS}/network-attachment-definitions/p4-egress`);
  assert.equal(nad.metadata?.ownerReferences?.[0]?.uid, pool.metadata?.uid);
  const sts = await e.kube.get('apps/v1', 'StatefulSet', NS, 'p4-203-0-113-50');
  const ann = (sts['spec'] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
  assert.match(ann['k8s.v1.cni.cncf.io/networks']!, /203\.0\.113\.50/);

  await e.kube.create(
    samplePool('p5', NS, {
      ips: [
        { address: '203.0.113.60', hostname: 'mta1.example.test', nodeName: 'node-a' },
        { address: '203.0.113.61', hostname: 'mta2.example.test', nodeName: 'node-b' },
      ],
      egress: { mode: 'hostNetwork' },
    }),
  );
  await reconciledAt('p5', 1);
  const hsts = await e.kube.get('apps/v1', 'StatefulSet', NS, 'p5-203-0-113-61');
  const podSpec = (hsts['spec'] as { template: { spec: { hostNetwork?: boolean; nodeSelector?: Record<string, string> } } }).template.spec;
  assert.equal(podSpec.hostNetwork, true);
  assert.equal(podSpec.nodeSelector?.['kubernetes.io/hostname'], 'node-b');
});

test('warm-up: the plan reaches the relay config; status counts warm-up days, not calendar days; a new plan restarts nothing', { skip }, async () => {
  const DAY = 86_400_000;
  const pool = samplePool('warm', NS, {
    ips: [
      { address: '203.0.113.40', hostname: 'new.example.test', warmup: { steps: [{ day: 0, dailyLimit: 100 }, { day: 2, dailyLimit: 500 }] } },
      { address: '203.0.113.41', hostname: 'warm.example.test' },
    ],
  });
  await e.kube.create(pool);
  type IpStatus = { address: string; warmupStartedAt?: string; warmupStage?: number; warmupDay?: number; quotaToday?: number; configVersion?: string };
  const ips = async () => ((await getPool('warm'))['status'] as { ips?: IpStatus[] } | undefined)?.ips ?? [];
  // Any update re-queues the pool; the label makes the operator look at the (moved) clock now
  // rather than at the day boundary it scheduled.
  const nudge = (v: string) => e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'warm' }, { metadata: { labels: { nudge: v } } });
  const warmIp = async (want: Omit<IpStatus, 'address' | 'warmupStartedAt' | 'configVersion'>) =>
    waitFor(`warm-up status ${JSON.stringify(want)}`, async () => {
      const all = await ips();
      const w = all.find((i) => i.address === '203.0.113.40');
      if (!w) return undefined;
      const { warmupStage, warmupDay, quotaToday } = w;
      return isDeepStrictEqual({ warmupStage, warmupDay, quotaToday }, want) ? all : undefined;
    });
  const relayConfig = async () => {
    const cm = await e.kube.get('v1', 'ConfigMap', NS, 'warm-relay-config');
    const data = cm['data'] as Record<string, string>;
    return RelayConfigSchema.parse(parse(Object.entries(data).find(([k]) => k.includes('203-0-113-40'))![1]));
  };
  const templateHash = async () =>
    ((await e.kube.get('apps/v1', 'StatefulSet', NS, 'warm-203-0-113-40'))['spec'] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations['mailfleet.io/config-hash'];
  try {
    const first = await warmIp({ warmupStage: 0, warmupDay: 0, quotaToday: 100 });
    const ip = first.find((i) => i.address === '203.0.113.40')!;
    assert.equal(ip.warmupStartedAt, undefined, 'the relay never sent: no start');
    assert.match(ip.configVersion ?? '', /^[0-9a-f]{16}$/);
    const other = first.find((i) => i.address === '203.0.113.41')!;
    assert.deepEqual(Object.keys(other).filter((k) => k.startsWith('warmup') || k === 'quotaToday'), [], 'an IP without a plan has no warm-up fields');
    // No pod is ever Ready here (no node), and the column still says the IP is warming.
    assert.equal(((await getPool('warm'))['status'] as { summary?: { warmup?: string } }).summary?.warmup, '1 warming: 100/day');
    const cfg = await relayConfig();
    assert.deepEqual(cfg.shaping.warmup[0]!.plan!.steps, [{ day: 0, dailyLimit: 100 }, { day: 2, dailyLimit: 500 }]);
    assert.deepEqual(cfg.shaping.warmup[0]!.state, { countedDays: 0 });

    // Two calendar days on which no relay sent: still day 0.
    clockOffsetMs = 2 * DAY + 60_000;
    await nudge('day2');
    await waitFor('a reconcile at the moved clock', async () => ((await getPool('warm'))['metadata'] as { labels?: Record<string, string> }).labels?.['nudge'] === 'day2' || undefined);
    await reconciledAt('warm', 1);
    await warmIp({ warmupStage: 0, warmupDay: 0, quotaToday: 100 });

    // A new plan: a new ConfigMap the relay applies live, the same pod template (no restart).
    const hash = await templateHash();
    await e.kube.mergePatch({ ...POOL_REF, namespace: NS, name: 'warm' }, {
      spec: { ips: [{ address: '203.0.113.40', hostname: 'new.example.test', warmup: { preset: 'conservative-45d' } }, { address: '203.0.113.41', hostname: 'warm.example.test' }] },
    });
    await reconciledAt('warm', 2);
    await waitFor('the new plan in the relay config', async () => ((await relayConfig()).shaping.warmup[0]!.plan!.steps![0]!.dailyLimit === 200 ? true : undefined));
    assert.equal(await templateHash(), hash, 'a warm-up change does not restart the relay');
  } finally {
    clockOffsetMs = 0;
  }
});
