// The reputation loop's Kubernetes edge: every interval (leader only), read the SendingPools, run
// the monitor over their IPs, and write what changed into each pool's status (the SendingPool
// controller renders status.ips[].quarantine into the IP's relay config, and the re-warm's
// carried warm-up state into its plan). applyReputationRound is the pure part, table-tested.
import { Resolver } from 'node:dns/promises';
import { API_VERSION } from '../api/common.ts';
import { setCondition } from '../api/conditions.ts';
import { SENDINGPOOL_KIND, type PoolIpStatus, type SendingPool, type SendingPoolStatus } from '../api/sendingpool.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { Kube, KubeObject } from '../runtime/kube.ts';
import { writeStatus } from '../runtime/status.ts';
import { warmupBaseline } from '../render/warmup.ts';
import { isoDay, utcDay } from '../../relay/warmup/plan.ts';
import { DnsblChecker, dnsLookup } from './checker.ts';
import { rewarmBaseline, type ReputationEvent, type UnknownEntry } from './decide.ts';
import { mergeReputationConfig, resolvedLists, type ReputationConfig } from './lists.ts';
import type { ReputationMetrics } from './metrics.ts';
import { ReputationMonitor, type IpOutcome, type MonitoredIp } from './monitor.ts';
import { dnsblCondition, listedCount, overrideOf, reputationFromStatus, reputationStatusFields } from './status.ts';

/** "namespace/name": the pool label of metrics and the monitor's key. */
export function poolKey(pool: Pick<SendingPool, 'metadata'>): string {
  return `${pool.metadata.namespace ?? ''}/${pool.metadata.name}`;
}

/** The monitor's view of a pool's IPs: spec, annotations and what status carried. */
export function monitoredIps(pool: SendingPool): MonitoredIp[] {
  return pool.spec.ips.map((ip) => ({
    pool: poolKey(pool),
    address: ip.address,
    hostname: ip.hostname,
    override: overrideOf(pool.metadata.annotations, ip.address),
    reputation: reputationFromStatus(pool.status?.ips?.find((s) => s.address === ip.address)),
  }));
}

/**
 * A round's outcomes → the pool's next status (reputation fields, re-warm of the carried warm-up
 * state, listedIPs, DnsblAvailable) and the Events to emit. Pure.
 *
 * The round records facts only: it never writes an IP's `state`. Its status write is an update
 * of the SendingPool, which re-queues the pool's reconcile (the controller re-queues on every
 * update of its primary, operator/runtime/manager.ts); that reconcile derives `state` from the
 * quarantine record and the relay (operator/controllers/sendingpool/ip-state.ts) and renders the
 * quarantine into the IP's relay config. Two writers of `state` flipped it between Quarantined and
 * Pending while a quarantined relay was not Ready (a CI run lost a race on it).
 */
export function applyReputationRound(pool: SendingPool, outcomes: readonly IpOutcome[], config: ReputationConfig, now: Date): { status: SendingPoolStatus; events: ReputationEvent[] } {
  const prev = pool.status ?? {};
  const events: ReputationEvent[] = [];
  const unavailable: UnknownEntry[] = [];
  const inSpec = new Set(pool.spec.ips.map((ip) => ip.address));
  const ips: PoolIpStatus[] = pool.spec.ips.map((spec) => {
    const old = prev.ips?.find((s) => s.address === spec.address);
    // An IP the controller has not reported yet: `state` is required; Pending is what the
    // controller starts from, and its next write (this write re-queues it) replaces it.
    const s: PoolIpStatus = { ...(old ?? { address: spec.address, state: 'Pending' as const }) };
    const outcome = outcomes.find((x) => x.address === spec.address);
    if (!outcome) {
      unavailable.push(...reputationFromStatus(old).unknown.filter((u) => u.count >= config.unknownChecksToAlert));
      return s;
    }
    events.push(...outcome.decision.events);
    unavailable.push(...outcome.decision.unavailable);
    for (const k of ['listed', 'quarantine', 'ptr', 'reputationChecks', 'conditions'] as const) delete s[k];
    Object.assign(s, reputationStatusFields(outcome.decision.next, outcome.ptr, old, now));
    if (outcome.decision.actions.includes('rewarm')) {
      if (spec.warmup) {
        const b = rewarmBaseline(spec.warmup, warmupBaseline(old), new Map(), config.rewarmStage, now.getTime());
        s.warmupDay = b.countedDays ?? 0;
        s.warmupCountedThrough = b.countedThrough ?? isoDay(utcDay(now.getTime()) - 1);
      } else {
        events.push({ type: 'Warning', reason: 'Rewarming', message: `${spec.address} has no warm-up plan (spec.ips[].warmup): it goes back at full volume` });
      }
    }
    return s;
  });
  // Relays still draining (their IPs left the spec) are the controller's entries: kept as they are.
  ips.push(...(prev.ips ?? []).filter((s) => !inSpec.has(s.address)));
  const conditions = setCondition(prev.conditions, dnsblCondition(unavailable, resolvedLists(config).length), now);
  return { status: { ...prev, ips, listedIPs: listedCount(ips), conditions }, events };
}

export interface ReputationLoopOptions {
  kube: Kube;
  events: EventRecorder;
  /** The cluster default (chart values). */
  config: ReputationConfig;
  metrics?: ReputationMetrics | undefined;
  /** Namespace of the lists' dqsKeySecret Secrets: the operator's own ($POD_NAMESPACE). */
  secretNamespace?: string | undefined;
  log?: { warn(o: object, msg: string): void };
  clock?: () => number;
  /** Only this namespace's pools (the operator's --namespace); all when unset. */
  namespace?: string | undefined;
  /** Seconds between rounds (each IP is checked on its own jittered interval; a round only looks who is due). */
  tickSeconds?: number;
}

/** One monitor per distinct effective config (pools overriding lists or interval get their own). */
export class ReputationLoop {
  private readonly o: ReputationLoopOptions;
  private readonly monitors = new Map<string, ReputationMonitor>();
  /** DQS keys by list name, re-read from their Secrets every round (a rotated key applies at once). */
  private readonly dqsKeys = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(o: ReputationLoopOptions) {
    this.o = o;
  }

  private monitorFor(config: ReputationConfig): ReputationMonitor {
    const key = JSON.stringify(config);
    let m = this.monitors.get(key);
    if (!m) {
      const clock = this.o.clock ?? Date.now;
      const checker = new DnsblChecker({ lists: resolvedLists(config), lookup: dnsLookup(config.resolver ? [config.resolver] : undefined, config.timeoutMs), dqsKeys: this.dqsKeys, clock });
      const ptrResolver = new Resolver({ timeout: config.timeoutMs, tries: 2 });
      if (config.resolver) ptrResolver.setServers([config.resolver]);
      m = new ReputationMonitor({ config, checker, ptrResolver, metrics: this.o.metrics, clock });
      this.monitors.set(key, m);
    }
    return m;
  }

  /** Reads the DQS key of each list that names a Secret; a missing one makes that list "unknown" (NO_DQS_KEY). */
  private async readDqsKeys(config: ReputationConfig): Promise<void> {
    for (const l of resolvedLists(config)) {
      if (!l.dqsKeySecret) continue;
      const secret = await this.o.kube.find<KubeObject>('v1', 'Secret', this.o.secretNamespace ?? 'default', l.dqsKeySecret.name).catch(() => undefined);
      const b64 = (secret?.['data'] as Record<string, string> | undefined)?.[l.dqsKeySecret.key];
      const key = b64 ? Buffer.from(b64, 'base64').toString('utf8').trim() : '';
      if (/^[a-z0-9]{10,64}$/i.test(key)) this.dqsKeys.set(l.name, key);
      else {
        this.dqsKeys.delete(l.name);
        this.o.log?.warn({ list: l.name, secret: l.dqsKeySecret.name, key: l.dqsKeySecret.key }, 'DQS key Secret missing or malformed: the list answers "unknown" (NO_DQS_KEY)');
      }
    }
  }

  /** One round over every SendingPool: due checks, status writes, Events. */
  async round(): Promise<void> {
    const list = await this.o.kube.list<KubeObject>(API_VERSION, SENDINGPOOL_KIND, this.o.namespace);
    for (const raw of list.items) {
      const pool = raw as unknown as SendingPool;
      const config = mergeReputationConfig(this.o.config, pool.spec.reputation);
      await this.readDqsKeys(config);
      const outcomes = await this.monitorFor(config).tick(monitoredIps(pool));
      if (outcomes.length === 0) continue;
      const now = new Date((this.o.clock ?? Date.now)());
      let events: ReputationEvent[] = [];
      await writeStatus(this.o.kube, raw, (current) => {
        const r = applyReputationRound(current as unknown as SendingPool, outcomes, config, now);
        events = r.events;
        return r.status;
      });
      for (const e of events) this.o.events.emit(raw, e.type, e.reason, e.message);
    }
  }

  /** Rounds every tickSeconds until stop(); a failed round is logged and the next one runs. */
  start(): void {
    const every = (this.o.tickSeconds ?? 30) * 1000;
    const run = () => {
      this.running = this.round().catch((err: unknown) => this.o.log?.warn({ err: String(err) }, 'reputation round failed')).finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(run, every);
      });
    };
    this.timer = setTimeout(run, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
