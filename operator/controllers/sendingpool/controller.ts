// SendingPool reconciler: gathers what the steps and the status need (the pool and its domains,
// contested addresses, relays to drain and what they report), renders (cached while the inputs are
// unchanged), runs the steps (steps.ts), writes the status (status.ts, pure), and emits Events and
// requeue times. Deletion: the relays drain first (drain.ts), then the finalizer path.
import { hash } from 'node:crypto';
import { ensureUnsubscribeKey } from './unsubscribe-key.ts';
import {
  parseSendingPool,
  parseMailDomainCached,
  findCondition,
  type SendingPool,
  type MailDomain,
  type Condition,
  type PoolIp,
  type PoolIpStatus,
} from '../../api/index.ts';
import {
  renderPoolChildren,
  relayName,
  LABEL_POOL,
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_ADDRESS,
  ipKey,
  shortHash,
  RenderError,
  signingKeys,
  type RenderedObject,
} from '../../render/index.ts';
import type { ControllerDefinition, Caches } from '../../runtime/manager.ts';
import { writeStatus } from '../../runtime/status.ts';
import { OwnWrites } from '../../runtime/echoes.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { poolStatus } from './status.ts';
import { relaysToDrain } from './drain.ts';
import { drained, type ReadObservation } from '../../observe/observations.ts';
import { contestedAddresses, domainClaimant, domainClaimedBy, poolClaimant, canonicalIp, withoutAddresses, DomainNames } from '../claims.ts';
import { Blocked, runSteps, meta, ownedBy, POOL, DOMAIN, STATEFULSET, CONFIGMAP, WATCHED_CHILDREN, type ControllerDeps } from '../common.ts';
import {
  DRAIN_FINALIZER,
  deleteImmediately,
  ensureChildren,
  ensureFinalizer,
  ensureNoOrphans,
  ensureReferences,
  domainSecretRefs,
  type DomainSecretRef,
  ensureApiToken,
  finalize,
  type PoolCtx,
} from './steps.ts';
import { ensureReturnPathKeys } from './return-path-keys.ts';

export { covers, POOL_FINALIZER, DRAIN_FINALIZER } from './steps.ts';

/** spec.ips of a cached pool, unparsed (the drain decision needs it before, and without, a valid parse). */
function rawIps(raw: KubeObject): PoolIp[] {
  const ips = (raw['spec'] as { ips?: unknown } | undefined)?.ips;
  if (!Array.isArray(ips)) return [];
  return ips.flatMap((i: { address?: unknown; hostname?: unknown; weight?: unknown; nodeName?: unknown }) =>
    typeof i?.address === 'string' && typeof i.hostname === 'string'
      ? [{ address: i.address, hostname: i.hostname, weight: typeof i.weight === 'number' ? i.weight : 100, ...(typeof i.nodeName === 'string' ? { nodeName: i.nodeName } : {}) }]
      : [],
  );
}

/**
 * Pools of the other MailDomains claiming the same domain: one of them going away (or coming)
 * changes which one is signed for.
 */
function sameDomainPools(o: KubeObject, caches: Caches, names: DomainNames): string[] {
  const domain = (o['spec'] as { domain?: unknown } | undefined)?.domain;
  if (typeof domain !== 'string') return [];
  const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  return sameDomain(key, domain, caches, names).map((d) => `${d.metadata?.namespace ?? ''}/${(d['spec'] as { poolRef?: { name?: string } } | undefined)?.poolRef?.name ?? ''}`);
}

/** The other cached MailDomains naming `domain`. */
function sameDomain(key: string, domain: string, caches: Caches, names: DomainNames): KubeObject[] {
  return names.objects(key, domain, (ns, n) => caches.get(DOMAIN, ns, n));
}

function claimedElsewhere(d: KubeObject, caches: Caches, names: DomainNames): boolean {
  const self = domainClaimant(d);
  return !!self && domainClaimedBy(self, sameDomain(self.key, self.domain, caches, names).flatMap((o) => domainClaimant(o) ?? [])) !== undefined;
}

/** What the render reads of the pool's status: the warm-up state it carries into each relay config. */
function warmupRenderInputs(raw: KubeObject): unknown {
  const ips = ((raw['status'] as { ips?: PoolIpStatus[] } | undefined)?.ips ?? []).filter((i) => i.warmupCountedThrough || i.quarantine || i.warmupDecidedStage !== undefined);
  // A quarantine (written by the reputation loop) and a warm-up decision (written by the stats
  // reader) change the IP's relay config too.
  return ips.map((i) => [i.address, i.warmupDay, i.warmupCountedThrough, i.warmupStartedAt, i.quarantine?.since, i.quarantine?.message, i.warmupDecidedStage, i.warmupDecidedDay, i.warmupProviderStages]);
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
  // Whether the control loop paused the domain's bulk mail (rendered as the relays' pausedDomains).
  const paused = (d['status'] as { health?: { state?: string } } | undefined)?.health?.state === 'Paused';
  return JSON.stringify([d.metadata?.name, d.metadata?.uid, d.metadata?.deletionTimestamp ?? null, d['spec'], keys, paused]);
}

/** What a memo keeps of its inputs' text: equal digests, equal inputs (SHA-256). */
function digest(text: string): string {
  return hash('sha256', text, 'base64');
}

export function sendingPoolController(deps: ControllerDeps): ControllerDefinition {
  // Per MailDomain: the pool it last pointed at and what of it the pool's config depends on (a
  // digest: kept for every MailDomain), so a domain moving pools re-queues both, and DNS re-checks
  // (status.lastCheckedAt) re-queue none.
  const seen = new Map<string, { pool: string; signature: string }>();
  // Per pool: the addresses it listed when last seen, so a change re-queues the pools sharing one.
  const poolAddresses = new Map<string, Set<string>>();
  // Per pool: the inputs of the last successful render (a digest: the text is ~1 KB per domain,
  // 10 MB at 10,000 MailDomains) and what they gave.
  const rendered = new Map<string, { inputs: string; pool: SendingPool; domainRefs: DomainSecretRef[]; desired: RenderedObject[]; pruned?: boolean }>();
  const echoes = new OwnWrites();
  // MailDomains by domain name, from the DOMAIN watch below (every add, update and delete).
  const names = new DomainNames();
  // MailDomain keys by the pool they name ("namespace/pool"), from the same watch: a pool's
  // reconcile looks up its own domains instead of filtering every cached MailDomain (10,000 of
  // them, on each of the ~1,000 pool reconciles a 10,000-domain start costs).
  const byPool = new Map<string, Set<string>>();
  const index = (key: string, from: string | undefined, to: string | undefined) => {
    if (from === to) return;
    if (from !== undefined) {
      const set = byPool.get(from);
      set?.delete(key);
      if (set?.size === 0) byPool.delete(from);
    }
    if (to !== undefined) {
      const set = byPool.get(to);
      if (set) set.add(key);
      else byPool.set(to, new Set([key]));
    }
  };

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
        map: (o, caches, event) => {
          const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
          const spec = (o['spec'] ?? {}) as { poolRef?: { name?: string } };
          const pool = `${o.metadata?.namespace ?? ''}/${spec.poolRef?.name ?? ''}`;
          const signature = digest(domainRenderInputs(o));
          const prev = seen.get(key);
          names.note(o, event === 'delete');
          index(key, prev?.pool, event === 'delete' ? undefined : pool);
          if (event === 'delete') {
            seen.delete(key);
            return [...(prev && prev.pool !== pool ? [prev.pool, pool] : [pool]), ...sameDomainPools(o, caches, names)];
          }
          seen.set(key, { pool, signature });
          if (prev && prev.pool === pool && prev.signature === signature) return [];
          return [...(prev && prev.pool !== pool ? [prev.pool, pool] : [pool]), ...sameDomainPools(o, caches, names)];
        },
      },
      {
        // Another pool's IPs changing (or it going away) may hand this pool an address it was
        // refused, or take one away: re-queue the pools that list any address it lists or listed.
        ...POOL,
        map: (o, caches, event) => {
          const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
          const claim = poolClaimant(o);
          const now = new Set([...claim.addresses, ...(claim.draining ?? [])].map(canonicalIp));
          const before = poolAddresses.get(key);
          if (event === 'delete') poolAddresses.delete(key);
          else poolAddresses.set(key, now);
          if (event === 'update' && before && before.size === now.size && [...now].every((a) => before.has(a))) return [];
          const touched = new Set([...now, ...(before ?? [])]);
          if (touched.size === 0) return [];
          return caches
            .list(POOL)
            .map(poolClaimant)
            .filter((p) => p.key !== key && p.addresses.some((a) => touched.has(canonicalIp(a))))
            .map((p) => p.key);
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
      const deleting = !!raw.metadata?.deletionTimestamp;
      if (deleting && (deleteImmediately(raw) || !raw.metadata?.finalizers?.includes(DRAIN_FINALIZER))) {
        await finalize(deps, raw);
        return;
      }
      const m = meta(raw);
      const now = deps.now();
      // Only this pool's domains are parsed: with 1,000 MailDomains over 100 pools, running zod
      // over the whole namespace on every pool reconcile is a hundred times the work.
      const mine = [...(byPool.get(`${namespace}/${name}`) ?? [])].sort().flatMap((k): KubeObject[] => {
        const d = caches.get(DOMAIN, namespace, k.slice(k.indexOf('/') + 1));
        return d ? [d] : [];
      });
      const rawDomains = mine.filter(
        (d) =>
          d.metadata?.namespace === namespace &&
          (d['spec'] as { poolRef?: { name?: string } } | undefined)?.poolRef?.name === name &&
          // A domain another MailDomain claimed first is not signed for here (that one reports the conflict).
          !claimedElsewhere(d, caches, names),
      );
      // IPs an earlier pool lists: no relay, config or egress object is rendered for them here.
      const conflicts = contestedAddresses(poolClaimant(raw), caches.list(POOL).map(poolClaimant));
      // Relays of IPs no longer served (removed from spec.ips; all of them while the pool is being
      // deleted) drain until they report an empty queue, unless the pool asks for immediate removal.
      const listed = rawIps(raw);
      const contested = new Set(conflicts.map((c) => c.address));
      const relays = caches
        .list(STATEFULSET, namespace)
        .filter((o) => o.metadata?.labels?.[LABEL_POOL] === name && ownedBy(o, { uid: raw.metadata?.uid ?? '' }));
      const toDrain = deleteImmediately(raw)
        ? { drain: [], held: [] }
        : relaysToDrain(relays, deleting ? [] : listed.filter((i) => !contested.has(i.address)), listed, caches.get(CONFIGMAP, namespace, `${name}-relay-config`));
      const relayRef = (address: string) => ({ namespace, pool: name, address, pod: `${name}-${ipKey(address)}-0` });
      const observed = new Map(toDrain.drain.map((ip) => [ip.address, deps.observations?.relay(relayRef(ip.address))]));
      const draining = toDrain.drain.filter((ip) => !drained(observed.get(ip.address)));
      // Everything parsing and rendering read; the same inputs render the same children (render is
      // pure), so most reconciles (a StatefulSet's status moved, a resync) reuse the last result.
      const inputs = digest([
        JSON.stringify([raw.metadata?.uid, raw['spec'], warmupRenderInputs(raw), conflicts, deleting, draining, toDrain.held]),
        ...rawDomains.map(domainRenderInputs),
      ].join('\n'));
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
        let domainRefs: DomainSecretRef[] = memo?.inputs === inputs ? memo.domainRefs : [];
        let desired: RenderedObject[] = memo?.inputs === inputs ? memo.desired : [];
        if (memo?.inputs !== inputs) {
          const domains = rawDomains.map((d) => parseMailDomainCached(d)).flatMap((r) => (r.ok ? [r.value] : []));
          try {
            const serving = deleting ? { ...pool, spec: { ...pool.spec, ips: [] } } : withoutAddresses(pool, conflicts);
            desired = renderPoolChildren(serving, domains, deps.render, draining);
            // The memo keeps of the domains only the Secrets they name (ensureReferences): their
            // parses, which the cache replaces with every status write, were 19 MB at 10,000 MailDomains.
            domainRefs = domainSecretRefs(pool, domains);
            rendered.set(`${namespace}/${name}`, { inputs, pool, domainRefs, desired });
          } catch (err) {
            if (!(err instanceof RenderError)) throw err;
            blocked = new Blocked('InvalidSpec', err.message, { invalid: true });
          }
        }
        if (!blocked) {
          ctx = {
            deps, caches, raw, pool, domainRefs, desired, applied: 0, pruned: [],
            draining: new Set(draining.map((ip) => relayName(pool, ip.address))),
            held: new Set(toDrain.held),
          };
          // Orphans appear only when what is rendered changes: after a clean prune of these same
          // inputs, scanning every cached child of the namespace again finds nothing.
          const prunedAlready = memo?.inputs === inputs && memo.pruned;
          blocked = await runSteps([ensureReferences, ensureApiToken, ensureFinalizer, ensureReturnPathKeys, ensureUnsubscribeKey, ensureChildren, ...(prunedAlready ? [] : [ensureNoOrphans])], ctx);
          const entry = rendered.get(`${namespace}/${name}`);
          if (!blocked && entry?.inputs === inputs) entry.pruned = true;
          // A deleted pool whose relays have all drained (and been pruned) may go.
          if (!blocked && deleting && draining.length === 0 && toDrain.held.length === 0) {
            await finalize(deps, raw);
            rendered.delete(`${namespace}/${name}`);
            return;
          }
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
          const cm = ctx?.desired.find((o) => o.kind === 'ConfigMap');
          const computed = poolStatus({
            // The generation this reconcile acted on, not the fresh copy's: a conflict retry must not
            // claim a newer spec was handled (its own event re-queues it).
            generation: m.generation,
            now,
            prev,
            pool,
            blocked,
            missing: ctx?.missing,
            conflicts,
            rollout: ctx?.rollout,
            draining: [...draining.map((ip) => ip.address), ...toDrain.held.map((n) => relays.find((r) => r.metadata?.name === n)?.metadata?.annotations?.[ANNOTATION_ADDRESS] ?? n)].map((address) => {
              const o = observed.get(address);
              return { address, queued: o?.reachable ? o.queued : undefined };
            }),
            relays: (address) => {
              const sts = caches.get(STATEFULSET, namespace, relayName(pool!, address)) as { status?: { readyReplicas?: number } } | undefined;
              return { exists: !!sts, ready: (sts?.status?.readyReplicas ?? 0) >= 1 };
            },
            podName: (address) => `${relayName(pool!, address)}-0`,
            childrenApplied: ctx?.desired.length ?? 0,
            relayWarmup: (address) => {
              const o = deps.observations?.relay({ namespace, pool: name, address, pod: `${relayName(pool!, address)}-0` }) as ReadObservation | undefined;
              return o?.reachable ? o.warmup : undefined;
            },
            relayConfigVersion: (address) => {
              const o = deps.observations?.relay({ namespace, pool: name, address, pod: `${relayName(pool!, address)}-0` }) as ReadObservation | undefined;
              return o?.reachable ? o.configVersion : undefined;
            },
            configHash: cm ? (cm.metadata.annotations?.[ANNOTATION_CONFIG_HASH] ?? shortHash(JSON.stringify(cm['data'] ?? {}))) : undefined,
            configs: cm?.['data'] as Record<string, string> | undefined,
          });
          nextWarmupChange = computed.nextWarmupChange;
          return computed.status;
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
        if (readyNow?.reason === 'Conflict' && (readyBefore?.reason !== 'Conflict' || readyBefore.message !== readyNow.message)) {
          deps.events.emit(raw, 'Warning', 'Conflict', readyNow.message);
          deps.log.warn({ pool: `${namespace}/${name}`, message: readyNow.message }, 'pool lists an address another pool claimed first');
        }
      }
      if (blocked) return { invalid: blocked.invalid, ...(blocked.requeueAfterMs ? { requeueAfterMs: blocked.requeueAfterMs } : {}) };
      // Secrets outside the operator's cache raise no event here: look again later. Nor does a
      // warm-up day ending: come back at the boundary to move the stage and quota on.
      const waits = [
        ...(ctx?.missing ? [deps.refRecheckMs] : []),
        // The StatefulSet being rolled announces its progress by watch events; this is the backstop.
        ...(ctx?.rollout ? [5000] : []),
        // Nothing announces a relay's queue emptying: poll while any relay drains.
        ...(draining.length > 0 ? [deps.refRecheckMs] : []),
        // An egress add-on can be removed under a running pool (its CRD deleted) and no watch
        // says so: look again, so its relays are scaled to zero within one re-check.
        ...(pool && (pool.spec.egress.mode === 'multus' || pool.spec.egress.mode === 'ciliumEgressGateway') ? [deps.refRecheckMs] : []),
        ...(nextWarmupChange ? [Math.max(1000, nextWarmupChange.getTime() - now.getTime())] : []),
      ];
      return waits.length > 0 ? { requeueAfterMs: Math.min(...waits) } : {};
    },
  };
}
