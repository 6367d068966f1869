// MailDomain reconciler. Steps, in order:
//   ensureValidSpec   – the zod schema → InvalidSpec
//   ensureDkimKeys    – the DKIM key Secret of each selector, created once and never overwritten;
//                       rotation after rotateAfter adds a new selector and retires the old one
//                       (kept published until its grace period ends, then its Secret is deleted)
//   ensurePool        – the SendingPool named by spec.poolRef exists → PoolNotFound
//   ensureDnsRecords  – the records to publish, each checked against DNS → DNSVerified
// The pool picks up the signing settings from this object's status (its controller watches
// MailDomains). DNS changes raise no Kubernetes event, so the domain is re-checked on a timer.
import {
  parseMailDomainCached,
  parseSendingPoolCached,
  findCondition,
  durationMs,
  type MailDomain,
  type SendingPool,
  type Condition,
  type DkimSelectorStatus,
  type DnsRecord,
} from '../../api/index.ts';
import {
  renderDkimSecret,
  dkimSecretName,
  dkimKeyFromSecret,
  rotatedSelector,
  requiredDnsRecords,
  ANNOTATION_CREATED_AT,
  type DkimPublicKey,
} from '../../render/index.ts';
import type { ControllerDefinition, Caches } from '../../runtime/manager.ts';
import { writeStatus } from '../../runtime/status.ts';
import { OwnWrites } from '../../runtime/echoes.ts';
import { isStatus, type KubeObject } from '../../runtime/kube.ts';
import { Blocked, runSteps, meta, rfc3339, DOMAIN, POOL, SECRET, type ControllerDeps, type Step } from '../common.ts';
import { verifyRecords } from './dns.ts';
import { domainStatus, dnsCheckDueInMs, firstCheckAt, sameDnsResults } from './status.ts';
import { contestedAddresses, domainClaimant, domainClaimedBy, poolClaimant, withoutAddresses, DomainNames } from '../claims.ts';
import { generateDkimKey } from './keys.ts';

interface DomainCtx {
  deps: ControllerDeps;
  /** MailDomains by domain name (this controller's DOMAIN watch keeps it). */
  names: DomainNames;
  echoes: OwnWrites;
  /** The pools as this controller renders its records from them (see ensurePool). */
  pools: PoolViews;
  /** DNS checks by "namespace/name": this process's knowledge of when each domain was last checked. */
  checks: Map<string, DnsCheck>;
  caches: Caches;
  raw: KubeObject;
  domain: MailDomain;
  now: Date;
  selectors: DkimSelectorStatus[];
  keys: DkimPublicKey[];
  generated: string[];
  retired: string[];
  pool?: SendingPool;
  records?: DnsRecord[];
  /** Set when DNS was not checked because the last check is recent: when it is due. */
  dnsDueInMs?: number;
}

/**
 * Each pool parsed and without the addresses an earlier pool claimed, kept until it or any pool's
 * claim changes (the POOL watch bumps `version`): every domain reconcile needs its pool so, and working it out
 * compared the pool with every other one (at 10,000 domains over 200 pools, 2,000,000 comparisons
 * for one start-up, re-parsing the pool each time).
 */
interface PoolViews {
  version: number;
  /** Each pool's claim (poolClaimant) as last seen, to bump `version` only when one changes. */
  claims: Map<string, string>;
  byKey: Map<string, { version: number; raw: KubeObject; pool: SendingPool }>;
}

interface DnsCheck {
  uid: string;
  /** When the next check is counted from (dnsCheckDueInMs' checkedAt). */
  dueFrom: number;
  /** When DNS was last checked, as far as this process knows (NaN: never); for the oldest-check metric. */
  checked: number;
}

/** A stable fraction in [0, 1) per object (FNV-1a of its uid): where in the interval its checks fall. */
function spreadOf(uid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < uid.length; i++) h = Math.imul(h ^ uid.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 2 ** 32;
}

/** Reads the key Secret of `selector`, creating it first if absent. Never replaces an existing one. */
async function ensureKeySecret(ctx: DomainCtx, selector: string): Promise<{ secret: KubeObject; created: boolean }> {
  const { deps, domain } = ctx;
  const ns = domain.metadata.namespace ?? '';
  const name = dkimSecretName(domain, selector);
  // The cache may say "exists" (it keeps the public key and annotations, all that is read here):
  // a Secret deleted since is a delete event away from re-queueing this domain. It may not say
  // "absent" of a key this domain's status already lists: a lagging cache would have a key
  // generated that cannot be stored (409) while the published one is in use, so that absence is
  // asked of the API. A selector the status never listed (a new domain, a rotation) almost never
  // has a Secret yet, and the create says so if it does (409: theirs is used, this key dropped),
  // so the read would cost a request per new key for nothing.
  const cached = ctx.caches.get(SECRET, ns, name);
  if (cached && dkimKeyFromSecret(cached as never)) return { secret: cached, created: false };
  const listed = (domain.status?.selectors ?? []).some((s) => s.selector === selector && s.createdAt);
  if (listed) {
    const existing = await deps.kube.find(SECRET.apiVersion, SECRET.kind, ns, name);
    if (existing) return { secret: existing, created: false };
  }
  const key = await generateDkimKey(domain.spec.dkim.algorithm);
  try {
    // Its add event would re-queue this domain, whose status this reconcile is about to write anyway.
    const secret = await ctx.echoes.write(SECRET.kind, ns, name, () => deps.kube.create(renderDkimSecret(domain, selector, ctx.now, key) as KubeObject));
    return { secret, created: true };
  } catch (err) {
    // Created meanwhile (another replica in a leadership hand-over): use theirs.
    if (!isStatus(err, 409)) throw err;
    return { secret: await deps.kube.get(SECRET.apiVersion, SECRET.kind, ns, name), created: false };
  }
}

const ensureDkimKeys: Step<DomainCtx> = {
  name: 'ensureDkimKeys',
  async run(ctx) {
    const { domain, now } = ctx;
    const spec = domain.spec.dkim;
    const prev = domain.status?.selectors ?? [];
    const base = spec.selector;
    let selectors: DkimSelectorStatus[] = prev.map((s) => ({ ...s }));
    const fromBase = (s: DkimSelectorStatus) => s.selector === base || s.selector.startsWith(`${base}-`);
    let active = selectors.find((s) => s.state === 'Active' && fromBase(s) && s.algorithm === spec.algorithm);

    const retire = (s: DkimSelectorStatus) => {
      s.state = 'Retiring';
      s.retireAt = rfc3339(new Date(now.getTime() + durationMs(spec.gracePeriod)));
    };
    // The spec now names another selector or algorithm: the old key keeps verifying in-flight
    // mail for the grace period, like a rotation.
    for (const s of selectors) if (s.state === 'Active' && s !== active) retire(s);

    if (active?.createdAt && Date.parse(active.createdAt) + durationMs(spec.rotateAfter) <= now.getTime()) {
      const next = rotatedSelector(base, now);
      if (next !== active.selector) {
        retire(active);
        active = undefined;
        selectors = selectors.filter((s) => s.selector !== next);
        selectors.push({ selector: next, algorithm: spec.algorithm, secretName: dkimSecretName(domain, next), state: 'Active' });
      }
    }
    if (!selectors.some((s) => s.state === 'Active')) {
      const sel = selectors.some((s) => s.selector === base) ? rotatedSelector(base, now) : base;
      selectors = selectors.filter((s) => s.selector !== sel);
      selectors.push({ selector: sel, algorithm: spec.algorithm, secretName: dkimSecretName(domain, sel), state: 'Active' });
    }

    // Retired keys past their grace period: unpublish (drop from status) and delete the Secret.
    const keep: DkimSelectorStatus[] = [];
    for (const s of selectors) {
      if (s.state === 'Retiring' && s.retireAt && Date.parse(s.retireAt) <= now.getTime()) {
        await ctx.deps.kube.delete({ ...SECRET, namespace: domain.metadata.namespace ?? '', name: s.secretName });
        ctx.retired.push(s.selector);
      } else keep.push(s);
    }

    for (const s of keep) {
      const { secret, created } = await ensureKeySecret(ctx, s.selector);
      if (created) ctx.generated.push(s.selector);
      const key = dkimKeyFromSecret(secret as never);
      if (!key) {
        throw new Blocked(
          'DKIMKeyUnreadable',
          `Secret ${s.secretName}: not a mailfleet DKIM key (missing annotations or key data); delete it to have a new key generated`,
          { requeueAfterMs: 60_000 },
        );
      }
      s.secretName = dkimSecretName(domain, s.selector);
      s.algorithm = key.algorithm;
      const created_ = (secret.metadata?.annotations ?? {})[ANNOTATION_CREATED_AT] ?? secret.metadata?.creationTimestamp;
      if (created_) s.createdAt = created_;
      ctx.keys.push(key);
    }
    ctx.selectors = keep.sort((a, b) => a.selector.localeCompare(b.selector));
  },
};

// Two MailDomains for one domain would publish two DKIM keys and two different SPF and DMARC
// records: the one created first keeps the domain, the later one stops here (no key, no records,
// not signed for by its pool) and says which object holds it.
const ensureNoConflict: Step<DomainCtx> = {
  name: 'ensureNoConflict',
  async run(ctx) {
    const self = domainClaimant(ctx.raw);
    if (!self) return;
    const others = ctx.names.objects(self.key, self.domain, (ns, n) => ctx.caches.get(DOMAIN, ns, n));
    const by = domainClaimedBy(self, others.flatMap((d) => domainClaimant(d) ?? []));
    if (by) {
      throw new Blocked(
        'Conflict',
        `spec.domain: ${ctx.domain.spec.domain} is already claimed by MailDomain ${by}, which was created first; ` +
          'this one generates no key, publishes no records and is not signed for. Delete one of the two.',
      );
    }
  },
};

const ensurePool: Step<DomainCtx> = {
  name: 'ensurePool',
  async run(ctx) {
    const ns = ctx.domain.metadata.namespace ?? '';
    const ref = ctx.domain.spec.poolRef.name;
    const raw = ctx.caches.get(POOL, ns, ref);
    if (!raw) throw new Blocked('PoolNotFound', `spec.poolRef.name: SendingPool "${ref}" not found in namespace ${ns}`);
    const parsed = parseSendingPoolCached(raw);
    if (!parsed.ok) throw new Blocked('PoolInvalid', `spec.poolRef.name: SendingPool "${ref}" is invalid: ${parsed.problems.join('; ')}`);
    const key = `${ns}/${ref}`;
    const { pools } = ctx;
    const known = pools.byKey.get(key);
    if (known && known.version === pools.version && known.raw === raw) {
      ctx.pool = known.pool;
      return;
    }
    // Addresses an earlier pool claimed send for that pool, not this one: they are left out of SPF.
    ctx.pool = withoutAddresses(parsed.value, contestedAddresses(poolClaimant(raw), ctx.caches.list(POOL).map(poolClaimant)));
    pools.byKey.set(key, { version: pools.version, raw, pool: ctx.pool });
  },
};

const ensureDnsRecords: Step<DomainCtx> = {
  name: 'ensureDnsRecords',
  async run(ctx) {
    const required = requiredDnsRecords(ctx.domain, ctx.pool!, ctx.keys);
    const status = ctx.domain.status ?? {};
    const key = `${ctx.domain.metadata.namespace ?? ''}/${ctx.domain.metadata.name}`;
    const uid = ctx.domain.metadata.uid ?? key;
    let known = ctx.checks.get(key);
    if (known?.uid !== uid) {
      const at = firstCheckAt(status, ctx.now, ctx.deps.dnsRecheckMs, spreadOf(uid));
      known = at === undefined ? undefined : { uid, dueFrom: at, checked: status.lastCheckedAt ? Date.parse(status.lastCheckedAt) : NaN };
      if (known) ctx.checks.set(key, known);
      else ctx.checks.delete(key);
    }
    // Checked recently for these very records: keep what the status says until the check is due.
    const due = dnsCheckDueInMs(status, required, ctx.now, ctx.deps.dnsRecheckMs, known?.dueFrom);
    if (due > 0) {
      ctx.dnsDueInMs = due;
      return;
    }
    ctx.records = await verifyRecords(ctx.deps.dns, required);
    ctx.checks.set(key, { uid, dueFrom: ctx.now.getTime(), checked: ctx.now.getTime() });
    ctx.deps.metrics.dnsChecks.inc({ outcome: sameDnsResults(status.records, ctx.records) ? 'unchanged' : 'changed' });
  },
};

export function mailDomainController(deps: ControllerDeps): ControllerDefinition {
  // Generation of each pool when its domains were last re-queued. A pool's status changes with
  // every reconcile (and every one of its domains' key changes); its domains care only about its
  // spec and existence, and re-checking all of them (an API read and DNS lookups each) on every
  // status write is wasted work that grows with domains × pool reconciles.
  const poolGenerations = new Map<string, number | undefined>();
  const echoes = new OwnWrites();
  // MailDomains by domain name, from the DOMAIN watch below: who else claims a name, without
  // scanning every MailDomain per domain (quadratic at 10,000; docs/scaling.md).
  const names = new DomainNames();
  const checks = new Map<string, DnsCheck>();
  const pools: PoolViews = { version: 0, claims: new Map(), byKey: new Map() };
  deps.metrics.countDnsChecks(() => {
    let oldest = Infinity;
    for (const c of checks.values()) if (c.checked < oldest) oldest = c.checked;
    return Number.isFinite(oldest) ? oldest / 1000 : undefined;
  });
  return {
    echoes,
    resource: DOMAIN,
    // Its status is written by itself (echoes) and by the stats loop (health), which changes nothing here.
    primaryUpdates: 'spec',
    owns: [SECRET],
    watches: [
      {
        // A pool appearing, changing IPs or hostnames changes this domain's required records.
        ...POOL,
        map: (o, caches, event) => {
          const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
          // A pool's addresses (listed or draining) coming, going or changing may change which
          // addresses another pool may use; its status writes otherwise leave every view valid.
          const claim = event === 'delete' ? '' : JSON.stringify(poolClaimant(o));
          if (pools.claims.get(key) !== claim) {
            pools.version++;
            if (event === 'delete') pools.claims.delete(key);
            else pools.claims.set(key, claim);
          }
          if (event === 'delete') {
            poolGenerations.delete(key);
            pools.byKey.delete(key);
          } else {
            const gen = o.metadata?.generation;
            if (poolGenerations.has(key) && poolGenerations.get(key) === gen) return [];
            poolGenerations.set(key, gen);
          }
          return caches
            .list(DOMAIN, o.metadata?.namespace)
            .filter((d) => (d['spec'] as { poolRef?: { name?: string } } | undefined)?.poolRef?.name === o.metadata?.name)
            .map((d) => `${d.metadata?.namespace ?? ''}/${d.metadata?.name ?? ''}`);
        },
      },
      {
        // Another MailDomain for the same domain coming or going decides which of them holds it.
        ...DOMAIN,
        map: (o, caches, event) => {
          names.note(o, event === 'delete');
          if (event === 'delete') checks.delete(`${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`);
          const domain = (o['spec'] as { domain?: unknown } | undefined)?.domain;
          if (typeof domain !== 'string') return [];
          const key = `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
          // Updates matter only once it is being deleted (spec.domain is immutable).
          if (event === 'update' && !o.metadata?.deletionTimestamp) return [];
          return names.objects(key, domain, (ns, n) => caches.get(DOMAIN, ns, n)).map((d) => `${d.metadata?.namespace ?? ''}/${d.metadata?.name ?? ''}`);
        },
      },
    ],
    // Key generation waits on the libuv pool (4 threads), not the event loop. A new domain's
    // reconcile spends its time on the key first, then on the apiserver (Secret, status) and DNS;
    // with 8 workers the pool ran dry while they waited on a busy apiserver. 16 keep keys queued
    // there, so new keys are made as fast as the cores allow while the writes proceed.
    workers: 16,
    reconcile: async (namespace, name, caches) => {
      const raw = caches.get(DOMAIN, namespace, name);
      if (!raw || raw.metadata?.deletionTimestamp) return;
      const m = meta(raw);
      const now = deps.now();
      const parsed = parseMailDomainCached(raw);
      let blocked: Blocked | undefined;
      let ctx: DomainCtx | undefined;
      if (!parsed.ok) blocked = new Blocked('InvalidSpec', parsed.problems.join('; '), { invalid: true });
      else {
        ctx = { deps, names, echoes, pools, checks, caches, raw, domain: parsed.value, now, selectors: [], keys: [], generated: [], retired: [] };
        blocked = await runSteps([ensureNoConflict, ensureDkimKeys, ensurePool, ensureDnsRecords], ctx);
      }

      let before: { dkim?: Condition; dns?: Condition; ready?: Condition } = {};
      const result = await writeStatus(
        deps.kube,
        raw,
        (cur) => {
          const prev = (cur['status'] ?? {}) as NonNullable<MailDomain['status']>;
          before = {
            dkim: findCondition(prev.conditions, 'DKIMReady'),
            dns: findCondition(prev.conditions, 'DNSVerified'),
            ready: findCondition(prev.conditions, 'Ready'),
          };
          return domainStatus({
            // The generation this reconcile acted on, not the fresh copy's: a conflict retry must not
            // claim a newer spec was handled (its own event re-queues it).
            generation: m.generation,
            now,
            prev,
            blocked,
            keys: ctx ? { selectors: ctx.selectors, read: ctx.keys.length } : undefined,
            records: ctx?.records,
          });
        },
        { onConflict: () => deps.metrics.statusConflicts.inc({ kind: 'MailDomain' }), echoes },
      );

      const after = result.status?.conditions;
      for (const sel of ctx?.generated ?? []) deps.events.emit(raw, 'Normal', 'DKIMKeyGenerated', `generated DKIM key for selector ${sel} in Secret ${dkimSecretName(ctx!.domain, sel)}`);
      for (const sel of ctx?.retired ?? []) deps.events.emit(raw, 'Normal', 'DKIMKeyRetired', `selector ${sel} retired after its grace period; its Secret was deleted`);
      const dnsNow = findCondition(after, 'DNSVerified');
      if (dnsNow && dnsNow.status !== before.dns?.status && !blocked) {
        deps.events.emit(raw, dnsNow.status === 'True' ? 'Normal' : 'Warning', dnsNow.status === 'True' ? 'DNSVerified' : 'DNSNotVerified', dnsNow.message);
      }
      if (blocked && (before.ready?.reason !== blocked.reason || before.ready?.message !== blocked.message)) {
        deps.events.emit(raw, 'Warning', blocked.reason, blocked.message);
      }
      if (blocked?.invalid) return { invalid: true };
      return { requeueAfterMs: blocked?.requeueAfterMs ?? ctx?.dnsDueInMs ?? deps.dnsRecheckMs };
    },
  };
}
