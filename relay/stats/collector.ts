// Per (source IP, provider) delivery counters for the versioned stats endpoint the operator polls.
// Counted since the process started (`since`), like Prometheus counters: the operator takes deltas.
// Warm-up usage and restrictions come from the scheduler, which keeps them durably.
import type { Restriction } from '../scheduler/ledger.ts';
import type { QuotaReport } from '../scheduler/shaper.ts';
import type { WarmupProgress } from '../warmup/plan.ts';

/** An IP's warm-up as the relay enforces it (relay/warmup/plan.ts); the operator shows it in status.ips[]. */
export interface WarmupStatsV1 {
  stage: number;
  day: number;
  capToday: number | null;
  sentToday: number;
  minVolumeToday: number | null;
  done: boolean;
  startedOn: string | null;
}

export interface PathCounters {
  attempted: number;
  delivered: number;
  deferred: number;
  bounced: Record<string, number>;
  expired: number;
}

export type OutcomeKind = 'delivered' | 'deferred' | 'bounced' | 'expired';

function empty(): PathCounters {
  return { attempted: 0, delivered: 0, deferred: 0, bounced: {}, expired: 0 };
}

function add(into: PathCounters, from: PathCounters): void {
  into.attempted += from.attempted;
  into.delivered += from.delivered;
  into.deferred += from.deferred;
  into.expired += from.expired;
  for (const [k, v] of Object.entries(from.bounced)) into.bounced[k] = (into.bounced[k] ?? 0) + v;
}

export class StatsCollector {
  readonly since: number;
  private readonly paths = new Map<string, Map<string, PathCounters>>();

  constructor(now: number) {
    this.since = now;
  }

  /** One recipient's attempt result; `category` is the bounce category (relay/bounce). */
  record(ip: string, provider: string, kind: OutcomeKind, category: string | undefined): void {
    let byProvider = this.paths.get(ip);
    if (!byProvider) this.paths.set(ip, (byProvider = new Map()));
    let c = byProvider.get(provider);
    if (!c) byProvider.set(provider, (c = empty()));
    c.attempted++;
    if (kind === 'bounced') c.bounced[category ?? 'hard'] = (c.bounced[category ?? 'hard'] ?? 0) + 1;
    else c[kind]++;
  }

  /** The v1 document: stable field names; new fields may be added, none removed or renamed. */
  snapshot(input: { now: number; ips: readonly string[]; restrictions: readonly Restriction[]; quotas: readonly QuotaReport[]; warmup?: (ip: string) => WarmupProgress | undefined }): StatsV1 {
    const ipNames = [...new Set([...input.ips, ...this.paths.keys()])];
    const providers = new Map<string, PathCounters>();
    const ips = ipNames.map((ip) => {
      const byProvider = this.paths.get(ip) ?? new Map<string, PathCounters>();
      const total = empty();
      const list = [...byProvider].sort(([a], [b]) => a.localeCompare(b)).map(([provider, c]) => {
        add(total, c);
        const p = providers.get(provider) ?? empty();
        add(p, c);
        providers.set(provider, p);
        return { provider, ...c };
      });
      const w = input.warmup?.(ip);
      return {
        address: ip,
        ...total,
        providers: list,
        quota: input.quotas.filter((q) => q.ip === ip).map((q) => ({ scope: q.scope === '*' ? 'ip' : q.scope, window: q.window, used: q.used, cap: q.cap ?? null })),
        ...(w
          ? { warmup: { stage: w.stage, day: w.day, capToday: w.capToday ?? null, sentToday: w.sentToday, minVolumeToday: w.minVolumeToday ?? null, done: w.done, startedOn: w.startedOn ?? null } }
          : {}),
      };
    });
    return {
      version: 1,
      since: new Date(this.since).toISOString(),
      now: new Date(input.now).toISOString(),
      ips,
      providers: [...providers].sort(([a], [b]) => a.localeCompare(b)).map(([provider, c]) => ({ provider, ...c })),
      restrictions: input.restrictions.map((r) => ({
        sourceIp: r.ip, provider: r.provider, action: r.action, until: new Date(r.until).toISOString(), reason: r.reason,
        ...(r.action === 'throttle' ? { messagesPerMinute: r.messagesPerMinute, maxConnections: r.maxConnections } : {}),
      })),
    };
  }
}

export interface StatsV1 {
  version: 1;
  /** The config version this relay runs (relay/config/version.ts); added by the HTTP route. */
  configVersion?: string;
  since: string;
  now: string;
  ips: ({ address: string; providers: ({ provider: string } & PathCounters)[]; quota: { scope: string; window: string; used: number; cap: number | null }[]; warmup?: WarmupStatsV1 } & PathCounters)[];
  providers: ({ provider: string } & PathCounters)[];
  restrictions: { sourceIp: string; provider: string; action: string; until: string; reason: string; messagesPerMinute?: number; maxConnections?: number }[];
  /**
   * Where the suppression list lives and whether the fleet's PostgreSQL is reachable (added by
   * relay/relay.ts from relay/feedback; a condition for the operator to surface).
   */
  feedback?: {
    store: 'postgres' | 'local';
    fleet: { configured: true; connected: boolean; lastSyncAt: string | null; lastError: string | null; outbox: { suppressions: number; events: number }; seq: number } | null;
    webhooks: { pending: number; oldestAgeSeconds: number; dead: number };
  };
  /** The relay runs a draining config: it takes no new mail (added by relay/relay.ts). */
  draining?: boolean;
  /** Recipients not yet delivered or bounced (added by relay/relay.ts). */
  queue?: { queued: number; inflight: number };
}
