// Provider rollup: the MX host name says who runs a domain's mail, so a company domain hosted at
// Google is shaped as Google whatever its name. Config providers (with mxSuffixes) are tried first,
// so a pool can split or rename a built-in; anything unrecognised is "default".

export interface ProviderPattern {
  name: string;
  mxSuffixes: readonly string[];
}

export const BUILTIN_PROVIDERS: readonly ProviderPattern[] = [
  { name: 'google', mxSuffixes: ['google.com', 'googlemail.com'] },
  { name: 'microsoft', mxSuffixes: ['protection.outlook.com', 'outlook.com', 'hotmail.com'] },
  // Yahoo runs AOL's mail: both sit behind yahoodns.net MX hosts.
  { name: 'yahoo', mxSuffixes: ['yahoodns.net', 'yahoo.com', 'aol.com'] },
  { name: 'apple', mxSuffixes: ['icloud.com', 'me.com', 'mac.com'] },
  { name: 'proofpoint', mxSuffixes: ['pphosted.com', 'ppe-hosted.com'] },
  { name: 'mimecast', mxSuffixes: ['mimecast.com'] },
];

function matches(host: string, suffix: string): boolean {
  const s = suffix.toLowerCase().replace(/^\*?\./, '').replace(/\.$/, '');
  return host === s || host.endsWith(`.${s}`);
}

const NO_CUSTOM: readonly ProviderPattern[] = [];

/**
 * Answers per MX host, kept per custom list (the config's, replaced whole by a live reload):
 * the rollup normalises every suffix of every provider, and the engine asks it about each
 * recipient's MX more than once per attempt (metrics, events) and once per held group.
 */
const rollups = new WeakMap<readonly ProviderPattern[], Map<string, string>>();
const ROLLUPS_MAX = 10_000;

export function rollupProvider(mxHost: string | undefined, custom: readonly ProviderPattern[] = NO_CUSTOM): string {
  if (!mxHost) return 'default';
  let known = rollups.get(custom);
  if (!known) rollups.set(custom, (known = new Map()));
  let p = known.get(mxHost);
  if (p === undefined) {
    if (known.size >= ROLLUPS_MAX) known.clear();
    p = rollupOf(mxHost, custom);
    known.set(mxHost, p);
  }
  return p;
}

function rollupOf(mxHost: string, custom: readonly ProviderPattern[]): string {
  const h = mxHost.toLowerCase().replace(/\.$/, '');
  for (const p of [...custom, ...BUILTIN_PROVIDERS]) if (p.mxSuffixes.some((s) => matches(h, s))) return p.name;
  return 'default';
}

/**
 * The key the scheduler shapes a destination by: a recognised provider's name, else "default/<MX
 * host>". Unrecognised destinations share the default limits but not each other's fate: one small
 * site's reputation reply must not throttle mail to every other unrecognised site.
 */
export function shapingKey(mxHost: string | undefined, custom: readonly ProviderPattern[] = NO_CUSTOM): string {
  const p = rollupProvider(mxHost, custom);
  return p === 'default' && mxHost ? `default/${mxHost.toLowerCase().replace(/\.$/, '')}` : p;
}

/** The provider a shaping key belongs to (bounded: the metrics label and the stats grouping). */
export function providerOfKey(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash);
}
