// Pure helpers for the SendingPool status the printer columns show.
import type { PoolIpStatus, SendingPoolStatus } from '../api/index.ts';

function percent(rate: number | undefined): string | undefined {
  if (rate === undefined || !Number.isFinite(rate)) return undefined;
  const p = rate * 100;
  return `${p < 1 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/**
 * Counts and printer-column strings from per-IP status and the pool's measured rates
 * (fractions, e.g. 0.012 for 1.2 %; undefined before there is a representative volume).
 */
export function summarizePoolStatus(
  ips: readonly PoolIpStatus[],
  rates: { bounceRate?: number | undefined; complaintRate?: number | undefined } = {},
): Pick<SendingPoolStatus, 'readyIPs' | 'totalIPs' | 'summary'> {
  const ready = ips.filter((i) => i.state === 'Ready' || i.state === 'WarmingUp').length;
  const bounce = percent(rates.bounceRate);
  const complaint = percent(rates.complaintRate);
  return {
    readyIPs: ready,
    totalIPs: ips.length,
    summary: {
      ips: `${ready}/${ips.length}`,
      warmup: warmupSummary(ips),
      ...(bounce ? { bounceRate: bounce } : {}),
      ...(complaint ? { complaintRate: complaint } : {}),
    },
  };
}

/**
 * "2 warming: 500-2000/day", "1 warming: 500/day" or "done": one column, so the quotas in short.
 * An IP is warming while its plan gives it a cap today, whatever its pod's state: a relay that
 * is not ready is still on its plan (readiness has a column of its own).
 */
function warmupSummary(ips: readonly PoolIpStatus[]): string {
  const warming = ips.filter((i) => i.quotaToday !== undefined);
  if (warming.length === 0) return 'done';
  const quotas = warming.flatMap((i) => (i.quotaToday === undefined ? [] : [i.quotaToday]));
  if (quotas.length === 0) return `${warming.length} warming`;
  const lo = Math.min(...quotas);
  const hi = Math.max(...quotas);
  return `${warming.length} warming: ${lo === hi ? lo : `${lo}-${hi}`}/day`;
}
