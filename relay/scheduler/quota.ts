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

/**
 * May `n` more recipients leave this IP toward `provider` now? A group larger than a whole cap still
 * goes once the window is fresh, or it would wait forever.
 */
export function checkQuota(caps: WarmupConfig | undefined, usage: Usage, provider: string, now: number, n: number): QuotaVerdict {
  if (!caps) return { ok: true };
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
  return until > 0 ? { ok: false, until, reason } : { ok: true };
}

/** Usage after `n` more recipients. */
export function addUsage(usage: Usage, provider: string, now: number, n: number): Map<string, Counter> {
  const out = new Map(usage);
  addUsageTo(out, provider, now, n);
  return out;
}

const WINDOWS = ['hour', 'day'] as const;

/** `n` more recipients counted in `usage` itself (the scheduler's own map, once per attempt). */
export function addUsageTo(usage: Map<string, Counter>, provider: string, now: number, n: number): void {
  for (let i = 0; i < 2; i++) {
    const scope = i === 0 ? '*' : provider;
    for (const window of WINDOWS) {
      const start = windowStart(window, now);
      const key = usageKey(scope, window);
      const c = usage.get(key);
      usage.set(key, { start, count: (c && c.start === start ? c.count : 0) + n });
    }
  }
}
