// Effective limits for one (source IP, provider): KumoMTA's published defaults, overlaid with the
// built-in provider profiles (which only ever tighten), then the pool's config, then any active
// throttle from adaptive backoff. Pure.
import type { ProviderShaping } from '../config/schema.ts';

export interface Limits {
  maxConnections: number;
  newConnectionsPerMinute: number;
  messagesPerConnection: number;
  messagesPerSecond: number;
  burst: number;
}

type Partial_ = Partial<Limits>;

// deliverability-facts.md, "Per-destination shaping (KumoMTA's published defaults)".
export const KUMO_DEFAULTS: Limits = {
  maxConnections: 10,
  newConnectionsPerMinute: 100,
  messagesPerConnection: 100,
  messagesPerSecond: 100,
  burst: 100,
};

export const BUILTIN_PROFILES: Readonly<Record<string, Partial_>> = {
  google: { maxConnections: 5, messagesPerConnection: 50 },
  yahoo: { messagesPerConnection: 20 },
};

export interface Throttle {
  messagesPerMinute: number;
  maxConnections: number;
}

function defined(p: Partial<ProviderShaping> | undefined): Partial_ {
  const out: Partial_ = {};
  if (!p) return out;
  for (const k of ['maxConnections', 'newConnectionsPerMinute', 'messagesPerConnection', 'messagesPerSecond', 'burst'] as const) {
    if (p[k] !== undefined) out[k] = p[k];
  }
  return out;
}

/**
 * `legacy` carries delivery.maxConnectionsPerHost / maxMessagesPerConnection, which configs written
 * before shaping existed use; a "default" provider entry wins over them.
 */
export function limitsFor(
  provider: string,
  config: readonly ProviderShaping[],
  legacy: { maxConnections?: number; messagesPerConnection?: number } = {},
  throttle?: Throttle,
): Limits {
  const base: Limits = { ...KUMO_DEFAULTS, ...legacy };
  const dflt = defined(config.find((p) => p.name === 'default'));
  let l: Limits = { ...base, ...dflt };
  // One second's worth of rate unless said otherwise.
  if (dflt.burst === undefined) l.burst = Math.max(1, Math.ceil(l.messagesPerSecond));
  const profile = BUILTIN_PROFILES[provider];
  if (profile) {
    for (const [k, v] of Object.entries(profile) as [keyof Limits, number][]) l[k] = Math.min(l[k], v);
  }
  const own = provider === 'default' ? {} : defined(config.find((p) => p.name === provider));
  l = { ...l, ...own };
  if (own.messagesPerSecond !== undefined && own.burst === undefined) l.burst = Math.max(1, Math.ceil(l.messagesPerSecond));
  if (throttle) {
    l.maxConnections = Math.min(l.maxConnections, throttle.maxConnections);
    l.messagesPerSecond = Math.min(l.messagesPerSecond, throttle.messagesPerMinute / 60);
    l.burst = 1;
  }
  return l;
}

/** Connections kept for otp mail out of `max`: none when there is only one. */
export function otpReserve(max: number, share: number): number {
  if (max < 2 || share <= 0) return 0;
  return Math.min(max - 1, Math.max(1, Math.ceil(max * share)));
}
