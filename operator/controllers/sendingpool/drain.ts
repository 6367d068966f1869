// Which relays of a pool are draining: IPs gone from spec.ips (or every IP, while the pool is
// being deleted) whose StatefulSet still exists. Pure: the controller passes what the cache holds.
//
// A draining relay is rendered as before plus `draining: true` in its config (it refuses new mail
// with 421 4.3.2 and keeps delivering), and its StatefulSet, queue volume and egress policy stay
// until the relay itself reports, through its stats, that it runs the draining config and holds
// nothing more. Only then is it no longer rendered, and pruned. The annotation
// mailfleet.io/delete-immediately: "true" on the pool skips all of this.
import { parse } from 'yaml';
import { canonicalIp, type PoolIp } from '../../api/index.ts';
import { ANNOTATION_ADDRESS, ANNOTATION_IP_SPEC, configKey } from '../../render/index.ts';

interface CachedObject {
  metadata?: { name?: string; annotations?: Record<string, string> } | undefined;
  [k: string]: unknown;
}

/** The spec entry a relay StatefulSet was rendered from (its annotation), else what its config in the ConfigMap says. */
export function ipOfRelay(sts: CachedObject, configMap: CachedObject | undefined): PoolIp | undefined {
  const ann = sts.metadata?.annotations ?? {};
  const address = ann[ANNOTATION_ADDRESS];
  if (!address) return undefined;
  try {
    const spec = JSON.parse(ann[ANNOTATION_IP_SPEC] ?? '') as Partial<PoolIp>;
    if (spec.address === address && typeof spec.hostname === 'string') {
      return { address, hostname: spec.hostname, weight: spec.weight ?? 100, ...(spec.nodeName ? { nodeName: spec.nodeName } : {}) };
    }
  } catch {
    // Rendered by an operator that did not write the annotation: read its config instead.
  }
  const text = (configMap?.['data'] as Record<string, string> | undefined)?.[configKey(address)];
  const hostname = text ? (parse(text) as { hostname?: unknown } | null)?.hostname : undefined;
  return typeof hostname === 'string' ? { address, hostname, weight: 100 } : undefined;
}

/**
 * The relays to drain: every cached relay StatefulSet of the pool whose address is not served
 * (`serving`: the spec's IPs as rendered; none while the pool is being deleted). A spec entry
 * is preferred to the annotation (it is the fresher copy) when the address is still listed.
 * `held`: relays that cannot be rendered again (no annotation, no config left): they are kept as
 * they are, never pruned, until someone deletes them or annotates the pool delete-immediately.
 */
export function relaysToDrain(
  relays: readonly CachedObject[],
  serving: readonly PoolIp[],
  listed: readonly PoolIp[],
  configMap: CachedObject | undefined,
): { drain: PoolIp[]; held: string[] } {
  const keep = new Set(serving.map((i) => canonicalIp(i.address)));
  const spec = new Map(listed.map((i) => [canonicalIp(i.address), i]));
  const drain: PoolIp[] = [];
  const held: string[] = [];
  const seen = new Set<string>();
  for (const sts of relays) {
    const address = sts.metadata?.annotations?.[ANNOTATION_ADDRESS];
    if (!address) continue;
    const key = canonicalIp(address);
    if (keep.has(key) || seen.has(key)) continue;
    seen.add(key);
    const ip = spec.get(key) ?? ipOfRelay(sts, configMap);
    if (ip) drain.push(ip);
    else if (sts.metadata?.name) held.push(sts.metadata.name);
  }
  return { drain: drain.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)), held };
}
