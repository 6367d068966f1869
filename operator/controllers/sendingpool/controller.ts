// SendingPool reconciler. Steps, in order:
//   ensureValidSpec      – the zod schema (what CEL could not say) → InvalidSpec
//   ensureReferences     – Secrets the pool points at exist; a missing one does not stop the
//                          children (their pods wait for it, as with any Secret volume) but
//                          makes Ready=False SecretNotFound until it appears
//   ensureFinalizer      – only for egress kinds that are cluster-scoped (no owner refs possible)
//   ensureChildren       – server-side apply of every rendered child, owner refs on each
//   ensureNoOrphans      – delete children this pool owns that the spec no longer renders
// then the status (conditions, per-IP state, counts) is written if it changed, and Events mark
// transitions. Deletion: namespaced children go by garbage collection through their owner
// references; the finalizer path removes cluster-scoped CiliumEgressGatewayPolicies.
import {
  parseSendingPool,
  parseMailDomainCached,
  setCondition,
  findCondition,
  type SendingPool,
  type MailDomain,
  type Condition,
  type PoolIpStatus,
} from '../../api/index.ts';
import {
  renderPoolChildren,
  isClusterScoped,
  summarizePoolStatus,
  relayName,
  LABEL_POOL,
  ANNOTATION_CONFIG_HASH,
  shortHash,
  RenderError,
  signingKeys,
  heldRollouts,
  type CachedStatefulSet,
  type RenderedObject,
} from '../../render/index.ts';
import type { ControllerDefinition, Caches } from '../../runtime/manager.ts';
import { writeStatus } from '../../runtime/status.ts';
import { OwnWrites } from '../../runtime/echoes.ts';
import { isStatus, type KubeObject } from '../../runtime/kube.ts';
import { ipWarmupStatus } from '../../render/warmup.ts';
import { configVersion } from '../../../relay/config/version.ts';
import { configKey } from '../../render/names.ts';
import {
  Blocked,
  runSteps,
  meta,
  ownedBy,
  POOL,
  DOMAIN,
  SECRET,
  STATEFULSET,
  WATCHED_CHILDREN,
  rfc3339,
  type ControllerDeps,
  type Step,
} from '../common.ts';

export const POOL_FINALIZER = 'mailfleet.io/cluster-scoped-children';

interface PoolCtx {
  deps: ControllerDeps;
  caches: Caches;
  raw: KubeObject;
  pool: SendingPool;
  domains: MailDomain[];
  desired: RenderedObject[];
  applied: number;
  pruned: string[];
  /** A referenced Secret that does not exist (field path and message). */
  missing?: { reason: string; message: string };
  /** StatefulSets whose restart waits for another relay of the pool to be updated and Ready. */
  held?: string[];
}

const needsFinalizer = (pool: SendingPool) => pool.spec.egress.mode === 'ciliumEgressGateway';

const ensureReferences: Step<PoolCtx> = {
  name: 'ensureReferences',
  async run(ctx) {
    const { deps, pool } = ctx;
    const ns = pool.metadata.namespace ?? '';
    const refs: Array<[string, string | undefined]> = [
      ['spec.submission.tlsSecretRef.name', pool.spec.submission.tlsSecretRef?.name],
      ['spec.submission.authSecretRef.name', pool.spec.submission.authSecretRef?.name],
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

const ensureFinalizer: Step<PoolCtx> = {
  name: 'ensureFinalizer',
  async run({ deps, raw, pool }) {
    if (!needsFinalizer(pool)) return;
    const fins = raw.metadata?.finalizers ?? [];
    if (fins.includes(POOL_FINALIZER)) return;
    const m = meta(raw);
    // Merge patch with the resourceVersion: fails (409) rather than clobbering a concurrent change.
    const updated = await deps.kube.mergePatch(
      { ...POOL, namespace: m.namespace, name: m.name },
      { metadata: { finalizers: [...fins, POOL_FINALIZER], resourceVersion: raw.metadata?.resourceVersion } },
    );
    raw.metadata = updated.metadata;
  },
};

// Applied before the rest, in order: what the relay pods mount or attach to.
const FIRST = new Set(['ConfigMap', 'NetworkAttachmentDefinition']);

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
  return covers(cached, rest);
}

const ensureChildren: Step<PoolCtx> = {
  name: 'ensureChildren',
  async run(ctx) {
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
        if (isStatus(err, 404) || /not served by this cluster/.test(String(err))) {
          throw new Blocked(
            'EgressUnavailable',
            `spec.egress.mode: ${ctx.pool.spec.egress.mode} needs ${child.apiVersion} ${child.kind}, which this cluster does not serve; install that add-on or choose another mode`,
            { requeueAfterMs: ctx.deps.refRecheckMs },
          );
        }
        throw err;
      }
      ctx.applied++;
    };
    for (const child of ctx.desired.filter((c) => FIRST.has(c.kind))) await apply(child);
    // Restarts roll one relay at a time (operator/render/rollout.ts); the others wait their turn.
    const ns = ctx.pool.metadata.namespace ?? '';
    ctx.held = heldRollouts(ctx.desired, (n) => ctx.caches.get(STATEFULSET, ns, n) as CachedStatefulSet | undefined);
    if (ctx.held.length > 0) ctx.deps.log.info({ pool: `${ns}/${ctx.pool.metadata.name}`, waiting: ctx.held }, 'relay restarts roll one at a time; these wait');
    const held = new Set(ctx.held);
    // The others do not depend on each other: one round trip instead of one per child (a pool
    // with many IPs has a StatefulSet per IP). Every apply is awaited before the first failure
    // is reported, so none is left running past the reconcile.
    const results = await Promise.allSettled(ctx.desired.filter((c) => !FIRST.has(c.kind) && !(c.kind === 'StatefulSet' && held.has(c.metadata.name))).map(apply));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  },
};

const ensureNoOrphans: Step<PoolCtx> = {
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
        if (want.has(id)) continue;
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

/** Finalizer path: remove cluster-scoped children, then let the pool go. */
async function finalize(deps: ControllerDeps, raw: KubeObject): Promise<void> {
  const fins = raw.metadata?.finalizers ?? [];
  if (!fins.includes(POOL_FINALIZER)) return;
  const m = meta(raw);
  for (const o of await listClusterScoped(deps, { metadata: { name: m.name, namespace: m.namespace } })) {
    await deps.kube.delete({ apiVersion: 'cilium.io/v2', kind: 'CiliumEgressGatewayPolicy', name: o.metadata!.name! });
  }
  await deps.kube.mergePatch(
    { ...POOL, namespace: m.namespace, name: m.name },
    { metadata: { finalizers: fins.filter((f) => f !== POOL_FINALIZER), resourceVersion: raw.metadata?.resourceVersion } },
  );
  deps.log.info({ pool: `${m.namespace}/${m.name}` }, 'cluster-scoped children removed; finalizer released');
}

/** Per-IP status, and when the earliest warm-up stage changes next (a day boundary no event announces). */
function ipStatuses(caches: Caches, pool: SendingPool, prev: PoolIpStatus[] | undefined, now: Date, desired: readonly RenderedObject[] = []): { ips: PoolIpStatus[]; nextWarmupChange?: Date } {
  const configs = (desired.find((o) => o.kind === 'ConfigMap')?.['data'] ?? {}) as Record<string, string>;
  const ns = pool.metadata.namespace ?? '';
  let nextWarmupChange: Date | undefined;
  const ips = pool.spec.ips.map((ip) => {
    const name = relayName(pool, ip.address);
    const sts = caches.get(STATEFULSET, ns, name) as { status?: { readyReplicas?: number } } | undefined;
    const ready = (sts?.status?.readyReplicas ?? 0) >= 1;
    const old = prev?.find((p) => p.address === ip.address);
    const s: PoolIpStatus = { ...(old ?? {}), address: ip.address, pod: `${name}-0`, state: 'Pending' };
    const yaml = configs[configKey(ip.address)];
    if (yaml !== undefined) s.configVersion = configVersion(yaml);
    // Warm-up: relay/warmup/plan.ts through operator/render/warmup.ts, whatever the pod's state.
    // Hook: pass the IP's `warmup` from its relay's /v1/stats as the last argument once the
    // operator reads relay stats; until then the carried state is shown (day 0 for a new IP).
    for (const k of ['warmupStartedAt', 'warmupStage', 'warmupDay', 'warmupCountedThrough', 'quotaToday', 'sentToday'] as const) delete s[k];
    const warm = ipWarmupStatus(ip, old, now);
    if (warm) {
      Object.assign(s, warm.fields);
      if (warm.nextChangeAt && (!nextWarmupChange || warm.nextChangeAt < nextWarmupChange)) nextWarmupChange = warm.nextChangeAt;
    }
    if (ready) s.state = old?.state === 'Paused' ? 'Paused' : warm && !warm.done ? 'WarmingUp' : 'Ready';
    if (!ready) s.message = sts ? 'relay pod not ready' : 'StatefulSet not created yet';
    else delete s.message;
    return s;
  });
  return nextWarmupChange ? { ips, nextWarmupChange } : { ips };
}

/** What the render reads of the pool's status: the warm-up state it carries into each relay config. */
function warmupRenderInputs(raw: KubeObject): unknown {
  const ips = ((raw['status'] as { ips?: PoolIpStatus[] } | undefined)?.ips ?? []).filter((i) => i.warmupCountedThrough);
  return ips.map((i) => [i.address, i.warmupDay, i.warmupCountedThrough, i.warmupStartedAt]);
}

/**
 * What a pool's render reads of one of its MailDomains (operator/render: spec, identity, and the
 * keys it signs with), as a string. A new domain's first key lands in its status under the name
 * the render already used (signingKeys falls back to the spec selector), so the status writes
 * that come with every new key change nothing here, and neither re-queue the pool nor re-render it.
 */
export function domainRenderInputs(d: KubeObject): string {
  let keys: unknown;
  try {
    keys = signingKeys(d as unknown as MailDomain);
  } catch {
    // Not shaped like a MailDomain (parsing will say so): fall back to the raw selectors.
    keys = (d['status'] as { selectors?: unknown } | undefined)?.selectors;
  }
  return JSON.stringify([d.metadata?.name, d.metadata?.uid, d.metadata?.deletionTimestamp ?? null, d['spec'], keys]);
}

export function sendingPoolController(deps: ControllerDeps): ControllerDefinition {
  // Per MailDomain: the pool it last pointed at and what of it the pool's config depends on, so a
  // domain moving pools re-queues both, and DNS re-checks (status.lastCheckedAt) re-queue none.
  const seen = new Map<string, { pool: string; signature: string }>();
  // Per pool: the inputs of the last successful render and what they gave.
  const rendered = new Map<string, { inputs: string; pool: SendingPool; domains: MailDomain[]; desired: RenderedObject[]; pruned?: boolean }>();
  const echoes = new OwnWrites();

  return {
    echoes,
    resource: POOL,
    owns: WATCHED_CHILDREN,
    watches: [
      {
        ...DOMAIN,
        // A pool's domains change in bursts (ten new keys, one status write each): collect a
        // second's worth into one reconcile instead of applying every child ten times.
        delayMs: 1000,
        map: (o, _caches, event) => {
          const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
          const spec = (o['spec'] ?? {}) as { poolRef?: { name?: string } };
          const pool = `${o.metadata?.namespace ?? ''}/${spec.poolRef?.name ?? ''}`;
          const signature = domainRenderInputs(o);
          const prev = seen.get(key);
          if (event === 'delete') {
            seen.delete(key);
            return prev && prev.pool !== pool ? [prev.pool, pool] : [pool];
          }
          seen.set(key, { pool, signature });
          if (prev && prev.pool === pool && prev.signature === signature) return [];
          return prev && prev.pool !== pool ? [prev.pool, pool] : [pool];
        },
      },
    ],
    // Pools are re-queued by every change of one of their MailDomains' keys; with 2 workers they
    // fell behind the domains at 1,000 MailDomains.
    workers: 4,
    reconcile: async (namespace, name, caches) => {
      const raw = caches.get(POOL, namespace, name);
      if (!raw) {
        rendered.delete(`${namespace}/${name}`);
        return;
      }
      if (raw.metadata?.deletionTimestamp) {
        await finalize(deps, raw);
        return;
      }
      const m = meta(raw);
      const now = deps.now();
      // Only this pool's domains are parsed: with 1,000 MailDomains over 100 pools, running zod
      // over the whole namespace on every pool reconcile is a hundred times the work.
      const rawDomains = caches
        .list(DOMAIN, namespace)
        .filter((d) => (d['spec'] as { poolRef?: { name?: string } } | undefined)?.poolRef?.name === name);
      // Everything parsing and rendering read; the same inputs render the same children (render is
      // pure), so most reconciles (a StatefulSet's status moved, a resync) reuse the last result.
      const inputs = [JSON.stringify([raw.metadata?.uid, raw['spec'], warmupRenderInputs(raw)]), ...rawDomains.map(domainRenderInputs)].join('\n');
      const memo = rendered.get(`${namespace}/${name}`);
      let parsed: ReturnType<typeof parseSendingPool>;
      let blocked: Blocked | undefined;
      let ctx: PoolCtx | undefined;
      if (memo?.inputs === inputs) parsed = { ok: true, value: memo.pool };
      else parsed = parseSendingPool(raw);
      if (!parsed.ok) {
        blocked = new Blocked('InvalidSpec', parsed.problems.join('; '), { invalid: true });
      } else {
        const pool = parsed.value;
        let domains: MailDomain[] = memo?.inputs === inputs ? memo.domains : [];
        let desired: RenderedObject[] = memo?.inputs === inputs ? memo.desired : [];
        if (memo?.inputs !== inputs) {
          domains = rawDomains.map((d) => parseMailDomainCached(d)).flatMap((r) => (r.ok ? [r.value] : []));
          try {
            desired = renderPoolChildren(pool, domains, deps.render);
            rendered.set(`${namespace}/${name}`, { inputs, pool, domains, desired });
          } catch (err) {
            if (!(err instanceof RenderError)) throw err;
            blocked = new Blocked('InvalidSpec', err.message, { invalid: true });
          }
        }
        if (!blocked) {
          ctx = { deps, caches, raw, pool, domains, desired, applied: 0, pruned: [] };
          // Orphans appear only when what is rendered changes: after a clean prune of these same
          // inputs, scanning every cached child of the namespace again finds nothing.
          const prunedAlready = memo?.inputs === inputs && memo.pruned;
          blocked = await runSteps([ensureReferences, ensureFinalizer, ensureChildren, ...(prunedAlready ? [] : [ensureNoOrphans])], ctx);
          const entry = rendered.get(`${namespace}/${name}`);
          if (!blocked && entry?.inputs === inputs) entry.pruned = true;
        }
      }

      const pool = parsed.ok ? parsed.value : undefined;
      let nextWarmupChange: Date | undefined;
      let readyBefore: Condition | undefined;
      let reconciledBefore: Condition | undefined;
      const result = await writeStatus(
        deps.kube,
        raw,
        (cur) => {
          const prev = (cur['status'] ?? {}) as NonNullable<SendingPool['status']>;
          readyBefore = findCondition(prev.conditions, 'Ready');
          reconciledBefore = findCondition(prev.conditions, 'Reconciled');
          // The generation this reconcile acted on, not the fresh copy's: a conflict retry must not
          // claim a newer spec was handled (its own event re-queues it).
          const gen = m.generation;
          let conds = prev.conditions ?? [];
          const next: NonNullable<SendingPool['status']> = { ...prev, observedGeneration: gen };
          if (blocked) {
            conds = setCondition(conds, { type: 'Reconciled', status: 'False', reason: blocked.reason, message: blocked.message, observedGeneration: gen }, now);
            conds = setCondition(conds, { type: 'Ready', status: 'False', reason: blocked.reason, message: blocked.message, observedGeneration: gen }, now);
          } else if (pool) {
            const computed = ipStatuses(caches, pool, prev.ips, now, ctx?.desired);
            const ips = computed.ips;
            nextWarmupChange = computed.nextWarmupChange;
            next.ips = ips;
            // Rates are the health loop's to measure; keep what it last wrote.
            const sum = summarizePoolStatus(ips);
            Object.assign(next, sum, { summary: { ...prev.summary, ...sum.summary } });
            const ready = sum.readyIPs ?? 0;
            const cm = ctx?.desired.find((o) => o.kind === 'ConfigMap');
            if (cm) next.configHash = cm.metadata.annotations?.[ANNOTATION_CONFIG_HASH] ?? shortHash(JSON.stringify(cm['data'] ?? {}));
            conds = setCondition(conds, { type: 'Reconciled', status: 'True', reason: 'ChildrenApplied', message: `${ctx?.desired.length ?? 0} children applied`, observedGeneration: gen }, now);
            conds = setCondition(
              conds,
              ctx?.missing
                ? { type: 'Ready', status: 'False', reason: ctx.missing.reason, message: ctx.missing.message, observedGeneration: gen }
                : ready === ips.length
                ? { type: 'Ready', status: 'True', reason: 'RelaysReady', message: `${ready}/${ips.length} relays ready`, observedGeneration: gen }
                : { type: 'Ready', status: 'False', reason: 'RelaysNotReady', message: `${ready}/${ips.length} relays ready`, observedGeneration: gen },
              now,
            );
            if (!findCondition(conds, 'Degraded')) {
              conds = setCondition(conds, { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no health problem reported', observedGeneration: gen }, now);
            }
          }
          next.conditions = conds;
          return next;
        },
        { onConflict: () => deps.metrics.statusConflicts.inc({ kind: 'SendingPool' }), echoes },
      );

      // Events on transitions only: a settled pool that is resynced says nothing.
      const readyNow = findCondition(result.status?.conditions, 'Ready');
      if (blocked) {
        if (!readyBefore || readyBefore.reason !== blocked.reason || readyBefore.message !== blocked.message) {
          deps.events.emit(raw, 'Warning', blocked.reason, blocked.message);
          deps.log.warn({ pool: `${namespace}/${name}`, reason: blocked.reason, message: blocked.message }, 'pool not reconciled');
        }
      } else {
        // A new generation applied, or a blocked one that now went through.
        if (ctx && (reconciledBefore?.status !== 'True' || reconciledBefore.observedGeneration !== m.generation)) {
          deps.events.emit(raw, 'Normal', 'Reconciled', `generation ${m.generation}: ${ctx.applied} children applied${ctx.pruned.length ? `, removed ${ctx.pruned.join(', ')}` : ''}`);
        } else if (ctx?.pruned.length) {
          deps.events.emit(raw, 'Normal', 'Pruned', `removed ${ctx.pruned.join(', ')}`);
        }
        if (readyNow?.status === 'True' && readyBefore?.status !== 'True') deps.events.emit(raw, 'Normal', 'Ready', readyNow.message);
        const missing = ctx?.missing;
        if (missing && (readyBefore?.reason !== missing.reason || readyBefore.message !== missing.message)) {
          deps.events.emit(raw, 'Warning', missing.reason, missing.message);
        }
      }
      if (blocked) return { invalid: blocked.invalid, ...(blocked.requeueAfterMs ? { requeueAfterMs: blocked.requeueAfterMs } : {}) };
      // Secrets outside the operator's cache raise no event here: look again later. Nor does a
      // warm-up day ending: come back at the boundary to move the stage and quota on.
      const waits = [
        ...(ctx?.missing ? [deps.refRecheckMs] : []),
        // The StatefulSet being rolled announces its progress by watch events; this is the backstop.
        ...(ctx?.held?.length ? [5000] : []),
        ...(nextWarmupChange ? [Math.max(1000, nextWarmupChange.getTime() - now.getTime())] : []),
      ];
      return waits.length > 0 ? { requeueAfterMs: Math.min(...waits) } : {};
    },
  };
}
