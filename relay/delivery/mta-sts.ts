// MTA-STS (RFC 8461): discover a recipient domain's policy (TXT _mta-sts.<domain>), fetch it over
// verified HTTPS, cache it for max_age, and say which MX hosts may be used and whether TLS must be
// verified. The parser and matcher are pure; fetching goes through an injectable edge.
import https from 'node:https';
import tls from 'node:tls';
import type { MailResolver } from '../dns/resolver.ts';
import { classifyAddress } from './address-policy.ts';

export interface MtaStsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAgeSeconds: number;
}

export function parseStsTxt(records: string[]): string | undefined {
  const sts = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  // RFC 8461 §3.1: more than one record means none.
  if (sts.length !== 1) return undefined;
  return /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(sts[0]!)?.[1];
}

export function parsePolicy(text: string): MtaStsPolicy | undefined {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z0-9_]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const list = fields.get(m[1]!) ?? [];
    list.push(m[2]!);
    fields.set(m[1]!, list);
  }
  const mode = fields.get('mode')?.[0];
  const maxAge = Number(fields.get('max_age')?.[0]);
  if (fields.get('version')?.[0] !== 'STSv1') return undefined;
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') return undefined;
  if (!Number.isInteger(maxAge) || maxAge < 0) return undefined;
  const mx = (fields.get('mx') ?? []).map((h) => h.toLowerCase().replace(/\.$/, ''));
  if (mode !== 'none' && mx.length === 0) return undefined;
  return { mode, mx, maxAgeSeconds: Math.min(maxAge, 31557600) };
}

/** RFC 8461 §4.1: "*.example.com" matches exactly one extra left-most label. */
export function mxMatchesPolicy(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (p.startsWith('*.')) {
      const suffix = p.slice(1);
      return h.endsWith(suffix) && !h.slice(0, -suffix.length).includes('.') && h.length > suffix.length;
    }
    return h === p;
  });
}

export interface MtaStsOptions {
  /** HTTPS port of policy hosts (443; tests serve policies elsewhere on loopback). */
  port?: number;
  /** Extra trusted CA for policy hosts (tests). */
  ca?: string | Buffer;
  timeoutMs?: number;
  /** Replaces the HTTPS fetch entirely; returns the policy text or throws. */
  fetchPolicy?: (domain: string) => Promise<string>;
  /** Fetch from policy hosts on loopback/private addresses (labs, tests); see delivery.allowPrivateMx. */
  allowPrivate?: boolean;
}

interface Cached {
  id: string;
  policy: MtaStsPolicy;
  expires: number;
}

export class MtaStsCache {
  private readonly cache = new Map<string, Cached>();
  private readonly resolver: MailResolver;
  private readonly options: MtaStsOptions;
  private readonly clock: () => number;

  constructor(resolver: MailResolver, options: MtaStsOptions = {}, clock: () => number = Date.now) {
    this.resolver = resolver;
    this.options = options;
    this.clock = clock;
  }

  /** The policy in force for a domain, or undefined (deliver opportunistically). */
  async policyFor(domain: string): Promise<MtaStsPolicy | undefined> {
    const d = domain.toLowerCase();
    const now = this.clock();
    const cached = this.cache.get(d);
    const valid = cached && cached.expires > now ? cached : undefined;
    let id: string | undefined;
    try {
      id = parseStsTxt(await this.resolver.txt(`_mta-sts.${d}`));
    } catch {
      return valid?.policy;
    }
    // No record: a still-valid cached policy keeps protecting the domain (RFC 8461 §5.1).
    if (id === undefined) return valid?.policy;
    if (valid && valid.id === id) return valid.policy;
    try {
      const policy = parsePolicy(await this.fetch(d));
      if (!policy) return valid?.policy;
      this.cache.set(d, { id, policy, expires: now + policy.maxAgeSeconds * 1000 });
      return policy;
    } catch {
      return valid?.policy;
    }
  }

  private async fetch(domain: string): Promise<string> {
    if (this.options.fetchPolicy) return this.options.fetchPolicy(domain);
    const host = `mta-sts.${domain}`;
    const [address] = await this.resolver.addresses(host);
    if (!address) throw new Error(`${host} has no address`);
    if (!this.options.allowPrivate && classifyAddress(address) !== 'public') throw new Error(`${host} is on a non-public address`);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: address,
          servername: host,
          port: this.options.port ?? 443,
          path: '/.well-known/mta-sts.txt',
          headers: { host },
          ca: this.options.ca ? [...tls.rootCertificates, this.options.ca.toString()] : undefined,
          checkServerIdentity: (_h, cert) => tls.checkServerIdentity(host, cert),
          timeout: this.options.timeoutMs ?? 10_000,
        },
        (res) => {
          // No redirects (RFC 8461 §3.3); a policy is plain text and small.
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`${host}: HTTP ${res.statusCode}`));
            return;
          }
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
            if (body.length > 64 * 1024) req.destroy(new Error('policy too large'));
          });
          res.on('end', () => resolve(body));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${host}: timeout`)));
      req.on('error', reject);
      req.end();
    });
  }
}
