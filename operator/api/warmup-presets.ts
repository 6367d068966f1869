// Named warm-up curves a SendingPool IP can refer to instead of listing steps. Days count days
// on which the IP actually sent (the common complaint about provider warm-ups is that they
// count calendar days), so a paused IP does not silently "graduate".
// Shapes follow the providers' published curves: SES ramps to 50,000/day
// over 45 days; SendGrid grows roughly 40 % a day.

export interface WarmupStep {
  /** Sending day (0 = the first day the IP sends) from which this limit applies. */
  day: number;
  /** Messages the IP may send per day from `day` on. */
  dailyLimit: number;
}

export const WARMUP_PRESET_NAMES = ['conservative-45d', 'standard-30d', 'fast-14d'] as const;
export type WarmupPresetName = (typeof WARMUP_PRESET_NAMES)[number];

function geometric(days: number, first: number, last: number, stepEvery = 1): WarmupStep[] {
  const steps: WarmupStep[] = [];
  const n = Math.floor(days / stepEvery);
  for (let i = 0; i <= n; i++) {
    const raw = first * Math.pow(last / first, i / n);
    // Round to two significant digits so the plan is readable in `kubectl describe`.
    const magnitude = Math.pow(10, Math.max(0, Math.floor(Math.log10(raw)) - 1));
    const dailyLimit = Math.round(raw / magnitude) * magnitude;
    const prev = steps.at(-1);
    if (!prev || dailyLimit > prev.dailyLimit) steps.push({ day: i * stepEvery, dailyLimit });
  }
  return steps;
}

export const WARMUP_PRESETS: Readonly<Record<WarmupPresetName, readonly WarmupStep[]>> = {
  // SES standard dedicated IPs: 50,000/day after 45 days.
  'conservative-45d': geometric(45, 200, 50_000, 3),
  // Between the SES and SendGrid curves; a sensible default for a new IP on a known domain.
  'standard-30d': geometric(30, 500, 100_000, 2),
  // SendGrid-like (~+40 %/day) for IPs moving an established stream.
  'fast-14d': geometric(14, 1_000, 100_000, 1),
};

export function warmupSteps(plan: { preset?: WarmupPresetName | undefined; steps?: readonly WarmupStep[] | undefined } | undefined): readonly WarmupStep[] {
  if (!plan) return [];
  if (plan.steps) return plan.steps;
  if (plan.preset) return WARMUP_PRESETS[plan.preset];
  return [];
}
