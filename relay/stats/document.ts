// Assembles the GET /v1/stats document (relay/stats/contract.ts) from the durable counters and
// what the relay knows right now.
import { STATS_SCHEMA_VERSION, type StatsDocumentV1 } from './contract.ts';
import { HOUR_MS, RETAIN_HOURS, type DeliveryCounters } from './counters.ts';

export const DEFAULT_STATS_HOURS = 25;

/** `?hours=N` (1..RETAIN_HOURS): how many hours back, the current one included. */
export function hoursParam(url: string | undefined): number {
  const v = new URL(url ?? '/', 'http://x').searchParams.get('hours');
  const n = v === null ? DEFAULT_STATS_HOURS : Number(v);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, RETAIN_HOURS) : DEFAULT_STATS_HOURS;
}

export function statsDocument(input: {
  counters: DeliveryCounters;
  now: number;
  hours: number;
  queued: number;
  pausedDomains: readonly string[];
  configVersion?: string | undefined;
  /** The pre-schemaVersion fields (relay/stats/collector.ts), kept alongside. */
  legacy?: object | undefined;
}): StatsDocumentV1 {
  const from = Math.floor(input.now / HOUR_MS) * HOUR_MS - (input.hours - 1) * HOUR_MS;
  return {
    ...(input.legacy ?? { version: 1 }),
    schemaVersion: STATS_SCHEMA_VERSION,
    instance: input.counters.instance,
    instanceCreated: new Date(input.counters.instanceCreated).toISOString(),
    now: new Date(input.now).toISOString(),
    ...(input.configVersion !== undefined ? { configVersion: input.configVersion } : {}),
    queued: input.queued,
    pausedDomains: [...input.pausedDomains],
    bucketSeconds: 3600,
    hoursFrom: new Date(from).toISOString(),
    buckets: input.counters.buckets(from),
  };
}
