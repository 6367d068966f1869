// Egress configuration helpers. Which source IP a message leaves from is the scheduler's decision
// (relay/scheduler/decide.ts: by weight among the IPs with headroom).
import type { RelayConfig } from '../config/schema.ts';

export type EgressIp = RelayConfig['delivery']['egressIps'][number];

/** A route's domains match exactly, by "*.suffix", or "*" for every domain (a smarthost). */
export function routeFor<R extends { domains: string[] }>(routes: readonly R[], domain: string): R | undefined {
  const d = domain.toLowerCase();
  return (
    routes.find((r) => r.domains.some((p) => p.toLowerCase() === d)) ??
    routes.find((r) => r.domains.some((p) => p.startsWith('*.') && d.endsWith(p.slice(1).toLowerCase()))) ??
    routes.find((r) => r.domains.includes('*'))
  );
}

/** Past this many domains a routes list's memo starts again (it is a cache, not a record). */
const ROUTE_MEMO_MAX = 10_000;
const routeMemo = new WeakMap<readonly object[], Map<string, object | null>>();

/**
 * routeFor, remembered per routes list and domain: delivery asked it three times per message (the
 * feeder's lane, the attempt, the report), each three searches with a lower-casing per pattern. A
 * live reload brings a new routes list (relay/config/live.ts replaces config.delivery), so a memo of
 * the old one is never read again.
 */
export function routeOf<R extends { domains: string[] }>(routes: readonly R[], domain: string): R | undefined {
  if (routes.length === 0) return undefined;
  let memo = routeMemo.get(routes);
  if (!memo) routeMemo.set(routes, (memo = new Map()));
  const hit = memo.get(domain);
  if (hit !== undefined) return (hit ?? undefined) as R | undefined;
  if (memo.size >= ROUTE_MEMO_MAX) memo.clear();
  const r = routeFor(routes, domain);
  memo.set(domain, r ?? null);
  return r;
}
