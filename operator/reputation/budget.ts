// The per-list daily query budget: a pure planner (how often each IP may be checked so the day's
// budget lasts) and a gate that refuses a query once the UTC day's budget is spent. Answers
// served from the cache (for their TTL) cost nothing. The clock is always passed in.
import { DAY_MS, utcDay } from '../../relay/warmup/plan.ts';

export interface BudgetPlanInput {
  /** IPs checked against the list. */
  ips: number;
  dailyBudget: number;
  /** The configured interval between two checks of one IP. */
  intervalMs: number;
  /** Extra queries per cycle (the 127.0.0.2 test-entry probe that proves the pipeline). */
  probesPerCycle?: number;
  /** Largest share of an interval a jittered check may come early (config.jitter). */
  jitter?: number;
}

export interface BudgetPlan {
  /** The interval actually used: the configured one, or longer so the budget lasts the day. */
  intervalMs: number;
  /** Queries a day at that interval, at worst (every jittered interval at its shortest). */
  queriesPerDay: number;
  /** True when the configured interval had to be lengthened. */
  stretched: boolean;
}

/**
 * The shortest interval at which `ips` checks (+ probes) per cycle stay within the daily budget,
 * even when every jittered interval comes out at its shortest (interval × (1 − jitter)).
 */
export function planInterval(p: BudgetPlanInput): BudgetPlan {
  const perCycle = p.ips + (p.probesPerCycle ?? 1);
  const shortest = 1 - (p.jitter ?? 0);
  // Cycles that fit a day at the configured interval (+1: a cycle may start at 00:00 and another before 24:00).
  const cycles = (interval: number) => Math.floor(DAY_MS / (interval * shortest)) + 1;
  let intervalMs = p.intervalMs;
  if (cycles(intervalMs) * perCycle > p.dailyBudget) {
    const maxCycles = Math.max(1, Math.floor(p.dailyBudget / perCycle));
    // Smallest interval with cycles(interval) <= maxCycles: DAY/(i×s) < maxCycles.
    intervalMs = Math.ceil(DAY_MS / (shortest * Math.max(1, maxCycles - 1))) + 1;
  }
  return { intervalMs, queriesPerDay: cycles(intervalMs) * perCycle, stretched: intervalMs !== p.intervalMs };
}

/** Counts queries per list per UTC day and refuses the one that would pass the budget. */
export class QueryBudget {
  private readonly used = new Map<string, { day: number; n: number }>();

  /** Spends one query of `list` if the day's budget allows; false = do not query (the check is "unknown: budget"). */
  take(list: string, budget: number, now: number): boolean {
    const day = utcDay(now);
    const u = this.used.get(list);
    const n = u?.day === day ? u.n : 0;
    if (n >= budget) return false;
    this.used.set(list, { day, n: n + 1 });
    return true;
  }

  /** Queries spent today on a list (the metric). */
  usedToday(list: string, now: number): number {
    const u = this.used.get(list);
    return u?.day === utcDay(now) ? u.n : 0;
  }
}

/** When the next check of an IP is due: interval ± jitter (random in [0, 1)). */
export function nextCheckAt(last: number, intervalMs: number, jitter: number, random: number): number {
  return last + Math.round(intervalMs * (1 - jitter + 2 * jitter * random));
}
