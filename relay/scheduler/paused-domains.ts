// Domain guardrail on the relay side: bulk mail of a sending domain the operator paused
// (config pausedDomains) is held in the queue, never attempted; otp and transactional mail of the
// same domain flows. Held mail carries a marker reply (`mailfleet queue show` says why it waits)
// and waits PAUSE_HOLD_MS; when the list changes (a resume: live reload, or a restart with the new
// config) every held recipient is due again at once and whatever is still paused is held again.
// Pure, except for the marker the store matches on (relay/queue/store.ts releaseHeld).
import type { MessageClass } from '../queue/store.ts';
import { sendingDomainOf } from '../stats/categories.ts';

/** Fallback re-check of held bulk when no change of the list is noticed. */
export const PAUSE_HOLD_MS = 3_600_000;
export const HELD_REPLY_PREFIX = '451 4.7.1 held: bulk mail from ';

export function heldReply(domain: string): string {
  return `${HELD_REPLY_PREFIX}${domain} is paused (pausedDomains); it is sent when the domain is resumed`;
}

export function heldByPause(cls: MessageClass, mailFrom: string, config: { pausedDomains: readonly string[]; domains: readonly { domain: string; returnPathDomain?: string | undefined }[] }): string | undefined {
  if (cls !== 'bulk' || config.pausedDomains.length === 0) return undefined;
  const domain = sendingDomainOf(mailFrom, config.domains);
  return config.pausedDomains.some((p) => p.toLowerCase() === domain) ? domain : undefined;
}

/** A key that changes when the paused list does (order and case do not matter). */
export function pausedKey(pausedDomains: readonly string[]): string {
  return [...new Set(pausedDomains.map((d) => d.toLowerCase()))].sort().join(',');
}
