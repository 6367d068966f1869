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
