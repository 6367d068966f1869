// The SendingPool reconciler's steps (the CloudNativePG shape: each does its part or stops the
// reconcile with a reason) and the finalizer path. Run in order by controller.ts:
//   ensureReferences – Secrets the pool points at exist; a missing one does not stop the
//                      children (their pods wait for it) but makes Ready=False SecretNotFound
//   ensureFinalizer  – mailfleet.io/drain (deletion drains the relays first) unless the pool is
//                      annotated delete-immediately; the cluster-scoped-children one for Cilium
//   ensureReturnPathKeys (return-path-keys.ts) – the return-path keys Secret exists and is rotated
//   ensureChildren   – server-side apply: ConfigMap, egress objects (none → no relay at all,
//                      EgressUnavailable), the rest, then the relay StatefulSets one restart at a time
//   ensureNoOrphans  – delete children this pool owns that are no longer rendered
import { ensureApiTokenSecret } from '../../observe/token.ts';
import { apiTokenSecretName } from '../../render/names.ts';
import type { SendingPool, MailDomain } from '../../api/index.ts';
import {
  domainsOfPool,
  isClusterScoped,
  heldRollouts,
  isSettled,
  LABEL_POOL,
  ANNOTATION_DELETE_IMMEDIATELY,
  ANNOTATION_TEMPLATE_HASH,
  type CachedStatefulSet,
  type RenderedObject,
} from '../../render/index.ts';
import type { Caches } from '../../runtime/manager.ts';
import { isStatus, type KubeObject } from '../../runtime/kube.ts';
import type { Rollout } from './status.ts';
import { Blocked, meta, ownedBy, POOL, SECRET, STATEFULSET, WATCHED_CHILDREN, type ControllerDeps, type Step } from '../common.ts';

export const POOL_FINALIZER = 'mailfleet.io/cluster-scoped-children';
/** Held while a deleted pool's relays drain (deliver what they hold); not set with delete-immediately. */
export const DRAIN_FINALIZER = 'mailfleet.io/drain';

export const deleteImmediately = (raw: KubeObject) => raw.metadata?.annotations?.[ANNOTATION_DELETE_IMMEDIATELY] === 'true';

export interface PoolCtx {
  deps: ControllerDeps;
  caches: Caches;
  raw: KubeObject;
  pool: SendingPool;
  /** The Secrets the pool's MailDomains name (domainSecretRefs), checked by ensureReferences. */
  domainRefs: DomainSecretRef[];
  desired: RenderedObject[];
  applied: number;
  pruned: string[];
  /** A referenced Secret that does not exist (field path and message). */
  missing?: { reason: string; message: string };
  /** Relay restarts waiting for another relay to be serving again. */
  rollout?: Rollout;
  /** StatefulSets of draining relays: outside the rollout budget (not serving by design). */
  draining: Set<string>;
  /** Relay StatefulSets that cannot be rendered again: never pruned. */
  held: Set<string>;
}

const needsFinalizer = (pool: SendingPool) => pool.spec.egress.mode === 'ciliumEgressGateway';

/** The relays' HTTP API token Secret (operator/observe/token.ts): created once, never changed here. */
export const ensureApiToken: Step<PoolCtx> = {
  name: 'ensureApiToken',
  async run(ctx) {
    if (ctx.caches.get(SECRET, ctx.pool.metadata.namespace ?? '', apiTokenSecretName(ctx.pool))) return;
    await ensureApiTokenSecret(ctx.deps.kube, ctx.pool);
  },
};

/** A Secret a MailDomain names, as [field path, Secret name]. */
export type DomainSecretRef = [string, string | undefined];

/** The Secrets the pool's MailDomains name: the relays mount each domain's webhook key, so a missing one holds their pods too. */
export function domainSecretRefs(pool: SendingPool, domains: readonly MailDomain[]): DomainSecretRef[] {
  return domainsOfPool(pool, domains).flatMap((d): DomainSecretRef[] => (d.spec.webhook ? [[`MailDomain ${d.metadata.name} spec.webhook.secretRef.name`, d.spec.webhook.secretRef.name]] : []));
}

export const ensureReferences: Step<PoolCtx> = {
  name: 'ensureReferences',
  async run(ctx) {
    const { deps, pool } = ctx;
    const ns = pool.metadata.namespace ?? '';
    const refs: Array<[string, string | undefined]> = [
      ['spec.submission.tlsSecretRef.name', pool.spec.submission.tlsSecretRef?.name],
      ['spec.submission.authSecretRef.name', pool.spec.submission.authSecretRef?.name],
      ['spec.feedback.postgres.secretRef.name', pool.spec.feedback?.postgres?.secretRef.name],
      ['spec.feedback.unsubscribe.tlsSecretRef.name', pool.spec.feedback?.unsubscribe?.tlsSecretRef.name],
      ...ctx.domainRefs,
    ];
    for (const [field, name] of refs) {
      if (!name) continue;
      // Read from the API, not the cache: user Secrets are not in the operator's (labelled) cache.
      const s = await deps.kube.find(SECRET.apiVersion, SECRET.kind, ns, name);
      if (!s) {
        ctx.missing = { reason: 'SecretNotFound', message: `${field}: Secret "${name}" not found in namespace ${ns}; the relays wait for it` };
        return;
      }
    }
  },
};

export const ensureFinalizer: Step<PoolCtx> = {
  name: 'ensureFinalizer',
  async run({ deps, raw, pool }) {
    // No finalizer may be added once deletion has begun.
    if (raw.metadata?.deletionTimestamp) return;
    const fins = raw.metadata?.finalizers ?? [];
    const want = [
      ...(needsFinalizer(pool) ? [POOL_FINALIZER] : []),
      // Deleting the pool drains its relays first, unless the pool says not to.
      ...(deleteImmediately(raw) ? [] : [DRAIN_FINALIZER]),
    ];
    // An annotation added later takes the drain finalizer away again.
    const next = [...fins.filter((f) => f !== DRAIN_FINALIZER || want.includes(f)), ...want.filter((f) => !fins.includes(f))];
    if (next.length === fins.length && next.every((f) => fins.includes(f))) return;
    const m = meta(raw);
    // Merge patch with the resourceVersion: fails (409) rather than clobbering a concurrent change.
    const updated = await deps.kube.mergePatch(
      { ...POOL, namespace: m.namespace, name: m.name },
      { metadata: { finalizers: next, resourceVersion: raw.metadata?.resourceVersion } },
    );
    raw.metadata = updated.metadata;
  },
};

// The egress objects: they must exist before any relay that would send through them.
const EGRESS_KINDS = new Set(['NetworkAttachmentDefinition', 'CiliumEgressGatewayPolicy']);

/** Thrown by the egress checks; the StatefulSets are held back (or scaled to zero), then it becomes Blocked. */
class EgressMissing extends Error {}

/**
 * multus with networkName: the NetworkAttachmentDefinition is the user's, so it is not applied;
 * without it (or without its CRD) the pods would start on the pod network alone.
 */
async function checkReferencedNetwork(ctx: PoolCtx): Promise<void> {
  const m = ctx.pool.spec.egress.multus;
  if (ctx.pool.spec.egress.mode !== 'multus' || !m?.networkName) return;
  const ns = ctx.pool.metadata.namespace ?? '';
  const base = `/apis/k8s.cni.cncf.io/v1/namespaces/${encodeURIComponent(ns)}/network-attachment-definitions`;
  try {
    await ctx.deps.kube.request('GET', `${base}/${encodeURIComponent(m.networkName)}`);
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
    // A 404 Status with details names a missing object; a bare 404 is a missing API (no CRD).
    const served = (err as { reason?: string }).reason === 'NotFound';
    throw new EgressMissing(
      served
        ? `spec.egress.multus.networkName: NetworkAttachmentDefinition "${m.networkName}" not found in namespace ${ns}; create it (no relay starts without its egress network)`
        : `spec.egress.mode: multus needs k8s.cni.cncf.io/v1 NetworkAttachmentDefinition, which this cluster does not serve; install Multus or choose another mode`,
    );
  }
}

/**
 * Whether `actual` already has every field of `desired` with the same value (fields the apiserver
 * or others added are ignored). Used to skip a server-side apply that would change nothing: a
 * pool is re-queued by every key change of each of its MailDomains, and sending all its children
 * each time was half of the operator's API requests at 1,000 domains. A mismatch only means
 * "apply", so anything the apiserver normalises differently costs a request, never correctness.
 */
export function covers(actual: unknown, desired: unknown): boolean {
  if (desired === null || typeof desired !== 'object') return actual === desired;
  if (Array.isArray(desired)) return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => covers(actual[i], d));
  if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return false;
  const a = actual as Record<string, unknown>;
  return Object.entries(desired).every(([k, v]) => v === undefined || covers(a[k], v));
}

const CACHED_KINDS = new Set(WATCHED_CHILDREN.map((r) => `${r.apiVersion}/${r.kind}`));

/** The cached child (watched kinds only) already matches what was rendered. */
function unchanged(caches: Caches, child: RenderedObject): boolean {
  if (!CACHED_KINDS.has(`${child.apiVersion}/${child.kind}`)) return false;
  const cached = caches.get({ apiVersion: child.apiVersion, kind: child.kind }, child.metadata.namespace ?? '', child.metadata.name);
  if (!cached) return false;
  // List items carry no apiVersion/kind; everything below them is compared.
  const { apiVersion: _v, kind: _k, ...rest } = child;
  // A ConfigMap key the render no longer has (a drained relay's config) is drift too.
  if (child.kind === 'ConfigMap') {
    const had = Object.keys((cached['data'] as object | undefined) ?? {});
    if (had.length !== Object.keys((child['data'] as object | undefined) ?? {}).length) return false;
  }
  return covers(cached, rest);
}

export const ensureChildren: Step<PoolCtx> = {
  name: 'ensureChildren',
  async run(ctx) {
    const ns = ctx.pool.metadata.namespace ?? '';
    const apply = async (child: RenderedObject) => {
      if (unchanged(ctx.caches, child)) {
        ctx.applied++;
        return;
      }
      try {
        await ctx.deps.kube.apply(child);
      } catch (err) {
        // A CRD-backed egress kind that the cluster does not have: the spec asks for an egress
        // mode whose networking add-on is not installed.
        if (EGRESS_KINDS.has(child.kind) && (isStatus(err, 404) || /not served by this cluster/.test(String(err)))) {
          throw new EgressMissing(
            `spec.egress.mode: ${ctx.pool.spec.egress.mode} needs ${child.apiVersion} ${child.kind}, which this cluster does not serve; install that add-on or choose another mode`,
          );
        }
        throw err;
      }
      ctx.applied++;
    };
    const settle = async (children: RenderedObject[]) => {
      // Independent of each other: one round trip instead of one per child. Every apply is
      // awaited before the first failure is reported, so none is left running past the reconcile.
      const results = await Promise.allSettled(children.map(apply));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    };
    // What the relay pods mount first, then what they send through: a relay never starts before
    // its egress exists (it would send from the node's address, which no SPF record lists).
    for (const child of ctx.desired.filter((c) => c.kind === 'ConfigMap')) await apply(child);
    let egressMissing: string | undefined;
    try {
      for (const child of ctx.desired.filter((c) => EGRESS_KINDS.has(c.kind))) await apply(child);
      await checkReferencedNetwork(ctx);
    } catch (err) {
      if (!(err instanceof EgressMissing)) throw err;
      egressMissing = err.message;
    }
    await settle(ctx.desired.filter((c) => c.kind !== 'ConfigMap' && c.kind !== 'StatefulSet' && !EGRESS_KINDS.has(c.kind)));

    const sets = ctx.desired.filter((c) => c.kind === 'StatefulSet');
    const cachedSet = (name: string) => ctx.caches.get(STATEFULSET, ns, name) as (KubeObject & CachedStatefulSet) | undefined;
    if (egressMissing) {
      // Relays that already run (the add-on was removed under them) are scaled to zero: their
      // queue stays on its volume, and nothing sends from the wrong address. None is created.
      const zero = sets
        .filter((c) => cachedSet(c.metadata.name))
        .map((c) => ({ ...c, spec: { ...(c['spec'] as object), replicas: 0 } }) as RenderedObject);
      await settle(zero);
      throw new Blocked('EgressUnavailable', egressMissing, { requeueAfterMs: ctx.deps.refRecheckMs });
    }
    // Draining relays are not serving by design: applied at once, outside the one-at-a-time budget.
    await settle(sets.filter((c) => ctx.draining.has(c.metadata.name)));
    const serving = sets.filter((c) => !ctx.draining.has(c.metadata.name));
    // Restarts roll one relay at a time (operator/render/rollout.ts); the others wait their turn.
    const held = new Set(heldRollouts(serving, cachedSet));
    await settle(serving.filter((c) => !held.has(c.metadata.name)));
    if (held.size > 0) {
      const hash = (o: { metadata?: { annotations?: Record<string, string> } } | undefined) => o?.metadata?.annotations?.[ANNOTATION_TEMPLATE_HASH];
      const updating = serving
        .filter((c) => !held.has(c.metadata.name))
        .filter((c) => {
          const cur = cachedSet(c.metadata.name);
          return cur !== undefined && (!isSettled(cur) || hash(cur) !== hash(c));
        })
        .map((c) => c.metadata.name);
      ctx.rollout = { updating: updating.join(', '), waiting: held.size };
      ctx.deps.log.info({ pool: `${ns}/${ctx.pool.metadata.name}`, waiting: [...held] }, 'relay restarts roll one at a time; these wait');
    }
  },
};

export const ensureNoOrphans: Step<PoolCtx> = {
  name: 'ensureNoOrphans',
  async run(ctx) {
    const { deps, caches, pool, desired } = ctx;
    const ns = pool.metadata.namespace ?? '';
    const want = new Set(desired.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const ref of WATCHED_CHILDREN) {
      for (const o of caches.list(ref, ns)) {
        if (o.metadata?.labels?.[LABEL_POOL] !== pool.metadata.name) continue;
        if (!ownedBy(o, { uid: pool.metadata.uid ?? '' })) continue;
        const id = `${ref.kind}/${o.metadata?.name}`;
        if (want.has(id) || (ref.kind === 'StatefulSet' && ctx.held.has(o.metadata?.name ?? ''))) continue;
        await deps.kube.delete({ ...ref, namespace: ns, name: o.metadata!.name! });
        ctx.pruned.push(id);
      }
    }
    if (needsFinalizer(pool)) {
      const keep = new Set(desired.filter(isClusterScoped).map((o) => o.metadata.name));
      for (const o of await listClusterScoped(ctx.deps, pool)) {
        if (!keep.has(o.metadata?.name ?? '')) {
          await deps.kube.delete({ apiVersion: 'cilium.io/v2', kind: 'CiliumEgressGatewayPolicy', name: o.metadata!.name! });
          ctx.pruned.push(`CiliumEgressGatewayPolicy/${o.metadata?.name}`);
        }
      }
    }
  },
};

async function listClusterScoped(deps: ControllerDeps, pool: { metadata: { name: string; namespace?: string | undefined } }): Promise<KubeObject[]> {
  const sel = `${LABEL_POOL}=${pool.metadata.name},mailfleet.io/pool-namespace=${pool.metadata.namespace ?? 'default'}`;
  try {
    return (await deps.kube.list('cilium.io/v2', 'CiliumEgressGatewayPolicy', undefined, sel)).items;
  } catch (err) {
    if (isStatus(err, 404)) return [];
    throw err;
  }
}

/**
 * Finalizer path, once nothing is left to drain (or the pool asked for immediate deletion):
 * remove cluster-scoped children, then let the pool go (namespaced children go by garbage collection).
 */
export async function finalize(deps: ControllerDeps, raw: KubeObject): Promise<void> {
  const fins = raw.metadata?.finalizers ?? [];
  const ours = [POOL_FINALIZER, DRAIN_FINALIZER];
  if (!fins.some((f) => ours.includes(f))) return;
  const m = meta(raw);
  if (fins.includes(POOL_FINALIZER)) {
    for (const o of await listClusterScoped(deps, { metadata: { name: m.name, namespace: m.namespace } })) {
      await deps.kube.delete({ apiVersion: 'cilium.io/v2', kind: 'CiliumEgressGatewayPolicy', name: o.metadata!.name! });
    }
  }
  await deps.kube.mergePatch(
    { ...POOL, namespace: m.namespace, name: m.name },
    { metadata: { finalizers: fins.filter((f) => !ours.includes(f)), resourceVersion: raw.metadata?.resourceVersion } },
  );
  deps.log.info({ pool: `${m.namespace}/${m.name}` }, 'relays drained (or deletion was immediate); finalizers released');
}
