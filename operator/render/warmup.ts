// A SendingPool IP's warm-up, both ways between the operator and its relay: the plan, the
// carried-over state and the operator's decided stage written into the relay config, and the
// status the operator shows. Every
// number comes from relay/warmup/plan.ts, the one owner of what a warm-up day and today's cap
// are; nothing here computes a cap of its own.
import type { PoolIp, PoolIpStatus } from '../api/index.ts';
import type { z } from 'zod';
import type { WarmupSchema } from '../../relay/config/schema.ts';
import type { WarmupStatsV1 } from '../../relay/stats/collector.ts';
import { warmupProgress, type WarmupBaseline } from '../../relay/warmup/plan.ts';
import { warmupSteps } from '../../relay/warmup/presets.ts';


/**
 * The state carried in the config: the days the relay last reported (status.ips[]), counted
 * through a date. Without such a report (a new IP, or no stats read yet) nothing is carried and
 * the relay counts from its own history alone: nothing is counted for a relay that never ran.
 */
export function warmupBaseline(status: PoolIpStatus | undefined): WarmupBaseline | undefined {
  if (!status?.warmupCountedThrough) return undefined;
  return {
    countedDays: status.warmupDay ?? 0,
    countedThrough: status.warmupCountedThrough,
    ...(status.warmupStartedAt ? { startedOn: status.warmupStartedAt.slice(0, 10) } : {}),
  };
}

/** The relay config's shaping.warmup entry for one IP; undefined when the IP has no plan. */
export function relayWarmupEntry(ip: PoolIp, status: PoolIpStatus | undefined, bindsAddress: boolean): z.input<typeof WarmupSchema> | undefined {
  if (!ip.warmup) return undefined;
  const base = warmupBaseline(status);
  return {
    // Without a bound source address the relay's one unbound source is this IP (NAT, gateway).
    ...(bindsAddress ? { address: ip.address } : {}),
    plan: {
      // The steps written out, presets included: the relay enforces exactly what a review of
      // `mailfleet render` showed, whichever version of the presets it was built with.
      steps: warmupSteps(ip.warmup).map((s) => ({ day: s.day, dailyLimit: s.dailyLimit, ...(s.providers ? { providers: s.providers.map((p) => ({ ...p })) } : {}) })),
      ...(ip.warmup.minDailyVolume !== undefined ? { minDailyVolume: ip.warmup.minDailyVolume } : {}),
    },
    // The operator's decision (operator/control/warmup-loop.ts, written to status by the stats
    // reader), once there is one: the relay enforces this stage and shows these days instead of
    // moving them by its own day count. Before it, the carried days and the relay's own count.
    state: status?.warmupDecidedStage !== undefined
      ? {
        countedDays: status.warmupDecidedDay ?? 0,
        ...(base?.startedOn ? { startedOn: base.startedOn } : {}),
        stage: status.warmupDecidedStage,
        ...(status.warmupProviderStages?.length
          ? { providerStages: [...status.warmupProviderStages].sort((a, b) => a.provider.localeCompare(b.provider)).map((p) => ({ provider: p.provider, stage: p.stage })) }
          : {}),
      }
      : {
        countedDays: base?.countedDays ?? 0,
        ...(base?.countedThrough ? { countedThrough: base.countedThrough } : {}),
        ...(base?.startedOn ? { startedOn: base.startedOn } : {}),
      },
  };
}

type WarmupStatusFields = Pick<PoolIpStatus, 'warmupStartedAt' | 'warmupStage' | 'warmupDay' | 'warmupCountedThrough' | 'quotaToday' | 'sentToday'>;

/**
 * status.ips[] warm-up fields. `relay` is the IP's `warmup` from its relay's /v1/stats when the
 * operator has read it (the relay enforces, so its numbers win); without it, the same function
 * over the carried state, which is day 0 for an IP whose relay never reported. `nextChangeAt`:
 * the next UTC midnight, when the cap is worked out again.
 */
export function ipWarmupStatus(ip: PoolIp, old: PoolIpStatus | undefined, now: Date, relay?: WarmupStatsV1): { fields: WarmupStatusFields; done: boolean; nextChangeAt?: Date } | undefined {
  if (!ip.warmup) return undefined;
  if (relay) {
    const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
    return {
      done: relay.done,
      fields: {
        warmupStage: relay.stage,
        warmupDay: relay.day,
        warmupCountedThrough: yesterday,
        sentToday: relay.sentToday,
        ...(relay.capToday !== null ? { quotaToday: relay.capToday } : {}),
        ...(relay.startedOn ? { warmupStartedAt: `${relay.startedOn}T00:00:00Z` } : {}),
      },
      ...(relay.done ? {} : { nextChangeAt: new Date((Math.floor(now.getTime() / 86_400_000) + 1) * 86_400_000) }),
    };
  }
  const p = warmupProgress(ip.warmup, warmupBaseline(old), new Map(), now.getTime())!;
  return {
    done: p.done,
    fields: {
      warmupStage: p.stage,
      warmupDay: p.day,
      ...(old?.warmupCountedThrough ? { warmupCountedThrough: old.warmupCountedThrough } : {}),
      ...(p.capToday !== undefined ? { quotaToday: p.capToday } : {}),
      ...(p.startedOn ? { warmupStartedAt: `${p.startedOn}T00:00:00Z` } : {}),
    },
    ...(p.nextChangeAt !== undefined ? { nextChangeAt: new Date(p.nextChangeAt) } : {}),
  };
}
