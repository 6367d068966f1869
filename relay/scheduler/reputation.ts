// IP reputation in the scheduler: whether a source IP is quarantined or blocked toward a provider
// (from the config the operator or a person wrote), and the relay's own reading of receivers'
// refusals that name a blocklist or the IP's reputation. Pure; the shaper holds the state.
import type { ShapingConfig } from '../config/schema.ts';
import { classifyReply } from '../bounce/classify.ts';

export interface IpBlock {
  reason: string;
}

function addressOf(entry: { address?: string | undefined }, unbound: string): string {
  return entry.address ?? unbound;
}

/** The quarantine entry of `ip` (`unbound` names the relay's unbound source), if any. */
export function quarantineOf(shaping: Pick<ShapingConfig, 'quarantine'>, ip: string, unbound: string): IpBlock | undefined {
  if (shaping.quarantine.length === 0) return undefined; // nearly always: no search, no closure per decision
  const q = shaping.quarantine.find((e) => addressOf(e, unbound) === ip);
  return q ? { reason: `quarantined: ${q.reason}` } : undefined;
}

/** Whether the relay should leave its Service: every source quarantined and the config says so. */
export function quarantinedOutOfService(shaping: Pick<ShapingConfig, 'quarantine' | 'quarantineLeavesService'>, egressIps: readonly { address: string }[], unbound: string): boolean {
  if (!shaping.quarantineLeavesService) return false;
  const sources = egressIps.length > 0 ? egressIps.map((e) => e.address) : [unbound];
  return sources.every((a) => quarantineOf(shaping, a, unbound) !== undefined);
}

/** The config's block of `ip` toward provider `name`, if any. */
export function configBlockOf(shaping: Pick<ShapingConfig, 'blockedProviders'>, ip: string, name: string, unbound: string): IpBlock | undefined {
  if (shaping.blockedProviders.length === 0) return undefined;
  const b = shaping.blockedProviders.find((e) => addressOf(e, unbound) === ip && e.provider === name);
  return b ? { reason: `blocked toward ${name}: ${b.reason}` } : undefined;
}

// Replies that say the sending IP itself is refused: a blocklist named (Spamhaus in 550 5.7.1,
// "blocked using", RBL/DNSBL), Outlook's OU-001/S3150/5.7.606–649 "banned sending IP", Gmail's
// 421/550 5.7.x texts about the IP's reputation or unsolicited mail from the IP. Sources:
// deliverability and feedback facts §4; relay/bounce/rules.ts "reputation" is the shared category.
const IP_BLOCK_TEXT = /spamhaus|barracuda|spamcop|blocked using|block ?list|black ?list|\bRBL\b|DNSBL|\bOU-00\d\b|\bS3150\b|\bS3140\b|banned sending IP|5\.7\.6(0[6-9]|[1-4]\d)|(poor|low|bad) reputation|reputation of (the|your) sending|IP reputation|unsolicited mail originating from your IP/i;

// Categories that say the refusal is about the address, the message or the channel, not the IP.
const NOT_IP_CATEGORIES = new Set<string>(['unknown-user', 'unknown-domain', 'mailbox-full', 'message-size', 'dns', 'tls', 'auth', 'connection']);

export interface RefusalFacts {
  code: number;
  enhanced?: string | undefined;
  text: string;
}

/** Whether a refusal says the source IP is blocked for its reputation (not the recipient, not the content). */
export function namesIpBlock(r: RefusalFacts): boolean {
  if (r.code < 400 || r.code >= 600) return false;
  if (!IP_BLOCK_TEXT.test(r.text)) return false;
  // The shared classifier must not say it is about the address, the message or the channel (an
  // unknown user whose text happens to mention a list is not a block of the IP).
  return !NOT_IP_CATEGORIES.has(classifyReply({ code: r.code, enhanced: r.enhanced, text: r.text, phase: 'rcpt' }).category);
}

/**
 * Distinct recipients refused with an IP block per (IP, provider) within a sliding window: at the
 * threshold the pair is blocked. One recipient's odd server says little; several say the IP.
 */
export class BlockSignals {
  private readonly seen = new Map<string, Map<string, number>>();

  /** Records one refusal; true when the pair now has `threshold` distinct recipients within the window. */
  note(ip: string, provider: string, recipient: string, now: number, windowMs: number, threshold: number): boolean {
    if (threshold <= 0) return false;
    const key = `${ip}|${provider}`;
    const m = this.seen.get(key) ?? new Map<string, number>();
    for (const [r, at] of m) if (at <= now - windowMs) m.delete(r);
    m.set(recipient.toLowerCase(), now);
    this.seen.set(key, m);
    if (m.size < threshold) return false;
    this.seen.delete(key);
    return true;
  }
}
