// Shared by the operator cluster suites: one real control plane per test file (test/cluster),
// the CRDs from crds/, and bounded polling helpers (wait for a condition, never a fixed sleep).
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../cluster/cluster.ts';
import { Kube, isStatus, type KubeObject } from '../../operator/runtime/kube.ts';
import { runOperator, type OperatorOptions, type RunningOperator } from '../../operator/main.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
// Lets a developer try the suites against CRDs from elsewhere (e.g. a work-in-progress generator).
export const CRD_DIR = process.env.MAILFLEET_TEST_CRDS ?? join(ROOT, 'crds');

export interface Env {
  cluster: Cluster;
  kube: Kube;
  kubeconfig: string;
}

/** Starts a control plane, or returns why it cannot (the caller skips its tests with that text). */
export async function clusterEnv(): Promise<Env | { skipped: string }> {
  const cluster = await startCluster();
  if ('skipped' in cluster) return cluster;
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  return { cluster, kube: new Kube(kc), kubeconfig: cluster.kubeconfig };
}

export async function readYamlDocs(path: string): Promise<KubeObject[]> {
  const text = await readFile(path, 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((d): d is KubeObject => !!d && typeof d === 'object');
}

export async function crdFiles(): Promise<string[]> {
  return (await readdir(CRD_DIR)).filter((f) => f.endsWith('.yaml')).map((f) => join(CRD_DIR, f));
}

/** Applies crds/*.yaml and waits until each is Established (served). */
export async function installCrds(kube: Kube): Promise<KubeObject[]> {
  const crds: KubeObject[] = [];
  for (const f of await crdFiles()) crds.push(...(await readYamlDocs(f)));
  for (const crd of crds) await kube.apply(crd as never);
  for (const crd of crds) {
    await waitFor(`CRD ${crd.metadata?.name} Established`, async () => {
      const cur = await kube.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(
        'apiextensions.k8s.io/v1',
        'CustomResourceDefinition',
        undefined,
        crd.metadata!.name!,
      );
      return cur.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
  }
  return crds;
}

export async function createNamespace(kube: Kube, name: string): Promise<void> {
  try {
    await kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  } catch (err) {
    if (!isStatus(err, 409)) throw err;
  }
}

/**
 * Polls `fn` until it returns a truthy value (returned) or the deadline passes (throws with the
 * last value or error seen, so a failing test says what it was waiting for and what it saw).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 2000);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last saw: ${seen}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export function condition(obj: KubeObject | undefined, type: string): Cond | undefined {
  const st = obj?.['status'] as { conditions?: Cond[] } | undefined;
  return st?.conditions?.find((c) => c.type === type);
}

export async function events(kube: Kube, namespace: string, name: string): Promise<Array<{ reason: string; message: string; type: string; count?: number }>> {
  const list = await kube.list<KubeObject & { reason: string; message: string; type: string; involvedObject: { name: string } }>('v1', 'Event', namespace);
  return list.items.filter((e) => e.involvedObject.name === name);
}

export function samplePool(name: string, namespace: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'SendingPool',
    metadata: { name, namespace },
    spec: {
      ips: [
        { address: '203.0.113.7', hostname: 'mta1.example.test' },
        { address: '203.0.113.8', hostname: 'mta2.example.test' },
      ],
      submission: { ports: [{ name: 'submission', port: 587, tls: 'none' }] },
      ...extra,
    },
  };
}

export function sampleDomain(name: string, namespace: string, domain: string, pool: string): KubeObject {
  return {
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'MailDomain',
    metadata: { name, namespace },
    spec: { domain, poolRef: { name: pool } },
  };
}

export const POOL_REF = { apiVersion: 'mailfleet.io/v1alpha1', kind: 'SendingPool' };
export const DOMAIN_REF = { apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain' };

/** Every object of the kinds a pool owns, in one namespace, as "Kind/name". */
export async function childrenOf(kube: Kube, namespace: string, poolName: string): Promise<string[]> {
  const kinds: Array<[string, string]> = [
    ['v1', 'ConfigMap'],
    ['v1', 'Service'],
    ['apps/v1', 'StatefulSet'],
    ['policy/v1', 'PodDisruptionBudget'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
  ];
  const out: string[] = [];
  for (const [v, k] of kinds) {
    const list = await kube.list(v, k, namespace, `mailfleet.io/pool=${poolName}`);
    for (const o of list.items) out.push(`${k}/${o.metadata?.name}`);
  }
  return out.sort();
}

/**
 * The CRDs, the namespaces, and the operator in-process (no leader election, any metrics port,
 * DNS pointed nowhere, quick re-checks); `opts` overrides any of it.
 */
export async function operatorOn(e: Env, namespaces: string[], opts: OperatorOptions = {}): Promise<RunningOperator> {
  await installCrds(e.kube);
  for (const ns of namespaces) await createNamespace(e.kube, ns);
  return runOperator({
    kubeconfig: e.kubeconfig,
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    refRecheckMs: 300,
    dnsServers: ['127.0.0.1:9'],
    ...opts,
  });
}

/**
 * Stand-ins for the egress add-ons' CRDs (they cannot run here): the real group, kind and scope,
 * any content accepted. Installing and deleting them is how the suites add and remove an add-on.
 */
function standIn(group: string, kind: string, plural: string, scope: 'Cluster' | 'Namespaced', version: string): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: { plural, singular: plural.replace(/s$/, ''), kind, listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  } as KubeObject;
}
export const CILIUM_CRD = standIn('cilium.io', 'CiliumEgressGatewayPolicy', 'ciliumegressgatewaypolicies', 'Cluster', 'v2');
export const NAD_CRD = standIn('k8s.cni.cncf.io', 'NetworkAttachmentDefinition', 'network-attachment-definitions', 'Namespaced', 'v1');
