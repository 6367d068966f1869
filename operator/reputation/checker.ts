// The DNSBL edge: looks an IP up on each list through the configured resolver, answers cached for
// their TTL (a cache hit costs no query), every query paid from the per-list daily budget (none
// left = "unknown", never a query more). What an answer means is lists.ts's business.
import { Resolver } from 'node:dns/promises';
import { QueryBudget } from './budget.ts';
import { interpretLookup, queryName, type DnsblList, type ListVerdict, type LookupResult } from './lists.ts';

export type Lookup = (name: string) => Promise<LookupResult>;

/** NXDOMAIN carries no TTL through c-ares: cache "not listed" this long. */
const ABSENT_TTL_SECONDS = 300;

/** A-record lookups through `servers` ("host" or "host:port"); never throws. */
export function dnsLookup(servers: string[] | undefined, timeoutMs: number): Lookup {
  const r = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (servers && servers.length > 0) r.setServers(servers);
  return async (name) => {
    try {
      const a = await r.resolve4(name, { ttl: true });
      return { kind: 'answers', addresses: a.map((x) => x.address), ttlSeconds: Math.min(...a.map((x) => x.ttl)) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      if (code === 'ENOTFOUND' || code === 'ENODATA') return { kind: 'absent', ttlSeconds: ABSENT_TTL_SECONDS };
      return { kind: 'failed', code };
    }
  };
}

export interface DnsblCheckerOptions {
  lists: readonly DnsblList[];
  lookup: Lookup;
  /** DQS keys by list name (read from the lists' Secrets by the caller). */
  dqsKeys?: ReadonlyMap<string, string>;
  budget?: QueryBudget;
  clock?: () => number;
}

export class DnsblChecker {
  readonly budget: QueryBudget;
  private readonly o: DnsblCheckerOptions;
  private readonly clock: () => number;
  private readonly cache = new Map<string, { result: LookupResult; expires: number }>();

  constructor(o: DnsblCheckerOptions) {
    this.o = o;
    this.budget = o.budget ?? new QueryBudget();
    this.clock = o.clock ?? Date.now;
  }

  get lists(): readonly DnsblList[] {
    return this.o.lists;
  }

  private async lookupOn(list: DnsblList, ip: string): Promise<LookupResult> {
    const key = this.o.dqsKeys?.get(list.name);
    if (list.dqsKeySecret && !key) return { kind: 'failed', code: 'NO_DQS_KEY' };
    const name = queryName(ip, list, key);
    const now = this.clock();
    const hit = this.cache.get(name);
    if (hit && hit.expires > now) return hit.result;
    if (!this.budget.take(list.name, list.dailyQueryBudget, now)) return { kind: 'failed', code: 'BUDGET_SPENT' };
    const result = await this.o.lookup(name);
    // Failures are not cached: the next check asks again (and pays for it).
    if (result.kind !== 'failed') this.cache.set(name, { result, expires: now + Math.max(1, result.ttlSeconds) * 1000 });
    else this.cache.delete(name);
    return result;
  }

  /** One verdict per list for `ip`. */
  async check(ip: string): Promise<ListVerdict[]> {
    return Promise.all(this.o.lists.map(async (list) => interpretLookup(list, await this.lookupOn(list, ip))));
  }

  /**
   * Looks up each list's test entry (127.0.0.2 is on every list): a list that does not say
   * "listed" for it is not answering usefully (wrong zone, refused resolver), whatever it says for
   * the real IPs. Costs one query per list per call, counted in the budget (budget.ts plans for it).
   */
  async probe(): Promise<ListVerdict[]> {
    return this.check('127.0.0.2');
  }

  queriesToday(list: string): number {
    return this.budget.usedToday(list, this.clock());
  }
}
