// Once per UTC day and IP: judge the day that just ended (operator/control/warmup-decide.ts) and
// move the IP's feedback-driven stage. Pure: the pool's hour buckets, the IP's plan, what was
// decided before and the clock in; the next state (and the decision, when one was taken) out.
// The state lives in the operator's observations object, so a restart neither re-judges a day nor
// forgets a stage. This stage is the one the relays enforce: the stats reader writes it into
// status.ips[] (warmupDecidedStage, warmupProviderStages), the pool renders it into each relay's
// config (shaping.warmup[].state.stage) and the relay applies it live (relay/warmup/plan.ts).
// A stage of steps.length (past the last step) means warm: no cap.
import { emptyCounts, addCounts, type Counts } from '../../relay/stats/contract.ts';
import type { WarmupStep } from '../api/warmup-presets.ts';
import { decideStageDay, decideIdle, DEFAULT_WARMUP_LIMITS, type WarmupDecision, type WarmupLimits } from './warmup-decide.ts';
import { stageOnDay } from '../../relay/warmup/plan.ts';
import type { HourBucket } from './rates.ts';

export const DAY_MS = 86_400_000;

export interface IpWarmup {
  stage: number;
  /**
   * Warm-up days counted: healthy judged days (relay/warmup/plan.ts's day, counted by the
   * operator); the stage is the plan's for this count. Absent in state saved before it was kept:
   * the first day of `stage` is assumed.
   */
  day?: number | undefined;
  providerStages: Record<string, number>;
  /** Start (ms) of the last UTC day judged. */
  judgedDay: number;
  /** Stage on the IP's last day with mail (idle loss counts from it). */
  stageAtLastMail: number;
  /** The last decision's message (with its numbers), for status.ips[].lastDecision. */
  last?: string | undefined;
}

export function judgeWarmupDay(input: {
  ip: string;
  steps: readonly WarmupStep[];
  buckets: readonly HourBucket[];
  previous: IpWarmup | undefined;
  /** Start (ms) of the IP's last hour with mail, if any. */
  lastMail: number | undefined;
  now: number;
  limits?: WarmupLimits;
}): { state: IpWarmup; decision?: WarmupDecision } {
  const today = Math.floor(input.now / DAY_MS) * DAY_MS;
  const yesterday = today - DAY_MS;
  // A new IP starts at stage 0, its first day to judge being the one it is on.
  const prev: IpWarmup = input.previous ?? { stage: 0, providerStages: {}, judgedDay: yesterday, stageAtLastMail: 0 };
  if (prev.judgedDay >= yesterday || input.steps.length === 0) return { state: prev };
  const total = emptyCounts();
  const byProvider: Record<string, Counts> = {};
  for (const b of input.buckets) {
    if (b.ip !== input.ip || b.hour < yesterday || b.hour >= today) continue;
    addCounts(total, b);
    addCounts((byProvider[b.provider] ??= emptyCounts()), b);
  }
  const limits = input.limits ?? DEFAULT_WARMUP_LIMITS;
  let decision: WarmupDecision | undefined;
  if (total.attempted === 0) {
    // Idle: no judgement of the day, but stages fade (counted from the last day with mail).
    const idleDays = input.lastMail === undefined ? Math.floor((yesterday - prev.judgedDay) / DAY_MS) : Math.floor((today - (Math.floor(input.lastMail / DAY_MS) * DAY_MS + DAY_MS)) / DAY_MS);
    decision = decideIdle(prev.stageAtLastMail, idleDays, limits);
    if (decision && decision.stage >= prev.stage) decision = undefined; // already lost
    const state: IpWarmup = { ...prev, judgedDay: yesterday, ...(decision ? { stage: decision.stage, day: firstDayOf(input.steps, decision.stage), providerStages: {}, last: decision.message } : {}) };
    return decision ? { state, decision } : { state };
  }
  const stage = Math.min(prev.stage, input.steps.length - 1);
  decision = decideStageDay({ stage, steps: input.steps.length, cap: input.steps[stage]?.dailyLimit, total, byProvider, providerStages: prev.providerStages }, limits);
  let day = prev.day ?? firstDayOf(input.steps, prev.stage);
  if (decision.kind === 'advance') {
    // A healthy day counts as a warm-up day; the stage is the plan's for the days counted (a step
    // every 2 days takes 2 healthy days). Past the last step: warm, kept as steps.length, which
    // the relay reads as "no cap" (relay/warmup/plan.ts).
    day += 1;
    const next = stageOnDay(input.steps, day);
    const summary = decision.summary ?? '';
    decision = next >= input.steps.length
      ? { ...decision, stage: next, reason: 'Completed', message: `Completed: the last stage was healthy (${summary})` }
      : next > stage
        ? { ...decision, stage: next, reason: 'Advanced', message: `Advanced to stage ${next}: ${summary}` }
        : { ...decision, stage: next, reason: 'DayCounted', message: `DayCounted: warm-up day ${day} at stage ${next}, stage ${next + 1} from day ${input.steps[next + 1]!.day}: ${summary}` };
  }
  return {
    state: { stage: decision.stage, day, providerStages: decision.providerStages, judgedDay: yesterday, stageAtLastMail: decision.stage, last: decision.message },
    decision,
  };
}

/** The fewest warm-up days that put an IP on `stage` (steps.length: one past the last step's day). */
export function firstDayOf(steps: readonly WarmupStep[], stage: number): number {
  if (steps.length === 0) return 0;
  return stage >= steps.length ? steps[steps.length - 1]!.day + 1 : steps[Math.max(0, stage)]!.day;
}
