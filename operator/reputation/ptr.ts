// PTR and forward-confirmed reverse DNS of one sending IP: its PTR must be its EHLO name, and that
// name's A/AAAA must contain the IP (Outlook and Gmail refuse bulk from IPs without FCrDNS). The
// judgement is pure; lookupPtr is the DNS edge and never throws.
import type { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { expandIpv6 } from './lists.ts';

export type PtrState = 'ok' | 'mismatch' | 'unknown';

export interface PtrFacts {
  ip: string;
  /** The name the IP's relay says in EHLO (spec ips[].hostname). */
  ehlo: string;
  /** PTR names found, or the lookup's error code. */
  ptr: string[] | { error: string };
  /** A/AAAA of the EHLO name, or the lookup's error code. */
  forward: string[] | { error: string };
}

export interface PtrVerdict {
  state: PtrState;
  /** What DNS said, for status: "PTR 10.2.0.192.in-addr.arpa → x; A x → 192.0.2.10". */
  records: string[];
  message: string;
}

const NEGATIVE = new Set(['ENOTFOUND', 'ENODATA']);

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function sameIp(a: string, b: string): boolean {
  if (isIP(a) === 6 && isIP(b) === 6) return expandIpv6(a.toLowerCase()) === expandIpv6(b.toLowerCase());
  return a === b;
}

export function judgePtr(f: PtrFacts): PtrVerdict {
  const records: string[] = [];
  const ehlo = norm(f.ehlo);
  if (!Array.isArray(f.ptr)) {
    records.push(`PTR ${f.ip}: ${f.ptr.error}`);
    // No PTR at all is a finding; a resolver failure is not.
    if (NEGATIVE.has(f.ptr.error)) return { state: 'mismatch', records, message: `${f.ip} has no PTR record (want ${ehlo})` };
    return { state: 'unknown', records, message: `PTR lookup of ${f.ip} failed (${f.ptr.error})` };
  }
  records.push(`PTR ${f.ip} → ${f.ptr.map(norm).join(', ') || '(none)'}`);
  if (Array.isArray(f.forward)) records.push(`A/AAAA ${ehlo} → ${f.forward.join(', ') || '(none)'}`);
  else records.push(`A/AAAA ${ehlo}: ${f.forward.error}`);
  if (!f.ptr.map(norm).includes(ehlo)) return { state: 'mismatch', records, message: `PTR of ${f.ip} is ${f.ptr.map(norm).join(', ') || 'empty'}, not the EHLO name ${ehlo}` };
  if (!Array.isArray(f.forward)) {
    if (NEGATIVE.has(f.forward.error)) return { state: 'mismatch', records, message: `${ehlo} has no A/AAAA record, so ${f.ip} is not forward-confirmed` };
    return { state: 'unknown', records, message: `address lookup of ${ehlo} failed (${f.forward.error})` };
  }
  if (!f.forward.some((a) => sameIp(a, f.ip))) return { state: 'mismatch', records, message: `${ehlo} resolves to ${f.forward.join(', ') || 'nothing'}, not ${f.ip}` };
  return { state: 'ok', records, message: `${f.ip} ⇄ ${ehlo}` };
}

function errorOf(err: unknown): { error: string } {
  return { error: (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN' };
}

/** Looks up the PTR of `ip` and the addresses of `ehlo` through `resolver`, then judges. */
export async function lookupPtr(resolver: Pick<Resolver, 'reverse' | 'resolve4' | 'resolve6'>, ip: string, ehlo: string): Promise<PtrVerdict> {
  const ptr = await resolver.reverse(ip).catch(errorOf);
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(norm(ehlo)), resolver.resolve6(norm(ehlo))]);
  let forward: string[] | { error: string } = [];
  for (const r of [v4, v6]) {
    if (r.status === 'fulfilled') forward = [...(Array.isArray(forward) ? forward : []), ...r.value];
  }
  if (Array.isArray(forward) && forward.length === 0) {
    // Neither family answered: report the IPv4 error unless it only said "no such data".
    const e4 = v4.status === 'rejected' ? errorOf(v4.reason) : undefined;
    const e6 = v6.status === 'rejected' ? errorOf(v6.reason) : undefined;
    if (e4 && (!NEGATIVE.has(e4.error) || !e6 || NEGATIVE.has(e6.error))) forward = e4;
    else if (e6 && !NEGATIVE.has(e6.error)) forward = e6;
  }
  return judgePtr({ ip, ehlo, ptr, forward });
}
