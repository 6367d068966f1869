// Checks the records a MailDomain needs against what DNS actually serves. The resolver is
// injected (node:dns Resolver with setServers), so tests point it at a private dnsmasq and
// clusters at whatever resolver sees the public zone.
import { Resolver } from 'node:dns/promises';
import { recordMatches, type RequiredDnsRecord } from '../../render/dns.ts';

export type RequiredRecord = RequiredDnsRecord;

export interface VerifiedRecord {
  verified: boolean;
  message?: string;
}

/** The slice of node:dns/promises Resolver used here (so tests can fake it too). */
export interface DnsLookup {
  resolveTxt(name: string): Promise<string[][]>;
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolveCname(name: string): Promise<string[]>;
}

export function makeResolver(servers?: string[], timeoutMs = 2000): DnsLookup {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers && servers.length > 0) r.setServers(servers);
  return r;
}

/**
 * TXT comparison that ignores what DNS publishers vary without changing meaning: runs of
 * whitespace, spaces around ";" in tag lists, a trailing ";", and the 255-octet string splits.
 */
export function normalizeTxt(v: string): string {
  return v
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\s*;\s*/g, ';')
    .replace(/;$/, '');
}

const host = (v: string) => v.trim().toLowerCase().replace(/\.$/, '');

function errText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND' || code === 'ENODATA') return 'not found in DNS';
  return `lookup failed: ${code ?? String(err)}`;
}

export async function verifyRecord(dns: DnsLookup, rec: RequiredRecord): Promise<VerifiedRecord> {
  try {
    if (rec.type === 'TXT') {
      const found = (await dns.resolveTxt(rec.name)).map((chunks) => chunks.join(''));
      // What counts as a match (SPF mechanism order, spacing) is the render layer's rule.
      if (recordMatches(rec, found)) return { verified: true };
      // SPF and DMARC allow exactly one record of their kind; show the one that is there.
      const prefix = rec.value.split(/[\s;]/)[0] ?? '';
      const same = found.filter((t) => prefix && t.startsWith(prefix));
      const shown = (same.length ? same : found).slice(0, 2).map((t) => JSON.stringify(t.length > 120 ? t.slice(0, 117) + '...' : t));
      return { verified: false, message: found.length ? `DNS has ${shown.join(', ')}` : 'no TXT record' };
    }
    if (rec.type === 'MX') {
      const found = await dns.resolveMx(rec.name);
      if (recordMatches(rec, found)) return { verified: true };
      return { verified: false, message: found.length ? `MX points to ${found.map((m) => host(m.exchange)).join(', ')}` : 'no MX record' };
    }
    const found = await dns.resolveCname(rec.name);
    if (recordMatches(rec, found)) return { verified: true };
    return { verified: false, message: found.length ? `CNAME points to ${found.map(host).join(', ')}` : 'no CNAME record' };
  } catch (err) {
    return { verified: false, message: errText(err) };
  }
}

export async function verifyRecords<R extends RequiredRecord>(dns: DnsLookup, records: readonly R[]): Promise<Array<R & VerifiedRecord>> {
  // One query per name and type: the return path has an MX record per pool hostname, and every
  // one of them is checked against the same answer.
  const answers = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, q: () => Promise<T>): Promise<T> => {
    let p = answers.get(key) as Promise<T> | undefined;
    if (!p) answers.set(key, (p = q()));
    return p;
  };
  const shared: DnsLookup = {
    resolveTxt: (n) => once(`TXT ${n}`, () => dns.resolveTxt(n)),
    resolveMx: (n) => once(`MX ${n}`, () => dns.resolveMx(n)),
    resolveCname: (n) => once(`CNAME ${n}`, () => dns.resolveCname(n)),
  };
  return Promise.all(
    records.map(async (r) => {
      const v = await verifyRecord(shared, r);
      const out = { ...r, verified: v.verified } as R & VerifiedRecord;
      if (v.message) out.message = v.message;
      else delete out.message;
      return out;
    }),
  );
}
