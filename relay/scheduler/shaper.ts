// The scheduler's state and its bookkeeping: attempts in progress, token buckets and connection
// opens per (source IP, provider), warm-up usage and restrictions (durable through the ledger).
// Every decision is delegated to the pure functions beside it; the clock is injected.
import type { ShapingConfig, DeliveryConfig, WarmupConfig } from '../config/schema.ts';
import type { MessageClass } from '../message-class.ts';
import { matchBackoff, type BackoffRule, type ReplyFacts } from '../bounce/backoff.ts';
import { availableAt, fullBucket, pruneWindow, take, windowAllowsAt } from './bucket.ts';
import { decide, type Decision, type IpView, type PathState } from './decide.ts';
import { limitsFor, type Limits } from './limits.ts';
import type { Restriction, ShapingLedger } from './ledger.ts';
import { providerOfKey } from './providers.ts';
import { addUsageTo, checkQuota, currentCount, type Counter, type Usage, type Window } from './quota.ts';
import { utcDay, warmupProgress, type WarmupProgress } from '../warmup/plan.ts';
import { BlockSignals, configBlockOf, namesIpBlock, quarantineOf, type RefusalFacts } from './reputation.ts';

/**
 * How long mail waits on a quarantine or a configured block before it is decided again. A new
 * config (release) decides held mail again at once (engine reconfigure), so this only bounds the
 * queue scans while the block lasts.
 */
const REPUTATION_RECHECK_MS = 15 * 60_000;

/** Past this many (IP, destination) paths, idle ones are forgotten. */
const PRUNE_ABOVE = 10_000;

/** Stands for "no source address chosen" when the relay has no egress IPs configured. */
export const DEFAULT_IP = 'default';

const NO_USAGE: Usage = new Map();

function ipsOf(delivery: ShaperOptions['delivery']): readonly { address: string; weight: number }[] {
  const configured = delivery.egressIps;
  return configured.length > 0 ? configured.map((e) => ({ address: e.address, weight: e.weight })) : [{ address: DEFAULT_IP, weight: 1 }];
}

interface Path extends PathState {
  opens: number[];
}

/** A path's limits as last worked out, and what from: the same config generation and throttle give the same limits. */
interface CachedLimits {
  gen: number;
  throttle: Restriction | undefined;
  limits: Limits;
}

export interface ShaperOptions {
  shaping: ShapingConfig;
  delivery: Pick<DeliveryConfig, 'egressIps' | 'concurrency' | 'maxConnectionsPerHost' | 'maxMessagesPerConnection'>;
  ledger?: ShapingLedger | undefined;
  clock?: () => number;
  random?: () => number;
}

export interface QuotaReport {
  ip: string;
  scope: string;
  window: Window;
  used: number;
  cap: number | undefined;
}

export class Shaper {
  private o: ShaperOptions;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly paths = new Map<string, Path>();
  private readonly usage = new Map<string, Map<string, Counter>>();
  private readonly restrictionsByPath = new Map<string, Restriction>();
  private readonly blockSignals = new BlockSignals();
  /** Recipients sent per IP and UTC day (warm-up history), as in the ledger. */
  private readonly sent = new Map<string, Map<number, number>>();
  /** Effective caps per IP for one UTC day (a plan's cap changes only at midnight or on a new config). */
  private readonly capsCache = new Map<string, { day: number; caps: WarmupConfig | undefined }>();
  /**
   * Limits per (IP, provider) key: limitsFor builds a handful of objects and searches the provider
   * list, and every decision and booking asked for them (3 times per message). Pure in the config
   * and the throttle, so they are kept until either changes; cleared when paths are pruned.
   */
  private readonly limitsCache = new Map<string, CachedLimits>();
  /** Bumped by reconfigure: cached limits of an older config are worked out again. */
  private gen = 0;
  /** The source IPs with their weights, as the config says (rebuilt on reconfigure, not per decision). */
  private ipList: readonly { address: string; weight: number }[];
  private active = 0;
  private activeOtp = 0;
  private prunedAt = 0;

  constructor(o: ShaperOptions) {
    this.o = o;
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? Math.random;
    for (const r of o.ledger?.counters() ?? []) {
      const u = this.usage.get(r.ip) ?? new Map<string, Counter>();
      u.set(`${r.provider}|${r.window}`, r.counter);
      this.usage.set(r.ip, u);
    }
    for (const r of o.ledger?.restrictions(this.clock()) ?? []) this.restrictionsByPath.set(`${r.ip}|${r.provider}`, r);
    for (const [ip, days] of o.ledger?.sentPerDay() ?? []) this.sent.set(ip, days);
    this.ipList = ipsOf(o.delivery);
  }

  /** A new configuration (live reload): limits, caps and plans apply from the next decision on. */
  reconfigure(shaping: ShapingConfig, delivery: ShaperOptions['delivery']): void {
    this.o = { ...this.o, shaping, delivery };
    this.capsCache.clear();
    this.gen++;
    this.ipList = ipsOf(delivery);
  }

  private entryFor(ip: string): WarmupConfig | undefined {
    return this.o.shaping.warmup.find((w) => (w.address ?? DEFAULT_IP) === ip);
  }

  /** Where a planned IP is in its warm-up now (relay/warmup/plan.ts); undefined without a plan. */
  warmup(ip: string): WarmupProgress | undefined {
    const entry = this.entryFor(ip);
    if (!entry?.plan) return undefined;
    return warmupProgress(entry.plan, entry.state, this.sent.get(ip) ?? new Map(), this.clock());
  }

  ips(): { address: string; weight: number }[] {
    return this.ipList.map((ip) => ({ ...ip }));
  }

  /**
   * An entry without address is the relay's one unbound source (egress by NAT or gateway). With a
   * plan, today's daily caps are the lower of the fixed ones and the plan's, worked out once per
   * UTC day: at midnight the next day's cap applies without a restart or a new config.
   */
  private capsFor(ip: string): WarmupConfig | undefined {
    const day = utcDay(this.clock());
    const cached = this.capsCache.get(ip);
    if (cached?.day === day) return cached.caps;
    const entry = this.entryFor(ip);
    let caps = entry;
    const p = entry?.plan ? this.warmup(ip) : undefined;
    // A warm IP (done) may still be held back toward a provider (the operator's step back).
    if (entry && p && (!p.done || p.providerCaps.length > 0)) {
      const min = (a: number | undefined, b: number) => (a === undefined ? b : Math.min(a, b));
      const providers = entry.providers.map((x) => ({ ...x }));
      for (const pc of p.providerCaps) {
        const have = providers.find((x) => x.name === pc.name);
        if (have) have.daily = min(have.daily, pc.dailyLimit);
        else providers.push({ name: pc.name, daily: pc.dailyLimit });
      }
      caps = { ...entry, daily: p.capToday === undefined ? entry.daily : min(entry.daily, p.capToday), providers };
    }
    this.capsCache.set(ip, { day, caps });
    return caps;
  }

  private path(ip: string, provider: string, key = `${ip}|${provider}`): Path {
    let p = this.paths.get(key);
    if (!p) {
      p = { active: 0, activeOtp: 0, bucket: undefined, opens: [] };
      this.paths.set(key, p);
    }
    return p;
  }

  restriction(ip: string, provider: string): Restriction | undefined {
    return this.restrictionAt(`${ip}|${provider}`, this.clock());
  }

  private restrictionAt(key: string, now: number): Restriction | undefined {
    const r = this.restrictionsByPath.get(key);
    if (r && r.until <= now) {
      this.restrictionsByPath.delete(key);
      return undefined;
    }
    return r;
  }

  /** The limits of a path (relay/scheduler/limits.ts). The object is shared: callers must not change it. */
  limits(ip: string, provider: string): Limits {
    const key = `${ip}|${provider}`;
    return this.limitsAt(key, provider, this.restrictionAt(key, this.clock()));
  }

  private limitsAt(key: string, provider: string, r: Restriction | undefined): Limits {
    const throttle = r?.action === 'throttle' ? r : undefined;
    const c = this.limitsCache.get(key);
    if (c && c.gen === this.gen && c.throttle === throttle) return c.limits;
    const limits = limitsFor(
      providerOfKey(provider),
      this.o.shaping.providers,
      { maxConnections: this.o.delivery.maxConnectionsPerHost, messagesPerConnection: this.o.delivery.maxMessagesPerConnection },
      throttle,
    );
    this.limitsCache.set(key, { gen: this.gen, throttle, limits });
    return limits;
  }

  private view(ip: { address: string; weight: number }, provider: string, name: string, recipients: number, now: number): IpView {
    const key = `${ip.address}|${provider}`;
    const r = this.restrictionAt(key, now);
    const q = quarantineOf(this.o.shaping, ip.address, DEFAULT_IP);
    const b = q ? undefined : configBlockOf(this.o.shaping, ip.address, name, DEFAULT_IP);
    return {
      block: q ? { kind: 'quarantined', until: now + REPUTATION_RECHECK_MS, reason: q.reason } : b ? { kind: 'blocked', until: now + REPUTATION_RECHECK_MS, reason: b.reason } : undefined,
      address: ip.address,
      weight: ip.weight,
      limits: this.limitsAt(key, provider, r),
      path: this.path(ip.address, provider, key),
      suspension: r?.action === 'suspend' ? { until: r.until, reason: r.reason } : undefined,
      quota: checkQuota(this.capsFor(ip.address), this.usage.get(ip.address) ?? NO_USAGE, name, now, recipients),
    };
  }

  decide(provider: string, cls: MessageClass, recipients: number): Decision {
    const now = this.clock();
    if (this.paths.size > PRUNE_ABOVE && now - this.prunedAt > 10_000) this.prune(now);
    const name = providerOfKey(provider);
    return decide({
      now,
      cls,
      // One source IP (most relays): its view without a mapping closure.
      ips: this.ipList.length === 1 ? [this.view(this.ipList[0]!, provider, name, recipients, now)] : this.ipList.map((ip) => this.view(ip, provider, name, recipients, now)),
      global: { active: this.active, activeOtp: this.activeOtp, concurrency: this.o.delivery.concurrency },
      otpShare: this.o.shaping.otpShare,
      random: this.random(),
    });
  }

  /** Decisions, limits and bookings take a shaping key (relay/scheduler/providers.ts shapingKey), here named provider. */
  /**
   * Forgets paths that hold nothing a decision could need: no attempt in progress, no connection
   * opened within the window, a bucket that has refilled, no restriction. Unrecognised destinations
   * each get a path of their own ("default/<MX host>"), so without this the map only grows.
   */
  private prune(now: number): void {
    this.prunedAt = now;
    this.limitsCache.clear();
    for (const [key, p] of this.paths) {
      if (p.active > 0 || p.opens.some((t) => t > now - 60_000)) continue;
      const [ip, ...rest] = key.split('|');
      const provider = rest.join('|');
      const l = this.limits(ip!, provider);
      if (p.bucket && availableAt(p.bucket, now, l.messagesPerSecond, l.burst, l.burst) > now) continue;
      this.paths.delete(key);
    }
    for (const [key, r] of this.restrictionsByPath) if (r.until <= now) this.restrictionsByPath.delete(key);
  }

  pathCount(): number {
    return this.paths.size;
  }

  /** Books an attempt the decision allowed: a connection slot, a token, warm-up usage. */
  begin(ip: string, provider: string, cls: MessageClass, recipients: number): void {
    const now = this.clock();
    const key = `${ip}|${provider}`;
    const l = this.limitsAt(key, provider, this.restrictionAt(key, now));
    const p = this.path(ip, provider, key);
    p.active++;
    this.active++;
    if (cls === 'otp') {
      p.activeOtp++;
      this.activeOtp++;
    }
    p.bucket = take(p.bucket ?? fullBucket(l.burst, now), now, l.messagesPerSecond, l.burst);
    // Usage is counted for every IP, so caps given to an IP later in the day (a live config) start
    // from what it already sent today; it is written to the ledger only for IPs with caps.
    const caps = this.capsFor(ip);
    const name = providerOfKey(provider);
    // Counted in place: a copy per booking grew with every provider the IP ever sent to.
    let u = this.usage.get(ip);
    if (!u) this.usage.set(ip, (u = new Map()));
    addUsageTo(u, name, now, recipients);
    // The warm-up history: what the IP sent per UTC day. An IP without a warm-up entry keeps only
    // today, so a plan given later counts its days from then on, in this process or the next.
    const day = utcDay(now);
    let days = this.sent.get(ip);
    if (!days || (!caps && (days.size !== 1 || !days.has(day)))) {
      days = caps ? (days ?? new Map<number, number>()) : new Map<number, number>([[day, days?.get(day) ?? 0]]);
      this.sent.set(ip, days);
    }
    days.set(day, (days.get(day) ?? 0) + recipients);
    if (caps) {
      const rows = ['*', name].flatMap((scope) => (['hour', 'day'] as const).map((window) => ({ ip, provider: scope, window, counter: u.get(`${scope}|${window}`)! })));
      this.o.ledger?.saveCounters(rows, [{ ip, day, sent: days.get(day)! }]);
    }
  }

  end(ip: string, provider: string, cls: MessageClass): void {
    const p = this.path(ip, provider);
    p.active--;
    this.active--;
    if (cls === 'otp') {
      p.activeOtp--;
      this.activeOtp--;
    }
  }

  /** Waits (real time) until the new-connections-per-minute window lets this path open one, and books it. */
  async beforeOpen(ip: string, provider: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.clock();
      const p = this.path(ip, provider);
      p.opens = pruneWindow(p.opens, now, 60_000);
      const at = windowAllowsAt(p.opens, now, this.limits(ip, provider).newConnectionsPerMinute, 60_000);
      if (at <= now) {
        p.opens.push(now);
        return;
      }
      if (signal?.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(at - now, 1000)));
    }
  }

  /**
   * Applies the first backoff rule matching a reply from `provider` received over `ip`; returns the
   * rule (its action "bounce" is for the caller to apply to the recipient).
   */
  observe(ip: string, reply: ReplyFacts): BackoffRule | undefined {
    const rule = matchBackoff({ ...reply, provider: providerOfKey(reply.provider) }, this.o.shaping.backoffRules);
    if (!rule || (rule.action !== 'suspend' && rule.action !== 'throttle')) return rule;
    const now = this.clock();
    const until = now + rule.durationSeconds * 1000;
    const prev = this.restriction(ip, reply.provider);
    // A suspension is not shortened (nor turned into a mere throttle) by a later, milder reply.
    if (prev && prev.until >= until && (prev.action === 'suspend' || rule.action === 'throttle')) return rule;
    const r: Restriction = {
      ip, provider: reply.provider, action: rule.action, until, messagesPerMinute: rule.messagesPerMinute, maxConnections: rule.maxConnections,
      reason: `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`.slice(0, 300),
    };
    this.restrictionsByPath.set(`${ip}|${reply.provider}`, r);
    this.o.ledger?.saveRestriction(r);
    return rule;
  }

  /**
   * A receiver refused `recipient` over `ip`: when the reply names a blocklist or the IP's
   * reputation and enough distinct recipients of `provider` said so within the window, the pair is
   * blocked (a durable suspension) for blocklistSignal.blockSeconds. Returns that restriction.
   */
  noteRefusal(ip: string, provider: string, recipient: string, reply: RefusalFacts): Restriction | undefined {
    const cfg = this.o.shaping.blocklistSignal;
    if (!namesIpBlock(reply)) return undefined;
    const now = this.clock();
    if (!this.blockSignals.note(ip, provider, recipient, now, cfg.windowSeconds * 1000, cfg.recipients)) return undefined;
    const until = now + cfg.blockSeconds * 1000;
    const prev = this.restriction(ip, provider);
    if (prev?.action === 'suspend' && prev.until >= until) return undefined;
    const r: Restriction = {
      ip, provider, action: 'suspend', until, messagesPerMinute: 1, maxConnections: 1,
      reason: `IP block (${cfg.recipients} recipients): ${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`.slice(0, 300),
    };
    this.restrictionsByPath.set(`${ip}|${provider}`, r);
    this.o.ledger?.saveRestriction(r);
    return r;
  }

  restrictions(): Restriction[] {
    const now = this.clock();
    return [...this.restrictionsByPath.values()].filter((r) => r.until > now);
  }

  /** Warm-up usage in the current windows, with caps, for every IP that has caps or usage. */
  quotaReport(): QuotaReport[] {
    const now = this.clock();
    const out: QuotaReport[] = [];
    for (const ip of this.ips()) {
      const caps = this.capsFor(ip.address);
      const u = this.usage.get(ip.address) ?? new Map<string, Counter>();
      const scopes = new Set(['*', ...(caps?.providers.map((p) => p.name) ?? []), ...[...u.keys()].map((k) => k.split('|')[0]!)]);
      for (const scope of scopes) {
        const c = scope === '*' ? caps : caps?.providers.find((p) => p.name === scope);
        for (const window of ['hour', 'day'] as const) {
          const used = currentCount(u, scope, window, now);
          const cap = window === 'hour' ? c?.hourly : c?.daily;
          if (used > 0 || cap !== undefined) out.push({ ip: ip.address, scope, window, used, cap });
        }
      }
    }
    return out;
  }

  activeCount(): { active: number; activeOtp: number } {
    return { active: this.active, activeOtp: this.activeOtp };
  }
}
