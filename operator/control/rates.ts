// Rates the control loop judges by, from hourly counters (relay/stats/contract.ts). Pure: the
// buckets, a filter and the clock in; totals and ratios out.
//
// Definitions (docs/control-loop.md):
// - bounce rate    = hard bounces / (delivered + every final bounce). Hard bounces only, as SES
//                    counts them: the list-quality signal. A deferral is not an outcome yet.
// - deferral rate  = deferred attempts / attempts.
// - complaint rate = complaints / delivered.
// - throttle rate  = attempts refused for rate or reputation (deferred or bounced) / attempts.
// Windows are made of whole UTC hours (the relay counts per hour): a window takes every hour bucket
// that overlaps it, so "1 h" spans the current hour and the previous one (1-2 h of data) and
// "24 h" 24-25 h. Good enough to judge by; the numbers shown always say over how many attempts.
import { COUNT_FIELDS, emptyCounts, addCounts, type Counts, type StatsBucket } from '../../relay/stats/contract.ts';

export const HOUR_MS = 3_600_000;

/** A bucket with its hour as a number (ms since epoch, start of the UTC hour). */
export type HourBucket = Omit<StatsBucket, 'hour'> & { hour: number };

export interface Rates {
  attempted: number;
  delivered: number;
  /** Final outcomes: delivered + every bounce. */
  final: number;
  bounceRate: number | undefined;
  deferralRate: number | undefined;
  complaintRate: number | undefined;
  throttleRate: number | undefined;
  counts: Counts;
}

export function bouncedAll(c: Counts): number {
  return c.bouncedHard + c.bouncedSoft + c.bouncedPolicy + c.bouncedRateLimited;
}

export function ratesOf(c: Counts): Rates {
  const final = c.delivered + bouncedAll(c);
  const ratio = (n: number, d: number) => (d > 0 ? n / d : undefined);
  return {
    attempted: c.attempted,
    delivered: c.delivered,
    final,
    bounceRate: ratio(c.bouncedHard, final),
    deferralRate: ratio(c.deferred, c.attempted),
    complaintRate: ratio(c.complained, c.delivered),
    throttleRate: ratio(c.deferredPolicy + c.deferredRateLimited + c.bouncedPolicy + c.bouncedRateLimited, c.attempted),
    counts: c,
  };
}

export type BucketFilter = (b: HourBucket) => boolean;

/** Sums the buckets of hours that overlap [now - windowMs, now) and are not before `since`. */
export function windowCounts(buckets: readonly HourBucket[], filter: BucketFilter, now: number, windowMs: number, since = -Infinity): Counts {
  const from = Math.max(now - windowMs, since);
  const total = emptyCounts();
  for (const b of buckets) if (b.hour + HOUR_MS > from && b.hour <= now && b.hour >= floorHour(since) && filter(b)) addCounts(total, b);
  return total;
}

export function floorHour(t: number): number {
  return Number.isFinite(t) ? Math.floor(t / HOUR_MS) * HOUR_MS : t;
}

export interface EligibleVolume {
  counts: Counts;
  /** Start of the oldest hour taken. */
  from: number | undefined;
  /** Enough volume to judge (at least minimumVolume final outcomes). */
  judged: boolean;
}

/**
 * SES-style "recent eligible volume": the last `windowMs` (24 h), widened hour by hour into the
 * past until it holds at least `minimumVolume` final outcomes, never before `since` (a resume
 * re-arms the detector: what happened before it is not held against the domain again) and never
 * past what is kept. Below the minimum over all of that: no judgement.
 */
export function recentEligible(buckets: readonly HourBucket[], filter: BucketFilter, now: number, opts: { windowMs: number; minimumVolume: number; since?: number }): EligibleVolume {
  const since = opts.since ?? -Infinity;
  const byHour = new Map<number, Counts>();
  for (const b of buckets) {
    if (b.hour > now || b.hour < floorHour(since) || !filter(b)) continue;
    const c = byHour.get(b.hour) ?? emptyCounts();
    byHour.set(b.hour, addCounts(c, b));
  }
  const hours = [...byHour.keys()].sort((a, b) => b - a);
  const total = emptyCounts();
  let from: number | undefined;
  for (const h of hours) {
    const inWindow = h + HOUR_MS > now - opts.windowMs;
    if (!inWindow && total.delivered + bouncedAll(total) >= opts.minimumVolume) break;
    addCounts(total, byHour.get(h)!);
    from = h;
  }
  return { counts: total, from, judged: total.delivered + bouncedAll(total) >= opts.minimumVolume };
}

/** "18.2 %" (one decimal; two below 1 %, where complaint thresholds live). */
export function percent(r: number | undefined): string {
  if (r === undefined) return '-';
  const p = r * 100;
  return `${p < 1 && p > 0 ? p.toFixed(2) : p.toFixed(1)} %`;
}

/** "1,240" */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export { COUNT_FIELDS };

/**
 * A domain's counts in the hour of its resume, taken at the resume. Buckets are whole hours, so
 * without it the judgement after a resume would take that hour's earlier mail, the very mail that
 * paused the domain, and pause it again at once.
 */
export interface ResumeBaseline {
  hour: number;
  counts: Counts;
}

/** The baseline a resume at `now` takes: what `filter` counted so far in the current hour. */
export function resumeBaseline(buckets: readonly HourBucket[], filter: BucketFilter, now: number): ResumeBaseline {
  const hour = floorHour(now);
  const counts = emptyCounts();
  for (const b of buckets) if (b.hour === hour && filter(b)) addCounts(counts, b);
  return { hour, counts };
}

/** The buckets with a domain's resume baseline taken off its resume hour (a bucket of negative counts). */
export function afterResume(buckets: readonly HourBucket[], domain: string, baseline: ResumeBaseline | undefined): readonly HourBucket[] {
  if (!baseline) return buckets;
  const negative = Object.fromEntries(COUNT_FIELDS.map((f) => [f, -baseline.counts[f]])) as Counts;
  return [...buckets, { hour: baseline.hour, ip: '', provider: '', domain, class: 'bulk', ...negative }];
}
