// The DNS records a MailDomain owner must publish. Pure: the DKIM public keys are passed in
// (read from the key Secrets by the controller).
import { isIPv6 } from 'node:net';
import type { DnsRecord, MailDomain, SendingPool } from '../api/index.ts';
import { dkimTxtValue, type DkimPublicKey } from './dkim.ts';
import { returnPathDomain } from './relay-config.ts';

export type RequiredDnsRecord = Omit<DnsRecord, 'verified' | 'message'>;

function spf(pool: SendingPool, all: '-all' | '~all'): string {
  const mechanisms = pool.spec.ips.map((ip) => (isIPv6(ip.address) ? `ip6:${ip.address}` : `ip4:${ip.address}`));
  return ['v=spf1', ...mechanisms, all].join(' ');
}

/**
 * SPF goes on the envelope (return-path) domain, which is what SPF checks; it is dedicated to
 * this pool, so `-all`. The From: domain aligns with it under DMARC's relaxed alignment, so the
 * owner's existing SPF on the bare domain (other senders) is left alone.
 * The return path gets an MX at the pool's hosts so bounces come back to the relays, unless a
 * CNAME hands it to a host that publishes both.
 * `dkimKeys` are the published selectors (Active and Retiring); a selector whose key is not
 * generated yet has no record.
 */
export function requiredDnsRecords(domain: MailDomain, pool: SendingPool, dkimKeys: readonly DkimPublicKey[] = []): RequiredDnsRecord[] {
  const d = domain.spec.domain;
  const rp = returnPathDomain(domain);
  const records: RequiredDnsRecord[] = [];

  if (domain.spec.returnPath.cname) {
    records.push({ type: 'CNAME', name: rp, value: domain.spec.returnPath.cname, purpose: 'return-path' });
  } else {
    records.push({ type: 'TXT', name: rp, value: spf(pool, '-all'), purpose: 'spf' });
    const hosts = [...new Set(pool.spec.ips.map((ip) => ip.hostname))].sort();
    for (const host of hosts) records.push({ type: 'MX', name: rp, value: host, priority: 10, purpose: 'return-path' });
  }

  for (const key of [...dkimKeys].sort((a, b) => a.selector.localeCompare(b.selector))) {
    records.push({ type: 'TXT', name: `${key.selector}._domainkey.${d}`, value: dkimTxtValue(key.algorithm, key.publicKey), purpose: 'dkim' });
  }

  const dm = domain.spec.dmarc;
  const dmarc = ['v=DMARC1', `p=${dm.policy}`];
  if (dm.percent !== undefined) dmarc.push(`pct=${dm.percent}`);
  if (dm.rua?.length) dmarc.push(`rua=${dm.rua.join(',')}`);
  // Relaxed alignment: the return path is a subdomain of the From: domain.
  dmarc.push('adkim=r', 'aspf=r');
  records.push({ type: 'TXT', name: `_dmarc.${d}`, value: dmarc.join('; '), purpose: 'dmarc' });
  return records;
}

/** TXT values longer than 255 octets are published as several strings; resolvers hand them back split. */
export function txtChunks(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out;
}

/**
 * Whether a published record satisfies a required one. `found` is what the resolver returned
 * for (name, type): TXT as joined strings, MX as {exchange, priority}, CNAME as targets.
 */
export function recordMatches(required: RequiredDnsRecord, found: readonly (string | { exchange: string; priority: number })[]): boolean {
  const norm = (s: string) => s.toLowerCase().replace(/\.$/, '');
  switch (required.type) {
    case 'TXT': {
      const squash = (s: string) => s.replace(/\s*;\s*/g, ';').replace(/\s+/g, ' ').trim();
      if (required.purpose === 'spf') {
        // Another SPF with the same mechanisms in another order is as good.
        const want = new Set(required.value.split(' '));
        return found.some((f) => typeof f === 'string' && f.startsWith('v=spf1') && [...want].every((m) => f.split(/\s+/).includes(m)));
      }
      return found.some((f) => typeof f === 'string' && squash(f) === squash(required.value));
    }
    case 'MX':
      return found.some((f) => typeof f === 'object' && norm(f.exchange) === norm(required.value));
    case 'CNAME':
      return found.some((f) => typeof f === 'string' && norm(f) === norm(required.value));
  }
}
