// Named warm-up curves a SendingPool IP (or a relay config) can refer to instead of listing
// steps. `day` is a warm-up day as relay/warmup/plan.ts defines it (a UTC day on which the IP
// sent at least its minimum volume), not a calendar day, so a paused IP does not silently
// "graduate" (the common complaint about provider warm-ups that count calendar days).
// Shapes follow the providers' published curves: SES ramps to 50,000/day
// over 45 days; SendGrid grows roughly 40 % a day.

export interface WarmupStep {
  /** Warm-up day (0 = the first one; relay/warmup/plan.ts) from which this limit applies. */
  day: number;
  /** Recipients the IP may send per UTC day from `day` on. */
  dailyLimit: number;
  /** Per-provider daily caps from `day` on (each within dailyLimit); absent = only the IP-wide cap. */
  providers?: readonly { name: string; dailyLimit: number }[] | undefined;
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
