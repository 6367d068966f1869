// The reputation loop of the operator: which IPs are due for a check, the checks (DNSBL and PTR),
// the pure decision, metrics. It returns what to write (status.ips[] reputation, relay config
// quarantine, warm-up baseline, Events); the SendingPool controller applies it. Clock and random
// are injected so tests drive time.
import type { Resolver } from 'node:dns/promises';
import { planInterval, nextCheckAt } from './budget.ts';
import { DnsblChecker } from './checker.ts';
import { decideReputation, type IpReputation, type Override, type ReputationDecision } from './decide.ts';
import type { ReputationConfig } from './lists.ts';
import { LISTED_VALUE, PTR_VALUE, type ReputationMetrics } from './metrics.ts';
import { lookupPtr, type PtrVerdict } from './ptr.ts';

export interface MonitoredIp {
  /** "namespace/name" of the SendingPool. */
  pool: string;
  address: string;
  /** The IP's EHLO name (spec ips[].hostname). */
  hostname: string;
  override: Override | undefined;
  /** What status carried from the last round (NO_REPUTATION at first). */
  reputation: IpReputation;
}

export interface IpOutcome {
  pool: string;
  address: string;
  decision: ReputationDecision;
  /** Set when this round checked PTR. */
  ptr: PtrVerdict | undefined;
}

export interface ReputationMonitorOptions {
  config: ReputationConfig;
  checker: DnsblChecker;
  /** For PTR/FCrDNS (the same resolver as the lists, or the cluster's). */
  ptrResolver: Pick<Resolver, 'reverse' | 'resolve4' | 'resolve6'>;
  metrics?: ReputationMetrics | undefined;
  clock?: () => number;
  random?: () => number;
}

export class ReputationMonitor {
  private readonly o: ReputationMonitorOptions;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly due = new Map<string, number>();
  private probeDue = 0;

  constructor(o: ReputationMonitorOptions) {
    this.o = o;
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? Math.random;
  }

  /** The interval in force for `ips` IPs: the configured one, stretched so every list's budget lasts the day. */
  intervalMs(ips: number): number {
    const base = this.o.config.intervalSeconds * 1000;
    return Math.max(base, ...this.o.checker.lists.map((l) => planInterval({ ips, dailyBudget: l.dailyQueryBudget, intervalMs: base, jitter: this.o.config.jitter }).intervalMs));
  }

  /** When the next IP is due (for the caller's timer). */
  nextDue(): number | undefined {
    const all = [...this.due.values()];
    return all.length > 0 ? Math.min(...all) : undefined;
  }

  /** Checks every IP that is due, applies annotations at once, and returns what changed. */
  async tick(ips: readonly MonitoredIp[]): Promise<IpOutcome[]> {
    const now = this.clock();
    const interval = this.intervalMs(ips.length);
    const jitter = this.o.config.jitter;
    const quarantineLists = this.o.checker.lists.filter((l) => l.action === 'quarantine' || l.listed.some((a) => a.action === 'quarantine')).map((l) => l.name);
    const m = this.o.metrics;
    let unusable = new Set<string>();
    if (now >= this.probeDue) {
      // The test entry proves the path to each list works; a list that does not list it makes
      // every check of that list this round "unknown".
      const probe = await this.o.checker.probe();
      unusable = new Set(probe.filter((v) => v.state !== 'listed').map((v) => v.list));
      this.probeDue = nextCheckAt(now, interval, jitter, this.random());
    }
    const keys = new Set(ips.map((ip) => `${ip.pool}|${ip.address}`));
    for (const k of this.due.keys()) if (!keys.has(k)) this.due.delete(k);
    const out: IpOutcome[] = [];
    for (const ip of ips) {
      const key = `${ip.pool}|${ip.address}`;
      // A new IP is checked at once; after that on the jittered interval.
      const at = this.due.get(key) ?? now;
      const checkNow = at <= now;
      if (!checkNow && ip.override === ip.reputation.override) continue;
      let verdicts;
      let ptr: PtrVerdict | undefined;
      if (checkNow) {
        verdicts = (await this.o.checker.check(ip.address)).map((v) =>
          unusable.has(v.list) && v.state !== 'unknown' ? { ...v, state: 'unknown' as const, action: 'observe' as const, detail: `${v.list} did not list its test entry 127.0.0.2: its answers are not trusted this round` } : v,
        );
        ptr = await lookupPtr(this.o.ptrResolver, ip.address, ip.hostname);
        this.due.set(key, nextCheckAt(now, interval, jitter, this.random()));
      }
      const decision = decideReputation({
        ip: ip.address, prev: ip.reputation, verdicts, quarantineLists, override: ip.override,
        cleanChecksToRelease: this.o.config.cleanChecksToRelease, unknownChecksToAlert: this.o.config.unknownChecksToAlert, now,
      });
      if (m) {
        for (const v of verdicts ?? []) m.listed.set({ pool: ip.pool, ip: ip.address, list: v.list }, LISTED_VALUE[v.state]);
        for (const l of this.o.checker.lists) m.unknownChecks.set({ pool: ip.pool, ip: ip.address, list: l.name }, decision.next.unknown.find((u) => u.list === l.name)?.count ?? 0);
        if (verdicts) m.lastCheck.set({ pool: ip.pool, ip: ip.address }, now / 1000);
        if (ptr) m.ptr.set({ pool: ip.pool, ip: ip.address }, PTR_VALUE[ptr.state]);
        m.quarantined.set({ pool: ip.pool, ip: ip.address }, decision.next.quarantined ? 1 : 0);
        for (const a of decision.actions) m.transitions.inc({ action: a });
      }
      out.push({ pool: ip.pool, address: ip.address, decision, ptr });
    }
    if (m) {
      for (const l of this.o.checker.lists) {
        m.queriesToday.set({ list: l.name }, this.o.checker.queriesToday(l.name));
        m.budget.set({ list: l.name }, l.dailyQueryBudget);
      }
    }
    return out;
  }

  /** Forgets the metrics series of an IP no longer in any pool (bounded labels stay bounded). */
  forget(pool: string, address: string): void {
    const m = this.o.metrics;
    if (!m) return;
    for (const l of this.o.checker.lists) {
      m.listed.remove({ pool, ip: address, list: l.name });
      m.unknownChecks.remove({ pool, ip: address, list: l.name });
    }
    for (const g of [m.lastCheck, m.ptr, m.quarantined]) g.remove({ pool, ip: address });
  }
}
