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
): Pick<SendingPoolStatus, 'readyIPs' | 'totalIPs' | 'notReadyRelays' | 'summary'> {
  // Draining relays (IPs removed from the spec) and contested IPs (claimed by another pool) are not
  // the pool's serving IPs: the Draining condition and the IP's own state say how they are doing.
  const serving = ips.filter((i) => i.state !== 'Draining' && i.state !== 'Conflict');
  const ready = serving.filter((i) => i.state === 'Ready' || i.state === 'WarmingUp').length;
  // A quarantined IP's relay pod is Ready (it holds its mail): not a NOT READY relay, not a sending IP.
  const quarantined = serving.filter((i) => i.state === 'Quarantined').length;
  const bounce = percent(rates.bounceRate);
  const complaint = percent(rates.complaintRate);
  return {
    readyIPs: ready,
    totalIPs: serving.length,
    notReadyRelays: serving.length - ready - quarantined,
    summary: {
      ips: `${ready}/${serving.length}`,
      warmup: warmupSummary(ips),
      ...(bounce ? { bounceRate: bounce } : {}),
      ...(complaint ? { complaintRate: complaint } : {}),
    },
  };
}

/**
 * "2 warming: 500-2000/day", "1 warming: 500/day" or "done": one column, so the quotas in short.
 * Whether an IP is warming comes from its plan (a cap today), never from its pod being Ready: an
 * IP on day 0 whose relay is not up yet is still warming (the NOT READY column says the rest).
 * A contested IP (another pool's) is not this pool's to warm.
 */
function warmupSummary(ips: readonly PoolIpStatus[]): string {
  const warming = ips.filter((i) => i.state !== 'Conflict' && i.quotaToday !== undefined);
  if (warming.length === 0) return 'done';
  const quotas = warming.flatMap((i) => (i.quotaToday === undefined ? [] : [i.quotaToday]));
  if (quotas.length === 0) return `${warming.length} warming`;
  const lo = Math.min(...quotas);
  const hi = Math.max(...quotas);
  return `${warming.length} warming: ${lo === hi ? lo : `${lo}-${hi}`}/day`;
}
