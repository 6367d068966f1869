// Where an IP is in its warm-up, from its plan, when the operator first saw it with that plan, and
// the clock. Pure (the clock is an argument), so a whole 45-day ramp is tested in milliseconds.
//
// Days are whole UTC days (86,400 s) since the start. The relay enforces its own quota and counts
// the days it actually sent; this is the operator's projection of the plan for `kubectl get`,
// which can run ahead of the relay when an IP sat idle or paused.
import { warmupSteps, type WarmupPresetName, type WarmupStep } from '../api/warmup-presets.ts';

export const DAY_MS = 86_400_000;

export interface WarmupPlan {
  preset?: WarmupPresetName | undefined;
  steps?: readonly WarmupStep[] | undefined;
}

export interface WarmupState {
  /** Index into the plan's steps of the step in force. */
  stage: number;
  /** Whole days since the start (0 on the first day). */
  day: number;
  /** Messages the IP may send today; undefined once the plan is complete (no limit). */
  quotaToday: number | undefined;
  /** Past the last step's day: the IP is warm. */
  done: boolean;
  /** When the state changes next (the next day boundary); undefined once done. */
  nextChangeAt: Date | undefined;
}

/** undefined when the IP has no warm-up (it is warm already). */
export function warmupState(plan: WarmupPlan | undefined, startedAt: Date, now: Date): WarmupState | undefined {
  const steps = warmupSteps(plan);
  if (steps.length === 0) return undefined;
  // A clock that moved back (or a start recorded by a replica with a clock ahead) counts as day 0.
  const day = Math.max(0, Math.floor((now.getTime() - startedAt.getTime()) / DAY_MS));
  const last = steps.length - 1;
  if (day > steps[last]!.day) return { stage: last, day, quotaToday: undefined, done: true, nextChangeAt: undefined };
  // The last step whose day has come; before the first step's day, the first step still applies
  // (a plan that starts at day 3 does not mean "unlimited until then").
  let stage = 0;
  for (let i = 0; i <= last; i++) if (steps[i]!.day <= day) stage = i;
  return {
    stage,
    day,
    quotaToday: steps[stage]!.dailyLimit,
    done: false,
    nextChangeAt: new Date(startedAt.getTime() + (day + 1) * DAY_MS),
  };
}
