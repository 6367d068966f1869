// The relay's DNS edge: MX routing, address lookup and TXT, through configurable servers, with
// answers cached for their TTL. Failures become DnsFailure with an enhanced status code that says
// whether to bounce (NXDOMAIN, null MX) or retry (SERVFAIL, timeout).
import { Resolver } from 'node:dns/promises';
import { getServers } from 'node:dns';
import { orderMx, type MxRecord } from './mx.ts';
import { wireQuery, TYPE_MX, TYPE_TXT } from './wire.ts';

export class DnsFailure extends Error {
  readonly permanent: boolean;
  /** RFC 3463 enhanced status code. */
  readonly enhanced: string;
  readonly dnsCode: string;
  constructor(message: string, permanent: boolean, enhanced: string, dnsCode: string) {
    super(message);
    this.name = 'DnsFailure';
    this.permanent = permanent;
    this.enhanced = enhanced;
    this.dnsCode = dnsCode;
  }
  /** The failure as an SMTP-style reply line, for logs, last_reply and DSNs. */
  get reply(): string {
    return `${this.permanent ? 550 : 451} ${this.enhanced} ${this.message}`;
  }
}

/**
 * The lookups the relay uses, shaped like node:dns/promises Resolver; tests may substitute it. MX and
 * TXT answers carry a TTL when the backend knows it (the default one does: see wire.ts).
 */
export interface DnsBackend {
  resolveMx(name: string): Promise<(MxRecord & { ttl?: number })[]>;
  resolve4(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolveTxt(name: string): Promise<(string[] & { ttl?: number })[]>;
}

/** c-ares for addresses (it reports their TTL), our wire client for MX and TXT (c-ares hides theirs). */
function defaultBackend(servers: string[] | undefined, timeoutMs: number, tries: number): DnsBackend {
  const r = new Resolver({ timeout: timeoutMs, tries });
  if (servers && servers.length > 0) r.setServers(servers);
  const wire = () => ({ servers: servers && servers.length > 0 ? servers : getServers(), timeoutMs, tries });
  return {
    resolve4: (n, o) => r.resolve4(n, o),
    resolve6: (n, o) => r.resolve6(n, o),
    async resolveMx(n) {
      return (await wireQuery(wire(), n, TYPE_MX)).map((a) => ({ ...(a.data as { priority: number; exchange: string }), ttl: a.ttl }));
    },
    async resolveTxt(n) {
      return (await wireQuery(wire(), n, TYPE_TXT)).map((a) => Object.assign([...(a.data as string[])], { ttl: a.ttl }));
    },
  };
}

function minTtl(records: readonly { ttl?: number }[], fallback: number): number {
  const ttls = records.map((r) => r.ttl).filter((t): t is number => typeof t === 'number');
  return ttls.length > 0 ? Math.min(...ttls) : fallback;
}

export interface MailResolverOptions {
  /** "host" or "host:port"; default: the system's resolvers. */
  servers?: string[] | undefined;
  timeoutMs?: number;
  tries?: number;
  /** How long to keep answers whose TTL the backend does not report, and empty (NODATA) answers. */
  fallbackTtlSeconds?: number;
  clock?: () => number;
  random?: () => number;
  backend?: DnsBackend;
}

export type MailRoute = { kind: 'mx'; hosts: string[] } | { kind: 'implicit'; hosts: string[] };

const NOT_FOUND = new Set(['ENOTFOUND']);
const NO_DATA = new Set(['ENODATA']);

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
}

interface CacheEntry<T> {
  value: T | DnsFailure;
  expires: number;
}

export class MailResolver {
  private readonly backend: DnsBackend;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly fallbackTtl: number;
  private readonly cache = new Map<string, CacheEntry<unknown>>();

  constructor(options: MailResolverOptions = {}) {
    this.backend = options.backend ?? defaultBackend(options.servers, options.timeoutMs ?? 5000, options.tries ?? 2);
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.fallbackTtl = options.fallbackTtlSeconds ?? 300;
  }

  private async cached<T>(key: string, load: () => Promise<{ value: T; ttl: number }>): Promise<T> {
    const now = this.clock();
    const hit = this.cache.get(key) as CacheEntry<T> | undefined;
    if (hit && hit.expires > now) {
      if (hit.value instanceof DnsFailure) throw hit.value;
      return hit.value;
    }
    try {
      const { value, ttl } = await load();
      this.cache.set(key, { value, expires: now + Math.max(1, ttl) * 1000 });
      return value;
    } catch (err) {
      // Negative answers are cached briefly (RFC 2308 spirit); temporary failures are not cached.
      if (err instanceof DnsFailure && err.permanent) this.cache.set(key, { value: err, expires: now + 60_000 });
      throw err;
    }
  }

  private temporary(what: string, err: unknown): DnsFailure {
    const code = codeOf(err);
    return new DnsFailure(`DNS lookup of ${what} failed (${code}); will retry`, false, '4.4.3', code);
  }

  /**
   * Hosts to try for a domain, best first. Null MX → permanent 5.1.10; NXDOMAIN → permanent 5.1.2;
   * no MX → the domain itself (implicit MX, RFC 5321 §5.1) if it has an address.
   */
  async route(domain: string): Promise<MailRoute> {
    const d = domain.toLowerCase().replace(/\.$/, '');
    const records = await this.cached(`mx:${d}`, async () => {
      try {
        const records = await this.backend.resolveMx(d);
        return { value: records.map((r) => ({ exchange: r.exchange, priority: r.priority })), ttl: minTtl(records, this.fallbackTtl) };
      } catch (err) {
        const code = codeOf(err);
        if (NOT_FOUND.has(code)) throw new DnsFailure(`domain ${d} does not exist (NXDOMAIN)`, true, '5.1.2', code);
        if (NO_DATA.has(code)) return { value: [] as MxRecord[], ttl: this.fallbackTtl };
        throw this.temporary(`MX ${d}`, err);
      }
    });
    if (records.length === 0) {
      const addrs = await this.addresses(d).catch((err: unknown) => {
        if (err instanceof DnsFailure && err.permanent) {
          throw new DnsFailure(`domain ${d} has no MX and no address record`, true, '5.1.2', err.dnsCode);
        }
        throw err;
      });
      if (addrs.length === 0) throw new DnsFailure(`domain ${d} has no MX and no address record`, true, '5.1.2', 'ENODATA');
      return { kind: 'implicit', hosts: [d] };
    }
    const decision = orderMx(records, this.random);
    if (decision.kind === 'null-mx') throw new DnsFailure(`${d} does not accept mail (null MX, RFC 7505)`, true, '5.1.10', 'NULLMX');
    return { kind: 'mx', hosts: decision.hosts };
  }

  /** IPv4 then IPv6 addresses of a host; [] when it has none; DnsFailure on NXDOMAIN or server trouble. */
  async addresses(host: string): Promise<string[]> {
    const h = host.toLowerCase().replace(/\.$/, '');
    if (/^\d+\.\d+\.\d+\.\d+$/.test(h) || h.includes(':')) return [h];
    return this.cached(`addr:${h}`, async () => {
      const [v4, v6] = await Promise.allSettled([this.backend.resolve4(h, { ttl: true }), this.backend.resolve6(h, { ttl: true })]);
      const out: { address: string; ttl: number }[] = [];
      let notFound = false;
      for (const r of [v4, v6]) {
        if (r.status === 'fulfilled') out.push(...r.value);
        else if (NOT_FOUND.has(codeOf(r.reason))) notFound = true;
        else if (!NO_DATA.has(codeOf(r.reason)) && out.length === 0 && r === v4) throw this.temporary(`address of ${h}`, r.reason);
      }
      if (out.length === 0 && notFound) throw new DnsFailure(`host ${h} does not exist (NXDOMAIN)`, true, '5.1.2', 'ENOTFOUND');
      const ttl = out.length > 0 ? Math.min(...out.map((a) => a.ttl)) : this.fallbackTtl;
      return { value: out.map((a) => a.address), ttl };
    });
  }

  /** TXT strings (each record's chunks joined); [] for NXDOMAIN/NODATA. */
  async txt(name: string): Promise<string[]> {
    const n = name.toLowerCase().replace(/\.$/, '');
    return this.cached(`txt:${n}`, async () => {
      try {
        const records = await this.backend.resolveTxt(n);
        return { value: records.map((chunks) => chunks.join('')), ttl: minTtl(records, this.fallbackTtl) };
      } catch (err) {
        if (NOT_FOUND.has(codeOf(err)) || NO_DATA.has(codeOf(err))) return { value: [] as string[], ttl: this.fallbackTtl };
        throw this.temporary(`TXT ${n}`, err);
      }
    });
  }
}
