// Which durable counters one recipient outcome adds to, and which sending domain it counts for.
// Pure: the engine calls these per outcome; the table tests pin the mapping.
import type { BounceCategory } from '../bounce/classify.ts';
import type { CountField } from './contract.ts';

export type OutcomeKind = 'delivered' | 'deferred' | 'bounced' | 'expired';

/** Reputation and policy refusals: the receiver objects to the sender, not to the recipient. */
const POLICY = new Set<BounceCategory>(['reputation', 'policy', 'spam-content', 'auth']);
const SOFT = new Set<BounceCategory>(['mailbox-full', 'soft', 'connection']);

export function countFieldsFor(kind: OutcomeKind, category: BounceCategory | undefined): CountField[] {
  switch (kind) {
    case 'delivered':
      return ['attempted', 'delivered'];
    case 'expired':
      return ['attempted', 'bouncedSoft'];
    case 'deferred':
      if (category === 'rate-limited') return ['attempted', 'deferred', 'deferredRateLimited'];
      if (category !== undefined && POLICY.has(category)) return ['attempted', 'deferred', 'deferredPolicy'];
      return ['attempted', 'deferred'];
    case 'bounced':
      if (category === 'rate-limited') return ['attempted', 'bouncedRateLimited'];
      if (category !== undefined && POLICY.has(category)) return ['attempted', 'bouncedPolicy'];
      if (category !== undefined && SOFT.has(category)) return ['attempted', 'bouncedSoft'];
      return ['attempted', 'bouncedHard'];
  }
}

export const OTHER_DOMAIN = '(other)';

/**
 * The configured sending domain an envelope sender counts for: the domain itself, its return-path
 * domain (VERP bounces+…@rp.example.com), or a subdomain of either. Anything else is "(other)", so
 * the counters' keys stay bounded by the relay's configuration, not by what clients send.
 */
export function sendingDomainOf(mailFrom: string, domains: readonly { domain: string; returnPathDomain?: string | undefined }[]): string {
  const at = mailFrom.lastIndexOf('@');
  if (at < 0) return OTHER_DOMAIN;
  const d = mailFrom.slice(at + 1).toLowerCase().replace(/\.$/, '');
  let best: { domain: string; len: number } | undefined;
  for (const s of domains) {
    for (const name of [s.domain, s.returnPathDomain]) {
      if (!name) continue;
      const n = name.toLowerCase().replace(/\.$/, '');
      if ((d === n || d.endsWith(`.${n}`)) && (!best || n.length > best.len)) best = { domain: s.domain.toLowerCase(), len: n.length };
    }
  }
  return best?.domain ?? OTHER_DOMAIN;
}
