// Which configured sending domain a message counts for (its events, its suppression scope), found
// through an index of the configured domains built once per config version instead of a walk of
// the list per message: with 10,000 domains the walk (a toLowerCase of each) was ~450 µs per
// accepted message when the domain came late in the list (bench/README.md, 2026-12-07).
// A live config replaces `config.domains` with a new array (relay/config/live.ts), which gets its own index.
import { parseAuthorDomain } from '../dkim/sign.ts';
import { normaliseDomain } from '../suppression/rules.ts';

/** RelayConfig['domains'], as far as this needs it. */
type Domains = readonly { domain: string; returnPathDomain?: string | undefined }[];

interface DomainIndex {
  /** Lower-cased name → itself, for the configured names. */
  names: Set<string>;
  /** Lower-cased return-path domain → [position in the list, the domain it belongs to] (the first). */
  returnPaths: Map<string, [number, string]>;
}

const indexes = new WeakMap<Domains, DomainIndex>();

function indexOf(domains: Domains): DomainIndex {
  let ix = indexes.get(domains);
  if (ix) return ix;
  ix = { names: new Set(), returnPaths: new Map() };
  domains.forEach((x, i) => {
    ix!.names.add(x.domain.toLowerCase());
    const rp = x.returnPathDomain?.toLowerCase();
    if (rp !== undefined && !ix!.returnPaths.has(rp)) ix!.returnPaths.set(rp, [i, x.domain.toLowerCase()]);
  });
  indexes.set(domains, ix);
  return ix;
}

/** Whether `domain` (lower case) is a configured sending domain. */
export function isConfiguredDomain(domain: string, domains: Domains): boolean {
  return indexOf(domains).names.has(domain);
}

/**
 * The configured domain whose return-path domain `d` is or is under; the first in the list when
 * several are (as the walk of the list it replaces chose).
 */
function byReturnPath(d: string, ix: DomainIndex): string | undefined {
  if (ix.returnPaths.size === 0) return undefined;
  let best: [number, string] | undefined;
  for (let s = d; ; ) {
    const hit = ix.returnPaths.get(s);
    if (hit && (!best || hit[0] < best[0])) best = hit;
    const dot = s.indexOf('.');
    if (dot < 0) break;
    s = s.slice(dot + 1);
  }
  return best?.[1];
}

/**
 * The sending domain a message counts for, as DKIM picks its key (relay/dkim/sign.ts): the
 * author's (From:) domain when it is configured, else the envelope sender's (or the configured
 * domain whose return-path domain it is), else the author's, else the envelope's.
 */
export function sendingDomainOf(message: Buffer | undefined, envelopeSender: string, domains: Domains): string {
  const ix = indexOf(domains);
  const env = normaliseDomain(envelopeSender.slice(envelopeSender.lastIndexOf('@') + 1));
  // Not authorDomain's per-Buffer cache: the intake's buffer here is never the one delivery reads
  // (that one has the Received field), and a WeakMap entry per accepted message cost more (~0.8 µs,
  // its ephemeron to collect) than the parse it would save.
  const author = message ? normaliseDomain(parseAuthorDomain(message) ?? '') : '';
  if (author && ix.names.has(author)) return author;
  if (env) {
    if (ix.names.has(env)) return env;
    const rp = byReturnPath(env, ix);
    if (rp) return rp;
  }
  return author || env || 'unknown';
}
