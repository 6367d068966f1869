// GET /v1/stats: the document the operator reads (operator/observe). This type is the contract;
// the relay never imports operator code, the operator imports this module.
//
// Versioning: `schemaVersion` changes only when a field changes meaning or goes away; new fields
// may be added to version 1 at any time. A reader that gets another schemaVersion must report the
// relay as unreadable, never guess. (`version: 1` and the ips/providers/restrictions fields are
// the pre-schemaVersion document, kept for `mailfleet` CLI users and dashboards.)
//
// Counters are durable (the relay's SQLite, relay/stats/counters.ts): a restarted relay continues
// them. They are kept per UTC hour, so a reader that polls the same hour twice reads the same
// numbers again (idempotent: no deltas to lose or double). `instance` names the counters' store:
// a new value means a new store (a replaced volume), whose hours start from zero.

import { z } from 'zod';

export const STATS_SCHEMA_VERSION = 1 as const;

/** Bounce categories as the control loop judges them (relay/stats/categories.ts maps the classifier's). */
export const BOUNCE_KINDS = ['hard', 'soft', 'policy', 'rateLimited'] as const;
export type BounceKind = (typeof BOUNCE_KINDS)[number];

export const COUNT_FIELDS = [
  'attempted', 'delivered', 'deferred', 'deferredPolicy', 'deferredRateLimited',
  'bouncedHard', 'bouncedSoft', 'bouncedPolicy', 'bouncedRateLimited', 'complained', 'suppressed',
] as const;
export type CountField = (typeof COUNT_FIELDS)[number];

/**
 * Per recipient: `attempted` counts attempts that reached an outcome (delivered, deferred,
 * bounced, expired). `deferredPolicy` / `deferredRateLimited` are the part of `deferred` whose reply
 * named the sender's reputation or policy (4.7.x, "RP-00x", "TS0x") or a rate limit. Bounces are
 * final failures by category; an expiry (gave up after retry.maxAgeSeconds) is a soft bounce.
 * `complained` and `suppressed` are counted when the feedback arrives or the recipient is skipped
 * (they are not attempts).
 */
export type Counts = Record<CountField, number>;

export const MESSAGE_CLASSES = ['otp', 'transactional', 'bulk'] as const;

export interface StatsBucket extends Counts {
  /** Start of the UTC hour, ISO 8601. */
  hour: string;
  /** Source IP the relay sent from ("default" when it binds none). */
  ip: string;
  /** The MX rollup (gmail, outlook, yahoo, … or a configured provider; "smarthost" for routes). */
  provider: string;
  /** Sending domain: one of the relay's `domains[]` (matched on the envelope sender, its return-path domain or a subdomain); "(other)" otherwise. */
  domain: string;
  class: (typeof MESSAGE_CLASSES)[number];
}

export interface StatsDocumentV1 {
  schemaVersion: typeof STATS_SCHEMA_VERSION;
  /** Identity of the counters' store; changes only with a new data volume. */
  instance: string;
  /** When that store was created (ISO 8601). */
  instanceCreated: string;
  /** The relay's clock when it answered. */
  now: string;
  /** The live configuration version the relay runs (set by live config reload), when known. */
  configVersion?: string;
  /** Recipients waiting in the queue (queued or in flight). */
  queued: number;
  /** Sending domains whose bulk mail the relay currently holds (config `pausedDomains`). */
  pausedDomains: string[];
  bucketSeconds: 3600;
  /** Every non-empty hour from `hoursFrom` on, oldest first. */
  hoursFrom: string;
  buckets: StatsBucket[];
  /** Per source IP ("default" when the relay binds none): its warm-up as the relay enforces it. */
  ips?: { address: string; warmup?: z.infer<typeof WarmupStatsSchema> | undefined }[];
}

// Spelled out field by field (COUNT_FIELDS order; contract.test.ts holds them to it): the
// operator sums counts for every domain every round (issue 17), and a loop over the field names
// was most of that time.
export function emptyCounts(): Counts {
  return {
    attempted: 0, delivered: 0, deferred: 0, deferredPolicy: 0, deferredRateLimited: 0,
    bouncedHard: 0, bouncedSoft: 0, bouncedPolicy: 0, bouncedRateLimited: 0, complained: 0, suppressed: 0,
  };
}

export function addCounts(into: Counts, from: Partial<Counts>): Counts {
  into.attempted += from.attempted ?? 0;
  into.delivered += from.delivered ?? 0;
  into.deferred += from.deferred ?? 0;
  into.deferredPolicy += from.deferredPolicy ?? 0;
  into.deferredRateLimited += from.deferredRateLimited ?? 0;
  into.bouncedHard += from.bouncedHard ?? 0;
  into.bouncedSoft += from.bouncedSoft ?? 0;
  into.bouncedPolicy += from.bouncedPolicy ?? 0;
  into.bouncedRateLimited += from.bouncedRateLimited ?? 0;
  into.complained += from.complained ?? 0;
  into.suppressed += from.suppressed ?? 0;
  return into;
}

/** Adds `sign` × counts given in COUNT_FIELDS order. */
export function addCountsArray(into: Counts, v: readonly number[], sign = 1): Counts {
  into.attempted += sign * v[0]!;
  into.delivered += sign * v[1]!;
  into.deferred += sign * v[2]!;
  into.deferredPolicy += sign * v[3]!;
  into.deferredRateLimited += sign * v[4]!;
  into.bouncedHard += sign * v[5]!;
  into.bouncedSoft += sign * v[6]!;
  into.bouncedPolicy += sign * v[7]!;
  into.bouncedRateLimited += sign * v[8]!;
  into.complained += sign * v[9]!;
  into.suppressed += sign * v[10]!;
  return into;
}

/** The counts in COUNT_FIELDS order. */
export function countsArray(c: Counts): number[] {
  return [c.attempted, c.delivered, c.deferred, c.deferredPolicy, c.deferredRateLimited, c.bouncedHard, c.bouncedSoft, c.bouncedPolicy, c.bouncedRateLimited, c.complained, c.suppressed];
}

// The same contract as a zod schema, for readers (the operator) to check a document before use.
// Unknown fields pass (version 1 only ever gains fields); a missing or mistyped known one fails.

const count = z.number().int().min(0);
export const StatsBucketSchema = z.looseObject({
  hour: z.iso.datetime({ offset: true }),
  ip: z.string(),
  provider: z.string(),
  domain: z.string(),
  class: z.enum(MESSAGE_CLASSES),
  ...(Object.fromEntries(COUNT_FIELDS.map((f) => [f, count])) as Record<CountField, typeof count>),
});

/** An IP's warm-up as the relay enforces it (relay/stats/collector.ts WarmupStatsV1), in `ips[]`. */
export const WarmupStatsSchema = z.looseObject({
  stage: count,
  day: count,
  capToday: count.nullable(),
  sentToday: count,
  minVolumeToday: count.nullable(),
  done: z.boolean(),
  startedOn: z.string().nullable(),
});

export const StatsDocumentV1Schema = z.looseObject({
  schemaVersion: z.literal(STATS_SCHEMA_VERSION),
  instance: z.string().min(1),
  instanceCreated: z.iso.datetime({ offset: true }),
  now: z.iso.datetime({ offset: true }),
  configVersion: z.string().optional(),
  queued: count,
  pausedDomains: z.array(z.string()),
  bucketSeconds: z.literal(3600),
  hoursFrom: z.iso.datetime({ offset: true }),
  buckets: z.array(StatsBucketSchema),
  /** Per source IP (the relay's own view, since it started): its warm-up as enforced. */
  ips: z.array(z.looseObject({ address: z.string(), warmup: WarmupStatsSchema.optional() })).optional(),
});
