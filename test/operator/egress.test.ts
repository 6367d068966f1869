// Egress that is not there, on a real kube-apiserver: a pool whose egress add-on (Cilium's egress
// gateway, Multus) is missing gets no relay at all — a relay would send from the node's address,
// which no SPF record lists — and Ready=False EgressUnavailable; its relays appear once the egress
// does, and are scaled to zero if it goes away under them. The add-ons' CRDs are installed and
// removed by the test (stand-ins with the real group, kind and scope).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningOperator } from '../../operator/main.ts';
import type { KubeObject } from '../../operator/runtime/kube.ts';
import { clusterEnv, operatorOn, CILIUM_CRD, NAD_CRD, waitFor, condition, events, samplePool, POOL_REF, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'egress';
let e: Env;
let op: RunningOperator;

before(async () => {
  if (skip) return;
  e = env as Env;
  op = await operatorOn(e, [NS]);
});

after(async () => {
  await op?.stop();
  if (!skip) await e.cluster.stop();
});

async function served(path: string, yes: boolean): Promise<void> {
  await waitFor(`${path} ${yes ? '' : 'not '}served`, async () => {
    try {
      await e.kube.request('GET', path);
      return yes ? true : undefined;
    } catch {
      return yes ? undefined : true;
    }
  });
}

const getPool = (name: string) => e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, name);
const relaySets = async (pool: string) => (await e.kube.list('apps/v1', 'StatefulSet', NS, `mailfleet.io/pool=${pool}`)).items;
const replicas = (s: KubeObject) => (s['spec'] as { replicas: number }).replicas;

async function unavailable(pool: string, message: RegExp): Promise<void> {
  const c = await waitFor(`${pool} Ready=False EgressUnavailable`, async () => {
    const r = condition(await getPool(pool), 'Ready');
    return r?.reason === 'EgressUnavailable' ? r : undefined;
  });
  assert.equal(c.status, 'False');
  assert.match(c.message, message);
}

test('ciliumEgressGateway without Cilium: no relay, Ready=False; relays once the CRD is there; scaled to zero when it goes', { skip }, async () => {
  const pool = samplePool('cil', NS, { egress: { mode: 'ciliumEgressGateway', ciliumEgressGateway: { nodeSelector: { egress: 'true' } } } });
  pool.metadata!.annotations = { 'mailfleet.io/delete-immediately': 'true' };
  await e.kube.create(pool);
  await unavailable('cil', /^spec\.egress\.mode: ciliumEgressGateway needs cilium\.io\/v2 CiliumEgressGatewayPolicy, which this cluster does not serve/);
  await waitFor('a Warning Event', async () => (await events(e.kube, NS, 'cil')).find((x) => x.reason === 'EgressUnavailable' && x.type === 'Warning'));
  // Several re-checks later there is still nothing that could send from the node's address.
  const reconciles = async () => (await op.metrics.reconciles.get()).values.filter((v) => v.labels.kind === 'SendingPool').reduce((n, v) => n + v.value, 0);
  const n = await reconciles();
  await waitFor('three more re-checks', async () => ((await reconciles()) >= n + 3 ? true : undefined));
  assert.deepEqual(await relaySets('cil'), [], 'no StatefulSet while the egress is missing');
  assert.ok(await e.kube.find('v1', 'ConfigMap', NS, 'cil-relay-config'), 'the rest is there for when it appears');

  await e.kube.apply(CILIUM_CRD as never);
  await served('/apis/cilium.io/v2/ciliumegressgatewaypolicies', true);
  await waitFor('relays and their egress policies created', async () => {
    const sets = await relaySets('cil');
    const pols = await e.kube.list('cilium.io/v2', 'CiliumEgressGatewayPolicy', undefined, 'mailfleet.io/pool=cil');
    return sets.length === 2 && sets.every((s) => replicas(s) === 1) && pols.items.length === 2 ? true : undefined;
  });
  await waitFor('Ready no longer EgressUnavailable', async () => (condition(await getPool('cil'), 'Ready')?.reason === 'RelaysNotReady' ? true : undefined));

  // Cilium uninstalled under the running pool: its policies are gone, so the relays must stop.
  await e.kube.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'ciliumegressgatewaypolicies.cilium.io' });
  await served('/apis/cilium.io/v2/ciliumegressgatewaypolicies', false);
  await unavailable('cil', /CiliumEgressGatewayPolicy, which this cluster does not serve/);
  await waitFor('relays scaled to zero (queue volumes kept)', async () => {
    const sets = await relaySets('cil');
    return sets.length === 2 && sets.every((s) => replicas(s) === 0) ? true : undefined;
  });
});

test('multus naming a NetworkAttachmentDefinition that is missing: no relay until it exists', { skip }, async () => {
  await e.kube.apply(NAD_CRD as never);
  await served(`/apis/k8s.cni.cncf.io/v1/namespaces/${NS}/network-attachment-definitions`, true);
  const pool = samplePool('mul', NS, { ips: [{ address: '203.0.113.30', hostname: 'm.example.test' }], egress: { mode: 'multus', multus: { networkName: 'egress-net' } } });
  pool.metadata!.annotations = { 'mailfleet.io/delete-immediately': 'true' };
  await e.kube.create(pool);
  await unavailable('mul', /^spec\.egress\.multus\.networkName: NetworkAttachmentDefinition "egress-net" not found in namespace egress/);
  assert.deepEqual(await relaySets('mul'), []);

  await e.kube.request('POST', `/apis/k8s.cni.cncf.io/v1/namespaces/${NS}/network-attachment-definitions`, {
    body: { apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name: 'egress-net', namespace: NS }, spec: { config: '{}' } },
  });
  await waitFor('the relay created once its network exists', async () => ((await relaySets('mul')).length === 1 ? true : undefined));
  const ann = ((await relaySets('mul'))[0]!['spec'] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
  assert.match(ann['k8s.v1.cni.cncf.io/networks']!, /"name":"egress-net".*203\.0\.113\.30/);
});

test('multus without the NetworkAttachmentDefinition CRD: no relay, Ready=False naming spec.egress.mode', { skip }, async () => {
  await e.kube.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', name: 'network-attachment-definitions.k8s.cni.cncf.io' });
  await served(`/apis/k8s.cni.cncf.io/v1/namespaces/${NS}/network-attachment-definitions`, false);
  const pool = samplePool('mul2', NS, { ips: [{ address: '203.0.113.40', hostname: 'm2.example.test' }], egress: { mode: 'multus', multus: { master: 'eth1' } } });
  await e.kube.create(pool);
  await unavailable('mul2', /^spec\.egress\.mode: multus needs k8s\.cni\.cncf\.io\/v1 NetworkAttachmentDefinition/);
  assert.deepEqual(await relaySets('mul2'), []);
});
