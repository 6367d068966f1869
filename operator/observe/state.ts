// What the operator has read from a pool's relays, merged so that reading twice, a relay restart
// or a replaced volume never counts anything twice. Pure.
//
// Each relay serves absolute counts per UTC hour, under the `instance` of its counters' store
// (relay/stats/contract.ts). A read replaces, for that instance and hour, what the last read said
// (taking the larger value per field: a count never goes down within an hour, and a relay that
// crashed before writing its last second must not take back what an earlier read saw). A new
// instance (a replaced volume) is another set of hours, added to the old one's: nothing lost,
// nothing doubled. Hours a relay no longer serves (older than its 48 h) are settled: summed over
// instances into one set, kept KEEP_HOURS for the windows and the idle-day count.
import { COUNT_FIELDS, type StatsDocumentV1, type Counts } from '../../relay/stats/contract.ts';
import { HOUR_MS, type HourBucket } from '../control/rates.ts';
import type { IpWarmup } from '../control/warmup-loop.ts';
import type { ResumeBaseline } from '../control/rates.ts';

/** 8 days: SES-style widening of a quiet domain's window to a week, and a day to spare. */
export const KEEP_HOURS = 8 * 24;
/** Hours an instance's buckets stay per instance (the relay keeps 48, the current one included). */
export const LIVE_HOURS = 46;

export interface RelaySeen {
  pod: string;
  instance: string;
  lastSeen: number;
  configVersion?: string | undefined;
  queued: number;
  pausedDomains: string[];
}

export interface ObservationState {
  /** Per relay instance: "hour|ip|provider|domain|class" → counts in COUNT_FIELDS order. */
  live: Record<string, Record<string, number[]>>;
  /** Older hours, summed over instances. */
  settled: Record<string, number[]>;
  relays: Record<string, RelaySeen>;
  /** Per source IP: the last hour it attempted mail (for idle days). */
  lastMail: Record<string, number>;
  /** Per source IP: the feedback-driven warm-up stage and the last day judged (operator/control/warmup-loop.ts). */
  warmup: Record<string, IpWarmup>;
  /** Per sending domain: its counts in the hour of its last resume, at the resume (operator/control/rates.ts ResumeBaseline). */
  resumeBaselines?: Record<string, ResumeBaseline>;
}

export function emptyState(): ObservationState {
  return { live: {}, settled: {}, relays: {}, lastMail: {}, warmup: {} };
}

const keyOf = (hour: number, b: { ip: string; provider: string; domain: string; class: string }) => `${hour}|${b.ip}|${b.provider}|${b.domain}|${b.class}`;

/** Merges one relay's document into the state (a new state; the input is not changed). */
export function mergeRead(state: ObservationState, pod: string, doc: StatsDocumentV1, now: number): ObservationState {
  const next: ObservationState = { ...state, live: { ...state.live }, relays: { ...state.relays }, lastMail: { ...state.lastMail } };
  const mine = { ...(next.live[doc.instance] ?? {}) };
  for (const b of doc.buckets) {
    const hour = Date.parse(b.hour);
    const k = keyOf(hour, b);
    const prev = mine[k];
    mine[k] = COUNT_FIELDS.map((f, i) => Math.max(prev?.[i] ?? 0, b[f]));
    if (b.attempted > 0 && (next.lastMail[b.ip] ?? 0) < hour) next.lastMail[b.ip] = hour;
  }
  next.live[doc.instance] = mine;
  // A pod seen with a new instance replaces its old record (the old instance's hours stay).
  for (const [inst, r] of Object.entries(next.relays)) if (r.pod === pod && inst !== doc.instance) delete next.relays[inst];
  next.relays[doc.instance] = { pod, instance: doc.instance, lastSeen: now, configVersion: doc.configVersion, queued: doc.queued, pausedDomains: [...doc.pausedDomains] };
  return next;
}

/** What a relay serves when asked no `hours` (relay/stats/document.ts DEFAULT_STATS_HOURS). */
export const DEFAULT_READ_HOURS = 25;

/**
 * The `hours` to ask a relay for: the hours since the last read of its pod (mergeRead keeps the
 * older ones), one more for clocks apart. Undefined (the relay's default 25) for a pod not read
 * yet or not for longer than that. Every 30 s this is 2-3 hours instead of 25: a tenth of the
 * document to fetch, parse, validate and merge.
 */
export function hoursToRead(lastSeen: number | undefined, now: number): number | undefined {
  if (lastSeen === undefined) return undefined;
  const n = Math.floor(now / HOUR_MS) - Math.floor(lastSeen / HOUR_MS) + 2;
  return n < DEFAULT_READ_HOURS ? n : undefined;
}

/** Moves hours past LIVE_HOURS into settled and drops what is older than KEEP_HOURS. */
export function compact(state: ObservationState, now: number): ObservationState {
  const liveFrom = Math.floor(now / HOUR_MS) * HOUR_MS - LIVE_HOURS * HOUR_MS;
  const keepFrom = Math.floor(now / HOUR_MS) * HOUR_MS - KEEP_HOURS * HOUR_MS;
  const settled: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(state.settled)) if (Number(k.split('|')[0]) >= keepFrom) settled[k] = v;
  const live: ObservationState['live'] = {};
  for (const [inst, hours] of Object.entries(state.live)) {
    const keep: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(hours)) {
      const hour = Number(k.split('|')[0]);
      if (hour >= liveFrom) keep[k] = v;
      else if (hour >= keepFrom) settled[k] = (settled[k] ?? COUNT_FIELDS.map(() => 0)).map((x, i) => x + (v[i] ?? 0));
    }
    if (Object.keys(keep).length > 0 || state.relays[inst]) live[inst] = keep;
  }
  const lastMail = Object.fromEntries(Object.entries(state.lastMail).filter(([, h]) => h >= now - 60 * 24 * HOUR_MS));
  return { ...state, live, settled, lastMail };
}

/** Every hour bucket of the pool, summed over relay instances. */
export function poolBuckets(state: ObservationState): HourBucket[] {
  const sum = new Map<string, number[]>();
  const add = (k: string, v: number[]) => {
    const cur = sum.get(k);
    sum.set(k, cur ? cur.map((x, i) => x + (v[i] ?? 0)) : [...v]);
  };
  for (const hours of Object.values(state.live)) for (const [k, v] of Object.entries(hours)) add(k, v);
  for (const [k, v] of Object.entries(state.settled)) add(k, v);
  return [...sum].map(([k, v]) => {
    const [hour, ip, provider, domain, cls] = k.split('|');
    return { hour: Number(hour), ip: ip!, provider: provider!, domain: domain!, class: cls as HourBucket['class'], ...(Object.fromEntries(COUNT_FIELDS.map((f, i) => [f, v[i] ?? 0])) as Counts) };
  });
}
