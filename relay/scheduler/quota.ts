// Warm-up quotas: per source IP, hourly and daily caps (optionally per provider), counted in
// recipients per UTC hour and UTC day. Pure: usage × caps × clock → may it send now, or when.
import type { WarmupConfig } from '../config/schema.ts';

export type Window = 'hour' | 'day';
const SPAN: Record<Window, number> = { hour: 3_600_000, day: 86_400_000 };

export function windowStart(window: Window, now: number): number {
  return Math.floor(now / SPAN[window]) * SPAN[window];
}

export function windowEnd(window: Window, now: number): number {
  return windowStart(window, now) + SPAN[window];
}

/** A counter row: `count` recipients in the window that began at `start`. */
export interface Counter {
  start: number;
  count: number;
}

/** Usage keyed by `${provider}|${window}`; provider "*" is the IP as a whole. */
export type Usage = ReadonlyMap<string, Counter>;

export function usageKey(provider: string, window: Window): string {
  return `${provider}|${window}`;
}

export function currentCount(usage: Usage, provider: string, window: Window, now: number): number {
  const c = usage.get(usageKey(provider, window));
  return c && c.start === windowStart(window, now) ? c.count : 0;
}

export type QuotaVerdict = { ok: true } | { ok: false; until: number; reason: string };

/** The verdict of every IP without caps (most): one shared object, read and never changed. */
const MAY_SEND: QuotaVerdict = { ok: true };

/**
 * May `n` more recipients leave this IP toward `provider` now? A group larger than a whole cap still
 * goes once the window is fresh, or it would wait forever.
 */
export function checkQuota(caps: WarmupConfig | undefined, usage: Usage, provider: string, now: number, n: number): QuotaVerdict {
  if (!caps) return MAY_SEND;
  const per = caps.providers.find((p) => p.name === provider);
  let until = 0;
  let reason = '';
  for (const [scope, c] of [['*', caps], [provider, per]] as const) {
    if (!c) continue;
    for (const window of ['hour', 'day'] as const) {
      const cap = window === 'hour' ? c.hourly : c.daily;
      if (cap === undefined) continue;
      const used = currentCount(usage, scope, window, now);
      if (used + n > cap && !(used === 0 && cap > 0)) {
        const end = windowEnd(window, now);
        if (end > until) {
          until = end;
          reason = `${window === 'hour' ? 'hourly' : 'daily'} cap ${cap}${scope === '*' ? '' : ` toward ${scope}`} reached`;
        }
      }
    }
  }
  return until > 0 ? { ok: false, until, reason } : MAY_SEND;
}

/** Usage after `n` more recipients (a copy: the input and its counters are left alone). */
export function addUsage(usage: Usage, provider: string, now: number, n: number): Map<string, Counter> {
  const out = new Map<string, Counter>();
  for (const [k, c] of usage) out.set(k, { start: c.start, count: c.count });
  addUsageTo(out, provider, now, n);
  return out;
}

/** The usage keys of a scope, hour then day: built once per provider name, not four per attempt. */
const KEYS_MAX = 10_000;
const scopeKeys = new Map<string, readonly [string, string]>();

function keysOf(scope: string): readonly [string, string] {
  let k = scopeKeys.get(scope);
  if (!k) {
    if (scopeKeys.size >= KEYS_MAX) scopeKeys.clear();
    scopeKeys.set(scope, (k = [usageKey(scope, 'hour'), usageKey(scope, 'day')]));
  }
  return k;
}

/**
 * `n` more recipients counted in `usage` itself (the scheduler's own map, once per attempt): a
 * counter of the current window is counted up in place, a new window's is a new counter.
 */
export function addUsageTo(usage: Map<string, Counter>, provider: string, now: number, n: number): void {
  const hour = windowStart('hour', now);
  const day = windowStart('day', now);
  for (let i = 0; i < 2; i++) {
    const keys = keysOf(i === 0 ? '*' : provider);
    countIn(usage, keys[0], hour, n);
    countIn(usage, keys[1], day, n);
  }
}

function countIn(usage: Map<string, Counter>, key: string, start: number, n: number): void {
  const c = usage.get(key);
  if (c && c.start === start) c.count += n;
  else usage.set(key, { start, count: n });
}
