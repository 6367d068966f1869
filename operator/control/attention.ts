// The SendingPool's ATTENTION column (status.summary.attention): which of its sending domains and
// IPs need a person, and why, in one short line, so `kubectl get sendingpools` answers "what is
// wrong here" without a `describe`. Pure: what the stats reader decided this round in, the line out
// (undefined when nothing needs attention). The details stay where they were: the MailDomain's
// status.health, status.ips[].lastDecision, the Events.
import type { IpWarmup } from './warmup-loop.ts';

export interface DomainTrouble {
  domain: string;
  /** The guardrail's reason: PausedHighBounces, ReviewHighComplaints, … */
  reason: string;
  bounceRate: string;
  complaintRate: string;
}

export interface IpAttention {
  address: string;
  /** The reputation loop's quarantine record (status.ips[].quarantine), while quarantined. */
  quarantine?: { reason: string; list?: string | undefined; answer?: string | undefined } | undefined;
  warmup?: IpWarmup | undefined;
  /** Why its relay could not be read this round (Unreachable, Unauthorized, …); undefined when read or not known. */
  unread?: string | undefined;
}

/** Warm-up decisions a person may have to look at (advances and "Completed" are not). */
const WARMUP_TROUBLE = /^(Held\w+|SteppedBack|LostStagesIdle):/;

export const ATTENTION_MAX = 256;

export function poolAttention(domains: readonly DomainTrouble[], ips: readonly IpAttention[]): string | undefined {
  const parts: string[] = [];
  // Paused domains first: that is mail being held.
  const order = (d: DomainTrouble) => (d.reason.startsWith('Paused') ? 0 : 1);
  for (const d of [...domains].sort((a, b) => order(a) - order(b) || a.domain.localeCompare(b.domain))) {
    const rate = /Complaint/.test(d.reason) ? `${d.complaintRate} complaints` : `${d.bounceRate} bounces`;
    parts.push(`${d.domain} ${d.reason} (${rate})`);
  }
  // Quarantined IPs next: the IP sends nothing until a person gets it delisted (or releases it);
  // the same record makes its state Quarantined (operator/controllers/sendingpool/ip-state.ts).
  for (const ip of ips) {
    const q = ip.quarantine;
    if (q) parts.push(`${ip.address} Quarantined (${q.reason === 'Listed' && q.list ? `${q.list}${q.answer ? ` ${q.answer}` : ''}` : 'by annotation'})`);
  }
  for (const ip of ips) {
    if (ip.unread) parts.push(`${ip.address} relay ${ip.unread}`);
    const reason = WARMUP_TROUBLE.exec(ip.warmup?.last ?? '')?.[1];
    if (!reason) continue;
    const toward = Object.entries(ip.warmup!.providerStages).sort(([a], [b]) => a.localeCompare(b)).map(([p, s]) => `${p} stage ${s}`);
    parts.push(`${ip.address} ${reason} (stage ${ip.warmup!.stage}${toward.length ? `; ${toward.join(', ')}` : ''})`);
  }
  if (parts.length === 0) return undefined;
  const line = parts.join('; ');
  return line.length <= ATTENTION_MAX ? line : `${line.slice(0, ATTENTION_MAX - 1)}…`;
}
