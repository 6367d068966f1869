// Where an IP is in its warm-up: one pure function of the plan, the state the config carries
// over (a baseline) and the IP's own per-day history, at a given instant. The relay enforces
// what it returns (relay/scheduler/shaper.ts) and the operator shows the same numbers in
// status.ips[] (operator/controllers/sendingpool): no cap is computed twice with two meanings.
//
// A warm-up day, defined here and only here (docs/shaping.md "The warm-up day"):
//   a UTC calendar day (00:00–24:00 UTC) on which the IP handed receivers at least the day's
//   minimum volume: the plan's `minDailyVolume`, or by default half of that day's cap (never
//   more than the cap).
// So days with the relay's pods down, paused or idle do not count, a day that ends short of
// the minimum does not count, and the clock does not start before the IP's relay first sent.
// Today never counts yet: the stage moves on at the next UTC midnight, if today qualified.
//
// Who decides the stage: with an operator, the operator (operator/control/warmup-loop.ts judges
// each day by how the mail was received, counts only healthy days, takes the stage for that count
// from stageOnDay below, and renders `state.stage` / `state.providerStages` / `state.countedDays`
// into the relay config); the relay enforces that stage and its own day counting no longer moves
// it.
// Without one (`mailfleet dev`, a hand-written config) the counted days decide, as above.
import { warmupSteps, type WarmupPresetName, type WarmupStep } from './presets.ts';

export const DAY_MS = 86_400_000;

/** Whole UTC days since the epoch: the key of the per-day history. */
export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** "2026-12-06" for a utcDay number. */
export function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The utcDay number of "2026-12-06"; NaN when it is not such a date. */
export function parseIsoDay(s: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return Number.NaN;
  const ms = Date.parse(`${s}T00:00:00Z`);
  return Number.isNaN(ms) ? Number.NaN : utcDay(ms);
}

export interface WarmupPlan {
  preset?: WarmupPresetName | undefined;
  steps?: readonly WarmupStep[] | undefined;
  /** Recipients an IP must send on a UTC day for it to count; default half of that day's cap. */
  minDailyVolume?: number | undefined;
}

/**
 * What the config carries over from elsewhere (the operator's status, an administrator): warm-up
 * days already counted up to and including `countedThrough`. The relay adds the days it counted
 * itself after that date, so a relay on a fresh volume does not start the plan again.
 */
export interface WarmupBaseline {
  countedDays?: number | undefined;
  /** "YYYY-MM-DD": days up to this one are in countedDays; absent = count every day of the history. */
  countedThrough?: string | undefined;
  /** "YYYY-MM-DD": the first day the IP sent, when known from before this relay's history. */
  startedOn?: string | undefined;
  /**
   * The stage decided elsewhere (the operator's warm-up loop): when set, it is the stage in force
   * and the counted days no longer move it. `steps.length` or more: warm (no cap).
   */
  stage?: number | undefined;
  /** Per provider, a stage below `stage` (a step back toward that provider). */
  providerStages?: readonly { provider: string; stage: number }[] | undefined;
}

/** Recipients sent per UTC day (utcDay → count), from the relay's store. */
export type SentPerDay = ReadonlyMap<number, number>;

export interface WarmupProgress {
  /** Index into the plan's steps of the step in force. */
  stage: number;
  /** Warm-up days counted before today (0 on the first). */
  day: number;
  /** Recipients the IP may send today; undefined once the plan is complete (no cap). */
  capToday: number | undefined;
  /** Per-provider caps today, from the step in force. */
  providerCaps: readonly { name: string; dailyLimit: number }[];
  /** What today must reach to count as a warm-up day; undefined once done. */
  minVolumeToday: number | undefined;
  /** Recipients sent so far today (from the history; 0 when the caller has none). */
  sentToday: number;
  /** Past the last step's day: the IP is warm. */
  done: boolean;
  /** First UTC day the IP sent ("YYYY-MM-DD"); undefined while it never has. */
  startedOn: string | undefined;
  /** The next UTC midnight (ms), when the cap is worked out again; undefined once done. */
  nextChangeAt: number | undefined;
}

/** The minimum volume that makes a day with this cap count. */
export function dayMinimum(plan: WarmupPlan, cap: number): number {
  return Math.min(cap, plan.minDailyVolume ?? Math.ceil(cap / 2));
}

/** The step in force on warm-up day `day`: the last one whose day has come (the first before that). */
function stageAt(steps: readonly WarmupStep[], day: number): number {
  let stage = 0;
  for (let i = 0; i < steps.length; i++) if (steps[i]!.day <= day) stage = i;
  return stage;
}

/**
 * The stage on warm-up day `day` (days counted so far): `steps.length` once past the last step's
 * day (warm). The operator's warm-up loop counts healthy days and takes the stage from here, so
 * a plan's spacing (a step every 2 or 3 days) means the same with and without an operator.
 */
export function stageOnDay(steps: readonly WarmupStep[], day: number): number {
  if (steps.length === 0 || day > steps[steps.length - 1]!.day) return steps.length;
  return stageAt(steps, day);
}

/** undefined when the plan has no steps (the IP is warm). */
export function warmupProgress(plan: WarmupPlan | undefined, baseline: WarmupBaseline | undefined, sent: SentPerDay, now: number): WarmupProgress | undefined {
  const steps = warmupSteps(plan);
  if (!plan || steps.length === 0) return undefined;
  const last = steps[steps.length - 1]!.day;
  const today = utcDay(now);
  const through = baseline?.countedThrough !== undefined ? parseIsoDay(baseline.countedThrough) : Number.NaN;
  let day = baseline?.countedDays ?? 0;
  let first: number | undefined;
  for (const d of [...sent.keys()].sort((a, b) => a - b)) {
    const n = sent.get(d) ?? 0;
    if (n > 0 && first === undefined) first = d;
    if (d >= today) break;
    if (d <= through || day > last) continue;
    if (n >= dayMinimum(plan, steps[stageAt(steps, day)]!.dailyLimit)) day++;
  }
  const startedOn = baseline?.startedOn ?? (first === undefined ? undefined : isoDay(first));
  const sentToday = sent.get(today) ?? 0;
  if (baseline?.stage !== undefined) return decidedProgress(plan, steps, baseline, sentToday, startedOn, today);
  if (day > last) {
    return { stage: steps.length - 1, day, capToday: undefined, providerCaps: [], minVolumeToday: undefined, sentToday, done: true, startedOn, nextChangeAt: undefined };
  }
  const stage = stageAt(steps, day);
  const step = steps[stage]!;
  return {
    stage,
    day,
    capToday: step.dailyLimit,
    providerCaps: step.providers ?? [],
    minVolumeToday: dayMinimum(plan, step.dailyLimit),
    sentToday,
    done: false,
    startedOn,
    nextChangeAt: (today + 1) * DAY_MS,
  };
}

/** A provider's daily cap at a step: the plan's own for that provider, else the whole IP's. */
function providerCapAt(step: WarmupStep, provider: string): number {
  return step.providers?.find((p) => p.name === provider)?.dailyLimit ?? step.dailyLimit;
}

/**
 * Progress when the stage is decided elsewhere (the operator): the caps of that stage, lowered per
 * provider for the providers stepped back; `day` is the days the operator counted (countedDays),
 * not this relay's own count, so both sides show one day number.
 */
function decidedProgress(plan: WarmupPlan, steps: readonly WarmupStep[], baseline: WarmupBaseline, sentToday: number, startedOn: string | undefined, today: number): WarmupProgress {
  const day = baseline.countedDays ?? 0;
  const done = baseline.stage! >= steps.length;
  const stage = Math.min(baseline.stage!, steps.length - 1);
  const step = steps[stage]!;
  const caps = new Map((done ? [] : (step.providers ?? [])).map((p) => [p.name, p.dailyLimit]));
  for (const ps of baseline.providerStages ?? []) {
    const at = providerCapAt(steps[Math.min(ps.stage, steps.length - 1)]!, ps.provider);
    caps.set(ps.provider, Math.min(caps.get(ps.provider) ?? at, at));
  }
  const providerCaps = [...caps].map(([name, dailyLimit]) => ({ name, dailyLimit }));
  if (done) return { stage, day, capToday: undefined, providerCaps, minVolumeToday: undefined, sentToday, done: true, startedOn, nextChangeAt: undefined };
  return { stage, day, capToday: step.dailyLimit, providerCaps, minVolumeToday: dayMinimum(plan, step.dailyLimit), sentToday, done: false, startedOn, nextChangeAt: (today + 1) * DAY_MS };
}
