// The relay's provider defaults as one list, in the shape of config.shaping.providers and of the
// SendingPool's limits.providers: the "default" entry (KumoMTA's published limits, limits.ts) and
// each provider with a built-in profile, with its MX suffixes (providers.ts). The relay owns them;
// the operator shows them as the CRD's default and renders only what a pool changes. Pure.
import { BUILTIN_PROVIDERS } from './providers.ts';
import { BUILTIN_PROFILES, KUMO_DEFAULTS } from './limits.ts';

export interface ProviderDefault {
  name: string;
  mxSuffixes?: string[];
  maxConnections?: number;
  messagesPerConnection?: number;
  messagesPerSecond?: number;
  newConnectionsPerMinute?: number;
}

export const DEFAULT_PROVIDER_SHAPING: readonly ProviderDefault[] = [
  {
    name: 'default',
    maxConnections: KUMO_DEFAULTS.maxConnections,
    messagesPerConnection: KUMO_DEFAULTS.messagesPerConnection,
    messagesPerSecond: KUMO_DEFAULTS.messagesPerSecond,
    newConnectionsPerMinute: KUMO_DEFAULTS.newConnectionsPerMinute,
  },
  ...Object.entries(BUILTIN_PROFILES).map(([name, profile]) => ({
    name,
    mxSuffixes: [...(BUILTIN_PROVIDERS.find((p) => p.name === name)?.mxSuffixes ?? [])],
    ...profile,
  })),
];

function same(a: ProviderDefault, b: ProviderDefault): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof ProviderDefault)[]);
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length || x.some((v, i) => v !== y[i])) return false;
    } else if (x !== y) return false;
  }
  return true;
}

/**
 * Whether a provider list is exactly the relay's defaults, i.e. overrides nothing: a relay given
 * it shapes every provider as a relay given none (limits.test.ts checks that).
 */
export function isDefaultProviderShaping(providers: readonly ProviderDefault[]): boolean {
  return providers.length === DEFAULT_PROVIDER_SHAPING.length && DEFAULT_PROVIDER_SHAPING.every((d) => {
    const p = providers.find((x) => x.name === d.name);
    return p !== undefined && same(p, d);
  });
}
