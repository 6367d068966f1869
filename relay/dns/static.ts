// DNS answers from memory, for `mailfleet dev` (every dev domain's MX is the capture MX, with no DNS
// server to run) and for tests. Names match exactly, or by a leading "*." (any subdomain), or "*"
// (any name). Unknown names are NXDOMAIN, known names without the asked type NODATA, as in real DNS.
import type { DnsBackend } from './resolver.ts';

export interface StaticZone {
  mx?: Record<string, { exchange: string; priority: number }[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  txt?: Record<string, string[][]>;
  ttlSeconds?: number;
}

function err(code: string, name: string): Error {
  return Object.assign(new Error(`${code} ${name}`), { code, hostname: name });
}

function lookup<T>(table: Record<string, T> | undefined, name: string): T | undefined {
  if (!table) return undefined;
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n in table) return table[n];
  for (const [k, v] of Object.entries(table)) if (k.startsWith('*.') && n.endsWith(k.slice(1))) return v;
  return table['*'];
}

export function staticDnsBackend(zone: StaticZone): DnsBackend {
  const ttl = zone.ttlSeconds ?? 60;
  const tables: (Record<string, unknown> | undefined)[] = [zone.mx, zone.a, zone.aaaa, zone.txt];
  const known = (name: string) => tables.some((t) => lookup(t, name) !== undefined);
  function answer<T>(table: Record<string, T[]> | undefined, name: string): T[] {
    const v = lookup(table, name);
    if (v && v.length > 0) return v;
    throw err(known(name) ? 'ENODATA' : 'ENOTFOUND', name);
  }
  return {
    resolveMx: async (n) => answer(zone.mx, n).map((r) => ({ ...r, ttl })),
    resolve4: async (n) => answer(zone.a, n).map((address) => ({ address, ttl })),
    resolve6: async (n) => answer(zone.aaaa, n).map((address) => ({ address, ttl })),
    resolveTxt: async (n) => answer(zone.txt, n).map((chunks) => Object.assign([...chunks], { ttl })),
  };
}
