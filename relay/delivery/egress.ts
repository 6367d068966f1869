// Which source IP a message leaves from: weighted random over the configured egress IPs (the
// operator sets weights for warm-up). Pure apart from the injected random number.
import type { RelayConfig } from '../config/schema.ts';

export type EgressIp = RelayConfig['delivery']['egressIps'][number];

export function pickEgress(ips: readonly EgressIp[], random: () => number = Math.random): EgressIp | undefined {
  const total = ips.reduce((s, ip) => s + ip.weight, 0);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const ip of ips) {
    if (ip.weight <= 0) continue;
    x -= ip.weight;
    if (x < 0) return ip;
  }
  return ips.findLast((ip) => ip.weight > 0);
}

/** A route's domains match exactly, by "*.suffix", or "*" for every domain (a smarthost). */
export function routeFor<R extends { domains: string[] }>(routes: readonly R[], domain: string): R | undefined {
  const d = domain.toLowerCase();
  return (
    routes.find((r) => r.domains.some((p) => p.toLowerCase() === d)) ??
    routes.find((r) => r.domains.some((p) => p.startsWith('*.') && d.endsWith(p.slice(1).toLowerCase()))) ??
    routes.find((r) => r.domains.includes('*'))
  );
}
