// Pure helpers for the SendingPool status the printer columns show.
import type { PoolIpStatus, SendingPoolStatus } from '../api/index.ts';

function percent(rate: number | undefined): string | undefined {
  if (rate === undefined || !Number.isFinite(rate)) return undefined;
  const p = rate * 100;
  return `${p < 1 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/**
 * Whether an IP's relay pod counts as up: Ready, or out of the Service on purpose (a quarantined
 * relay fails /readyz while another IP of the pool is healthy: operator/reputation/status.ts). The
 * NOT READY column counts the served IPs for which this is false.
 */
export function podUp(ip: Pick<PoolIpStatus, 'state' | 'relayPod'>): boolean {
  // A status written before relayPod existed: its state said whether the pod was Ready.
  if (ip.relayPod === undefined) return ip.state !== 'Pending';
  return ip.relayPod === 'Ready' || ip.relayPod === 'OutOfService';
}

/**
 * Whether an IP's relay counts toward the pool's Ready condition: its pod is up (podUp) and
 * nothing holds the IP (Paused, Failed). A quarantine does not make a pool not Ready: it is a
 * verdict on the IP's reputation, reported by the IP's state, LISTED, ATTENTION and the alert.
 */
export function relayUp(ip: Pick<PoolIpStatus, 'state' | 'relayPod'>): boolean {
  return ip.state !== 'Paused' && ip.state !== 'Failed' && podUp(ip);
}

/** IPs the pool serves: draining relays (IPs removed from the spec) and contested IPs (claimed by another pool) are not. */
export function servingIps<T extends Pick<PoolIpStatus, 'state'>>(ips: readonly T[]): T[] {
  return ips.filter((i) => i.state !== 'Draining' && i.state !== 'Conflict');
}

/**
 * Counts and printer-column strings from per-IP status and the pool's measured rates
 * (fractions, e.g. 0.012 for 1.2 %; undefined before there is a representative volume).
 * Every column reads the per-IP state and relayPod the SendingPool controller derived
 * (operator/controllers/sendingpool/ip-state.ts), so they tell one story:
 * IPS = sending (Ready or WarmingUp) / served; NOT READY = served IPs whose pod is not up;
 * WARM-UP = IPs a plan caps today that may send (not Quarantined, not contested).
 */
export function summarizePoolStatus(
  ips: readonly PoolIpStatus[],
  rates: { bounceRate?: number | undefined; complaintRate?: number | undefined } = {},
): Pick<SendingPoolStatus, 'readyIPs' | 'totalIPs' | 'notReadyRelays' | 'summary'> {
  // The Draining condition and the IP's own state say how draining and contested IPs are doing.
  const serving = servingIps(ips);
  const ready = serving.filter((i) => i.state === 'Ready' || i.state === 'WarmingUp').length;
  const bounce = percent(rates.bounceRate);
  const complaint = percent(rates.complaintRate);
  return {
    readyIPs: ready,
    totalIPs: serving.length,
    notReadyRelays: serving.filter((i) => !podUp(i)).length,
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
 * A contested IP (another pool's) is not this pool's to warm; a quarantined one sends nothing
 * today whatever its cap (ATTENTION names it; released, it re-enters warm-up and this column).
 */
function warmupSummary(ips: readonly PoolIpStatus[]): string {
  const warming = ips.filter((i) => i.state !== 'Conflict' && i.state !== 'Quarantined' && i.quotaToday !== undefined);
  if (warming.length === 0) return 'done';
  const quotas = warming.flatMap((i) => (i.quotaToday === undefined ? [] : [i.quotaToday]));
  if (quotas.length === 0) return `${warming.length} warming`;
  const lo = Math.min(...quotas);
  const hi = Math.max(...quotas);
  return `${warming.length} warming: ${lo === hi ? lo : `${lo}-${hi}`}/day`;
}
