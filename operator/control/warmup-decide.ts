// Warm-up driven by how the mail was received: at the end of each stage day of an IP, advance it
// to the next stage only when that day was healthy; otherwise hold, or step back toward a provider
// that pushed back; an IP that sat idle loses stages. Pure: the day's counts, limits and the IP's
// current stage in; the next stage with a reason and a message (with the numbers) out.
//
// Limits (docs/control-loop.md): a stage day is judged when the IP attempted at least minVolume
// (default 100) or half its cap that day, whichever is smaller (a day with too little mail says
// nothing); then hard bounces < 5 % (SES review line), deferrals < 10 %, complaints < 0.1 % (SES
// review; Gmail's 0.3 % is the pause line) advance it. A provider that refused ≥ 5 % of that IP's
// attempts to it for rate or reputation (421 4.7.0, 4.7.28, [TS0x], RP-00x) over at least minVolume
// attempts steps that IP back one stage toward that provider. Idle: after idleDaysPerStage (7) days
// without mail an IP loses a stage per further such period; after resetAfterIdleDays (30, as
// SendGrid) it starts over, since receivers forget a sender's reputation.
import { ratesOf, percent, count } from './rates.ts';
import type { Counts } from '../../relay/stats/contract.ts';

export interface WarmupLimits {
  minVolume: number;
  maxBouncePercent: number;
  maxDeferralPercent: number;
  maxComplaintPercent: number;
  stepBackThrottlePercent: number;
  idleDaysPerStage: number;
  resetAfterIdleDays: number;
}

export const DEFAULT_WARMUP_LIMITS: WarmupLimits = {
  minVolume: 100,
  maxBouncePercent: 5,
  maxDeferralPercent: 10,
  maxComplaintPercent: 0.1,
  stepBackThrottlePercent: 5,
  idleDaysPerStage: 7,
  resetAfterIdleDays: 30,
};

export interface StageDay {
  /** Stage in force on the day judged (index into the plan's steps). */
  stage: number;
  /** Number of steps in the plan (the last index is steps - 1). */
  steps: number;
  /** The day's cap at that stage (undefined: none). */
  cap: number | undefined;
  /** The IP's totals that day. */
  total: Counts;
  /** The IP's counts per provider that day. */
  byProvider: Readonly<Record<string, Counts>>;
  /** Stage of this IP toward each provider that was stepped back (absent = the IP's stage). */
  providerStages: Readonly<Record<string, number>>;
}

export type WarmupReason =
  | 'Advanced' | 'Completed' | 'HeldLowVolume' | 'HeldHighBounces' | 'HeldHighDeferrals' | 'HeldHighComplaints'
  | 'SteppedBack' | 'LostStagesIdle' | 'DayCounted';

export interface WarmupDecision {
  kind: 'advance' | 'hold' | 'stepBack' | 'idle';
  stage: number;
  providerStages: Record<string, number>;
  reason: WarmupReason;
  message: string;
  /** A healthy day: its rates in words ("0.67 % bounces, … over 1,500 attempts"). */
  summary?: string;
}

/** The stage day is over: advance, hold or step back (per provider). */
export function decideStageDay(d: StageDay, limits: WarmupLimits = DEFAULT_WARMUP_LIMITS): WarmupDecision {
  const providerStages: Record<string, number> = { ...d.providerStages };
  // Step back toward providers that pushed back, whatever the IP's own totals say.
  const steppedBack: string[] = [];
  for (const [provider, c] of Object.entries(d.byProvider).sort(([a], [b]) => a.localeCompare(b))) {
    const r = ratesOf(c);
    if (c.attempted < limits.minVolume || (r.throttleRate ?? 0) * 100 < limits.stepBackThrottlePercent) continue;
    const from = providerStages[provider] ?? d.stage;
    providerStages[provider] = Math.max(0, from - 1);
    steppedBack.push(`${provider} refused ${percent(r.throttleRate)} for rate or reputation over ${count(c.attempted)} attempts (stage ${from} → ${providerStages[provider]})`);
  }
  if (steppedBack.length > 0) {
    return { kind: 'stepBack', stage: d.stage, providerStages, reason: 'SteppedBack', message: `SteppedBack: ${steppedBack.join('; ')}` };
  }

  const needed = Math.min(limits.minVolume, d.cap !== undefined ? Math.ceil(d.cap / 2) : limits.minVolume);
  const t = ratesOf(d.total);
  if (d.total.attempted < needed) {
    return { kind: 'hold', stage: d.stage, providerStages, reason: 'HeldLowVolume', message: `HeldLowVolume: ${count(d.total.attempted)} attempts, fewer than the ${count(needed)} needed to judge the day` };
  }
  // The worst provider names the hold, so the person knows whom to look at.
  const worst = (rate: (c: Counts) => number | undefined, base: (c: Counts) => number) => {
    let best: { provider: string; r: number; n: number } | undefined;
    for (const [provider, c] of Object.entries(d.byProvider)) {
      const r = rate(c);
      if (r !== undefined && base(c) > 0 && (!best || r > best.r)) best = { provider, r, n: base(c) };
    }
    return best;
  };
  if ((t.bounceRate ?? 0) * 100 >= limits.maxBouncePercent) {
    const w = worst((c) => ratesOf(c).bounceRate, (c) => ratesOf(c).final)!;
    return { kind: 'hold', stage: d.stage, providerStages, reason: 'HeldHighBounces', message: `HeldHighBounces: ${percent(w.r)} hard bounces at ${w.provider} over ${count(w.n)} messages (${percent(t.bounceRate)} over all ${count(t.final)})` };
  }
  if ((t.deferralRate ?? 0) * 100 >= limits.maxDeferralPercent) {
    const w = worst((c) => ratesOf(c).deferralRate, (c) => c.attempted)!;
    return { kind: 'hold', stage: d.stage, providerStages, reason: 'HeldHighDeferrals', message: `HeldHighDeferrals: ${percent(w.r)} deferred by ${w.provider} over ${count(w.n)} attempts` };
  }
  if ((t.complaintRate ?? 0) * 100 >= limits.maxComplaintPercent) {
    const w = worst((c) => ratesOf(c).complaintRate, (c) => c.delivered)!;
    return { kind: 'hold', stage: d.stage, providerStages, reason: 'HeldHighComplaints', message: `HeldHighComplaints: ${percent(w.r)} complaints at ${w.provider} over ${count(w.n)} delivered` };
  }
  const summary = `${percent(t.bounceRate)} bounces, ${percent(t.deferralRate)} deferred, ${percent(t.complaintRate)} complaints over ${count(t.attempted)} attempts`;
  // A healthy day also lifts one provider step-back.
  for (const [p, s] of Object.entries(providerStages)) {
    if (s + 1 >= d.stage) delete providerStages[p];
    else providerStages[p] = s + 1;
  }
  if (d.stage >= d.steps - 1) {
    return { kind: 'advance', stage: d.stage, providerStages, reason: 'Completed', message: `Completed: the last stage was healthy (${summary})`, summary };
  }
  return { kind: 'advance', stage: d.stage + 1, providerStages, reason: 'Advanced', message: `Advanced to stage ${d.stage + 1}: ${summary}`, summary };
}

/**
 * The stage an IP keeps after `idleDays` whole UTC days without mail, from the stage it had on its
 * last day with mail (so asking again the next day gives the same answer, not one more loss).
 * undefined: no loss.
 */
export function decideIdle(stage: number, idleDays: number, limits: WarmupLimits = DEFAULT_WARMUP_LIMITS): WarmupDecision | undefined {
  if (stage === 0) return undefined;
  if (idleDays >= limits.resetAfterIdleDays) {
    return { kind: 'idle', stage: 0, providerStages: {}, reason: 'LostStagesIdle', message: `LostStagesIdle: no mail for ${idleDays} days (≥ ${limits.resetAfterIdleDays}): warm-up starts over` };
  }
  const lost = Math.floor(idleDays / limits.idleDaysPerStage);
  if (lost === 0) return undefined;
  const next = Math.max(0, stage - lost);
  return { kind: 'idle', stage: next, providerStages: {}, reason: 'LostStagesIdle', message: `LostStagesIdle: no mail for ${idleDays} days: stage ${stage} → ${next} (one stage per ${limits.idleDaysPerStage} idle days)` };
}
