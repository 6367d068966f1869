// A SendingPool's status as a pure function of what the reconcile found: the parsed spec (or why
// it stopped), what the cache says of each relay's StatefulSet, contested and draining IPs, and
// the clock. No I/O: the controller gathers the inputs and writes the result; the table in
// status.test.ts names every case.
import { listedCount, quarantineLeavesService } from '../../reputation/status.ts';
import { ipState, ipStateMessage, relayPodState } from './ip-state.ts';
import { IpReputationStatusFields } from '../../reputation/status-schema.ts';
import { setCondition, findCondition, type Condition, type ConditionUpdate, type PoolIpStatus, type SendingPool, type SendingPoolStatus } from '../../api/index.ts';
import { relayUp, servingIps, summarizePoolStatus } from '../../render/status.ts';
import { ipWarmupStatus } from '../../render/warmup.ts';
import type { WarmupStatsV1 } from '../../../relay/stats/collector.ts';
import { configKey } from '../../render/names.ts';
import { configVersion } from '../../../relay/config/version.ts';

/** What the cache says of one IP's relay (its StatefulSet). */
export interface RelayObserved {
  /** The StatefulSet exists. */
  exists: boolean;
  /** Its pod is Ready (readyReplicas ≥ 1). */
  ready: boolean;
}

/** An IP this pool lists that an earlier pool already claims: nothing is rendered for it here. */
export interface IpConflict {
  address: string;
  /** "namespace/name" of the pool that claimed it first. */
  claimedBy: string;
}

/** An IP no longer in the spec (or of a pool being deleted) whose relay is delivering what it holds. */
export interface DrainingIp {
  address: string;
  /** Messages the relay last reported queued; undefined while it has not reported. */
  queued: number | undefined;
}

/** A rolling restart in progress: StatefulSets whose new pod template waits for another relay. */
export interface Rollout {
  /** The relay being restarted now (its StatefulSet name). */
  updating: string;
  /** How many relays still wait for their turn. */
  waiting: number;
}

export interface PoolStatusInput {
  /** metadata.generation this reconcile acted on. */
  generation: number;
  now: Date;
  /** The status on the current object (the write retries on a fresh copy). */
  prev: SendingPoolStatus;
  /** The parsed spec; undefined when it did not parse. */
  pool: SendingPool | undefined;
  /** Why the reconcile stopped before or while applying children. */
  blocked?: { reason: string; message: string } | undefined;
  /** A referenced Secret that does not exist (children were applied anyway). */
  missing?: { reason: string; message: string } | undefined;
  conflicts?: readonly IpConflict[] | undefined;
  draining?: readonly DrainingIp[] | undefined;
  rollout?: Rollout | undefined;
  /** Per address of spec.ips: the relay's StatefulSet as cached. */
  relays: (address: string) => RelayObserved;
  /** "namespace/name" → pod name of an address. */
  podName: (address: string) => string;
  childrenApplied: number;
  configHash?: string | undefined;
  /** The rendered ConfigMap's data: each IP's file, whose version its relay will report running. */
  configs?: Readonly<Record<string, string>> | undefined;
  /** An IP's warm-up as its relay reports enforcing it (the stats reader, operator/observe), if read. */
  relayWarmup?: ((address: string) => WarmupStatsV1 | undefined) | undefined;
  /** The config version that report was made under (its /v1/stats configVersion), if known. */
  relayConfigVersion?: ((address: string) => string | undefined) | undefined;
}

export interface PoolStatusResult {
  status: SendingPoolStatus;
  /** When the earliest warm-up stage changes next (a day boundary no event announces). */
  nextWarmupChange?: Date;
}

/** The reputation loop's fields of an IP's status (operator/reputation/status-schema.ts), as carried. */
function reputationRecord(old: PoolIpStatus | undefined): Partial<PoolIpStatus> {
  if (!old) return {};
  return Object.fromEntries(Object.keys(IpReputationStatusFields).flatMap((k) => (old[k as keyof PoolIpStatus] === undefined ? [] : [[k, old[k as keyof PoolIpStatus]]])));
}

/** Per-IP status, and when the earliest warm-up stage changes next. */
export function ipStatuses(input: PoolStatusInput, pool: SendingPool): { ips: PoolIpStatus[]; nextWarmupChange?: Date } {
  const { prev, now } = input;
  let nextWarmupChange: Date | undefined;
  const contested = new Map((input.conflicts ?? []).map((c) => [c.address, c.claimedBy]));
  const draining = new Map((input.draining ?? []).map((d) => [d.address, d]));
  // A draining IP keeps its reputation record (the reputation loop's; it still checks an IP the
  // spec lists while the pool is being deleted): dropping it would make the next check quarantine again.
  const drainingStatus = (d: DrainingIp): PoolIpStatus => ({
    ...reputationRecord(prev.ips?.find((p) => p.address === d.address)),
    address: d.address,
    pod: input.podName(d.address),
    state: 'Draining',
    ...(d.queued !== undefined ? { queued: d.queued } : {}),
    message:
      d.queued === undefined
        ? 'not served any more: refusing new mail; waiting for the relay to report its queue'
        : `not served any more: refusing new mail; ${d.queued} recipients left to deliver`,
  });
  const ips = pool.spec.ips.map((ip) => {
    // Listed but draining: the pool is being deleted, or another pool claimed the address first.
    const d = draining.get(ip.address);
    if (d) {
      draining.delete(ip.address);
      return drainingStatus(d);
    }
    const relay = input.relays(ip.address);
    const old = prev.ips?.find((p) => p.address === ip.address);
    const s: PoolIpStatus = { ...(old ?? {}), address: ip.address, pod: input.podName(ip.address), state: 'Pending' };
    delete s.queued;
    const yaml = input.configs?.[configKey(ip.address)];
    if (yaml !== undefined) s.configVersion = configVersion(yaml);
    // Warm-up: relay/warmup/plan.ts through operator/render/warmup.ts, whatever the pod's state.
    // The IP's `warmup` from its relay's /v1/stats when the stats reader has it; else
    // operator reads relay stats; until then the carried state is shown (day 0 for a new IP).
    for (const k of ['warmupStartedAt', 'warmupStage', 'warmupDay', 'warmupCountedThrough', 'quotaToday', 'sentToday'] as const) delete s[k];
    // A report made under an older config than the one rendered would write its older day back
    // and undo what the new config carries (a re-warm the reputation loop just wrote: seen on the
    // node, day 2 written back over stage 1): the carried state stands until the relay runs it.
    const reportedUnder = input.relayConfigVersion?.(ip.address);
    const stale = yaml !== undefined && reportedUnder !== undefined && reportedUnder !== configVersion(yaml);
    const warm = ipWarmupStatus(ip, old, now, stale ? undefined : input.relayWarmup?.(ip.address));
    if (warm) {
      Object.assign(s, warm.fields);
      if (warm.nextChangeAt && (!nextWarmupChange || warm.nextChangeAt < nextWarmupChange)) nextWarmupChange = warm.nextChangeAt;
    }
    const claimedBy = contested.get(ip.address);
    if (claimedBy) {
      s.state = 'Conflict';
      delete s.pod;
      delete s.relayPod;
      s.message = `address claimed by SendingPool ${claimedBy}, which was created first; no relay is rendered for it here`;
      return s;
    }
    // The reputation loop (operator/reputation/loop.ts) writes only the quarantine record, carried
    // above; the state is derived here, from it and the relay, by one precedence (ip-state.ts).
    const quarantined = !!old?.quarantine;
    const facts = {
      conflict: false,
      draining: false,
      quarantined,
      leavesService: quarantined && quarantineLeavesService(pool, prev.ips ?? [], ip.address),
      relay,
      paused: old?.state === 'Paused',
      warming: !!warm && !warm.done,
    };
    s.state = ipState(facts);
    s.relayPod = relayPodState(facts);
    const message = ipStateMessage(s.state, s.relayPod, old?.quarantine);
    if (message) s.message = message;
    else delete s.message;
    return s;
  });
  for (const d of draining.values()) ips.push(drainingStatus(d));
  return nextWarmupChange ? { ips, nextWarmupChange } : { ips };
}

/** The whole next status: conditions, per-IP state, counts, printer-column summary. */
export function poolStatus(input: PoolStatusInput): PoolStatusResult {
  const { prev, now, generation: gen, pool, blocked } = input;
  let conds: Condition[] = prev.conditions ?? [];
  const set = (c: Omit<ConditionUpdate, 'observedGeneration'>) => (conds = setCondition(conds, { ...c, observedGeneration: gen }, now));
  const next: SendingPoolStatus = { ...prev, observedGeneration: gen };
  let nextWarmupChange: Date | undefined;

  if (blocked) {
    set({ type: 'Reconciled', status: 'False', reason: blocked.reason, message: blocked.message });
    set({ type: 'Ready', status: 'False', reason: blocked.reason, message: blocked.message });
  } else if (pool) {
    const computed = ipStatuses(input, pool);
    nextWarmupChange = computed.nextWarmupChange;
    next.ips = computed.ips;
    next.listedIPs = listedCount(computed.ips);
    // Rates are the health loop's to measure; keep what it last wrote.
    const sum = summarizePoolStatus(computed.ips);
    Object.assign(next, sum, { summary: { ...prev.summary, ...sum.summary } });
    if (input.configHash) next.configHash = input.configHash;
    const serving = servingIps(computed.ips);
    // A quarantined relay counts as ready when its pod is Ready or out of the Service on purpose
    // (relayUp): the quarantine is reported by the IP's state, LISTED and ATTENTION, not by Ready.
    const ready = serving.filter(relayUp).length;
    const quarantined = serving.filter((i) => i.state === 'Quarantined').length;
    const relaysReady = `${ready}/${serving.length} relays ready${quarantined ? ` (${quarantined} quarantined)` : ''}`;
    set({ type: 'Reconciled', status: 'True', reason: 'ChildrenApplied', message: `${input.childrenApplied} children applied` });
    const conflicts = input.conflicts ?? [];
    if (conflicts.length > 0) {
      set({
        type: 'Ready',
        status: 'False',
        reason: 'Conflict',
        message: conflicts
          .map((c) => `spec.ips[${pool.spec.ips.findIndex((i) => i.address === c.address)}].address: ${c.address} is already claimed by SendingPool ${c.claimedBy} (created first); no relay is rendered for it here`)
          .join('; '),
      });
    } else if (input.missing) {
      set({ type: 'Ready', status: 'False', reason: input.missing.reason, message: input.missing.message });
    } else if (input.rollout) {
      set({
        type: 'Ready',
        status: 'False',
        reason: 'RollingUpdate',
        message: `restarting one relay at a time: ${input.rollout.updating} now, ${input.rollout.waiting} waiting; ${relaysReady}`,
      });
    } else {
      set(
        ready === serving.length
          ? { type: 'Ready', status: 'True', reason: 'RelaysReady', message: relaysReady }
          : { type: 'Ready', status: 'False', reason: 'RelaysNotReady', message: relaysReady },
      );
    }
    if (!findCondition(conds, 'Degraded')) {
      set({ type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'no health problem reported' });
    }
    const draining = input.draining ?? [];
    if (draining.length > 0) {
      const left = draining.reduce((n, d) => n + (d.queued ?? 0), 0);
      const unknown = draining.filter((d) => d.queued === undefined).length;
      set({
        type: 'Draining',
        status: 'True',
        reason: 'Draining',
        message:
          `${draining.length} relay(s) draining (${draining.map((d) => d.address).join(', ')}): ${left} recipients left to deliver` +
          (unknown ? `, ${unknown} not reporting yet` : ''),
      });
    } else if (findCondition(conds, 'Draining')) {
      set({ type: 'Draining', status: 'False', reason: 'Drained', message: 'no relay is draining' });
    }
  }
  next.conditions = conds;
  return nextWarmupChange ? { status: next, nextWarmupChange } : { status: next };
}
