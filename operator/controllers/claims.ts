// Who owns a contested name: an IP address listed by two SendingPools, a domain claimed by two
// MailDomains. Pure. The object that came first (creationTimestamp, then name, then namespace) keeps it
// and keeps working untouched; the later one reports Ready=False reason Conflict naming the first
// and renders nothing for the contested part. Addresses are compared as addresses, not strings:
// 2001:db8::1 and 2001:0db8:0:0:0:0:0:1 are one IP, and so are ::ffff:203.0.113.7 and 203.0.113.7.
import { canonicalIp } from '../api/ip.ts';

export { canonicalIp };
import type { SendingPool } from '../api/index.ts';

export function sameIp(a: string, b: string): boolean {
  return canonicalIp(a) === canonicalIp(b);
}

/** An object that may claim something: "namespace/name" and when it was created. */
export interface Claimant {
  /** "namespace/name" */
  key: string;
  /** metadata.creationTimestamp (RFC 3339, whole seconds); missing sorts last. */
  createdAt: string | undefined;
}

/**
 * Negative when `a` came first: earlier creationTimestamp, then (created in the same second) the
 * name, then the namespace: a fixed order every replica and every reconcile agrees on.
 */
export function compareClaimants(a: Claimant, b: Claimant): number {
  const ta = a.createdAt ? Date.parse(a.createdAt) : Infinity;
  const tb = b.createdAt ? Date.parse(b.createdAt) : Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  const [na = '', xa = ''] = a.key.split('/').reverse();
  const [nb = '', xb = ''] = b.key.split('/').reverse();
  if (na !== nb) return na < nb ? -1 : 1;
  return xa < xb ? -1 : xa > xb ? 1 : 0;
}

export interface IpClaimant extends Claimant {
  /** spec.ips */
  addresses: readonly string[];
  /** Addresses whose relay is still draining in this pool (removed, or contested since). */
  draining?: readonly string[] | undefined;
}

/**
 * The addresses of `self` that an earlier object already claims, each with that object's key.
 * A relay still draining an address in another pool holds it whatever the order: two relays
 * must never bind one address, and the drain ends on its own. `others` may include `self`.
 */
export function contestedAddresses(self: IpClaimant, others: readonly IpClaimant[]): Array<{ address: string; claimedBy: string }> {
  const first = new Map<string, Claimant>();
  const held = new Map<string, string>();
  for (const o of others) {
    if (o.key === self.key) continue;
    for (const a of o.draining ?? []) held.set(canonicalIp(a), o.key);
    if (compareClaimants(o, self) >= 0) continue;
    for (const a of o.addresses) {
      const ip = canonicalIp(a);
      const prev = first.get(ip);
      if (!prev || compareClaimants(o, prev) < 0) first.set(ip, o);
    }
  }
  const out: Array<{ address: string; claimedBy: string }> = [];
  for (const a of self.addresses) {
    const by = held.get(canonicalIp(a)) ?? first.get(canonicalIp(a))?.key;
    if (by) out.push({ address: a, claimedBy: by });
  }
  return out;
}

export interface DomainClaimant extends Claimant {
  domain: string;
}

const normDomain = (d: string) => d.toLowerCase().replace(/\.$/, '');

/** The earlier object claiming `self`'s domain, if any (domains compare case-insensitively, without a trailing dot). */
export function domainClaimedBy(self: DomainClaimant, others: readonly DomainClaimant[]): string | undefined {
  const norm = normDomain;
  const mine = norm(self.domain);
  let winner: Claimant | undefined;
  for (const o of others) {
    if (o.key === self.key || norm(o.domain) !== mine || compareClaimants(o, self) >= 0) continue;
    if (!winner || compareClaimants(o, winner) < 0) winner = o;
  }
  return winner?.key;
}

type RawObject = { metadata?: { name?: string; namespace?: string; creationTimestamp?: string; deletionTimestamp?: string } | undefined; [k: string]: unknown };

const keyOf = (o: RawObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

// Every reconcile compares its pool with every other pool, so each cached pool object's claim is
// worked out once per object and resourceVersion (as operator/api/index.ts memoParse does for parses).
const claims = new WeakMap<object, { rv: unknown; claim: IpClaimant }>();

/** The addresses a SendingPool object (as cached, unparsed) lists, and those its status says are draining. Shared: do not mutate. */
export function poolClaimant(o: RawObject): IpClaimant {
  const rv = (o.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  const hit = claims.get(o);
  if (hit && rv !== undefined && hit.rv === rv) return hit.claim;
  const claim = claimOf(o);
  claims.set(o, { rv, claim });
  return claim;
}

function claimOf(o: RawObject): IpClaimant {
  const ips = ((o['spec'] as { ips?: unknown } | undefined)?.ips ?? []) as Array<{ address?: unknown }>;
  const status = ((o['status'] as { ips?: unknown } | undefined)?.ips ?? []) as Array<{ address?: unknown; state?: unknown }>;
  return {
    key: keyOf(o),
    createdAt: o.metadata?.creationTimestamp,
    addresses: Array.isArray(ips) ? ips.flatMap((i) => (typeof i?.address === 'string' ? [i.address] : [])) : [],
    draining: Array.isArray(status) ? status.flatMap((i) => (i?.state === 'Draining' && typeof i.address === 'string' ? [i.address] : [])) : [],
  };
}

/** The domain a MailDomain object (as cached, unparsed) claims; undefined while it is being deleted. */
export function domainClaimant(o: RawObject): DomainClaimant | undefined {
  const domain = (o['spec'] as { domain?: unknown } | undefined)?.domain;
  if (typeof domain !== 'string' || o.metadata?.deletionTimestamp) return undefined;
  return { key: keyOf(o), createdAt: o.metadata?.creationTimestamp, domain };
}

/** The pool as rendered: without the addresses another pool claimed first. */
export function withoutAddresses(pool: SendingPool, conflicts: readonly { address: string }[]): SendingPool {
  if (conflicts.length === 0) return pool;
  const gone = new Set(conflicts.map((c) => c.address));
  return { ...pool, spec: { ...pool.spec, ips: pool.spec.ips.filter((i) => !gone.has(i.address)) } };
}

/**
 * MailDomain keys ("namespace/name") by domain name, kept from a watch's events: which other
 * objects name the same domain, without scanning every MailDomain. With 10,000 MailDomains a scan
 * per domain event (and per domain of a pool on each pool reconcile) was quadratic: the operator
 * spent ~100 ms of CPU per new domain at that size (bench/domains-10k.ts, 2026-12-06).
 * Callers look the keys up in their cache, so a key whose object is gone is simply not found.
 */
export class DomainNames {
  private readonly byName = new Map<string, Set<string>>();
  private readonly nameOf = new Map<string, string>();

  /** Notes an object's domain as of this event (or its removal). */
  note(o: RawObject, deleted: boolean): void {
    const key = keyOf(o);
    const domain = (o['spec'] as { domain?: unknown } | undefined)?.domain;
    const name = !deleted && typeof domain === 'string' ? normDomain(domain) : undefined;
    const old = this.nameOf.get(key);
    if (old === name) return;
    if (old !== undefined) {
      const keys = this.byName.get(old);
      keys?.delete(key);
      if (keys?.size === 0) this.byName.delete(old);
    }
    if (name === undefined) {
      this.nameOf.delete(key);
      return;
    }
    this.nameOf.set(key, name);
    const keys = this.byName.get(name);
    if (keys) keys.add(key);
    else this.byName.set(name, new Set([key]));
  }

  /** Keys of the other objects noted with `domain`. */
  others(key: string, domain: string): string[] {
    const keys = this.byName.get(normDomain(domain));
    return keys ? [...keys].filter((k) => k !== key) : [];
  }

  /** The other objects naming `domain`, as `get` (the cache) has them now. */
  objects<T extends RawObject>(key: string, domain: string, get: (namespace: string, name: string) => T | undefined): T[] {
    const want = normDomain(domain);
    return this.others(key, domain).flatMap((k) => {
      const i = k.indexOf('/');
      const o = get(k.slice(0, i), k.slice(i + 1));
      const theirs = (o?.['spec'] as { domain?: unknown } | undefined)?.domain;
      return o && typeof theirs === 'string' && normDomain(theirs) === want ? [o] : [];
    });
  }
}
