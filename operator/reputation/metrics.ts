// Reputation metrics. Labels are bounded: pool (namespace/name) and ip come from SendingPool specs
// (at most MAX_IPS_PER_POOL per pool), list from the configured lists (at most 20).
//
// Listed state encoding of mailfleet_operator_dnsbl_listed: 1 listed, 0 clean, -1 unknown (timeout,
// SERVFAIL, REFUSED, an error answer such as 127.255.255.254, or the day's budget spent). Alert on
// == 1 for listings and on mailfleet_operator_dnsbl_unknown_checks >= the configured threshold.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ListState } from './lists.ts';
import type { PtrState } from './ptr.ts';

export const LISTED_VALUE: Record<ListState, number> = { listed: 1, clean: 0, unknown: -1 };
export const PTR_VALUE: Record<PtrState, number> = { ok: 1, mismatch: 0, unknown: -1 };

export function createReputationMetrics(registry: Registry) {
  return {
    listed: new Gauge({
      name: 'mailfleet_operator_dnsbl_listed',
      help: 'Per pool, IP and list: 1 listed, 0 clean, -1 unknown (error answer, timeout, budget spent).',
      labelNames: ['pool', 'ip', 'list'] as const,
      registers: [registry],
    }),
    unknownChecks: new Gauge({
      name: 'mailfleet_operator_dnsbl_unknown_checks',
      help: 'Consecutive checks of an IP on a list that gave no usable answer.',
      labelNames: ['pool', 'ip', 'list'] as const,
      registers: [registry],
    }),
    lastCheck: new Gauge({
      name: 'mailfleet_operator_dnsbl_last_check_timestamp_seconds',
      help: 'When the IP was last checked on the lists (Unix time).',
      labelNames: ['pool', 'ip'] as const,
      registers: [registry],
    }),
    queriesToday: new Gauge({
      name: 'mailfleet_operator_dnsbl_queries_today',
      help: 'DNSBL queries sent today (UTC) per list: the daily budget used.',
      labelNames: ['list'] as const,
      registers: [registry],
    }),
    budget: new Gauge({
      name: 'mailfleet_operator_dnsbl_query_budget',
      help: 'DNSBL queries allowed per UTC day per list.',
      labelNames: ['list'] as const,
      registers: [registry],
    }),
    ptr: new Gauge({
      name: 'mailfleet_operator_ip_ptr_ok',
      help: 'PTR/FCrDNS of an IP: 1 ok, 0 mismatch, -1 lookup failed.',
      labelNames: ['pool', 'ip'] as const,
      registers: [registry],
    }),
    quarantined: new Gauge({
      name: 'mailfleet_operator_ip_quarantined',
      help: '1 while the IP is quarantined (listed on a quarantine list or by annotation).',
      labelNames: ['pool', 'ip'] as const,
      registers: [registry],
    }),
    transitions: new Counter({
      name: 'mailfleet_operator_ip_reputation_transitions_total',
      help: 'Quarantines, releases and re-warms of IPs, by action.',
      labelNames: ['action'] as const,
      registers: [registry],
    }),
  };
}
export type ReputationMetrics = ReturnType<typeof createReputationMetrics>;
