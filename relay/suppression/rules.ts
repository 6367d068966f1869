// What feedback does to the suppression list, and whether an entry stops a delivery. Pure: the
// delivery hook, the bounce MX's consumer, the CLI and the HTTP API all ask these functions, so
// one file owns the rules (docs/suppression.md has the table and the sources).
import { domainToASCII } from 'node:url';
import type { MessageClass } from '../queue/store.ts';

export const SUPPRESSION_REASONS = ['hard-bounce', 'complaint', 'unsubscribe', 'manual'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** The scope of an entry that applies to every sending domain of the fleet. */
export const FLEET_SCOPE = '*';

export interface SuppressionEntry {
  /** normaliseAddress() of the recipient. */
  address: string;
  /** A sending domain (lower case, ASCII) or FLEET_SCOPE. */
  scope: string;
  reason: SuppressionReason;
  /** Why, in words: the reply or report that caused it, or an administrator's note. */
  detail: string;
  sourceQueueId: string | null;
  sourceEventId: string | null;
  firstSeen: number;
  lastSeen: number;
  /** Epoch ms after which the entry no longer applies; null: never. */
  expiresAt: number | null;
}

export interface SuppressionPolicy {
  /** Hard-bounce entries expire after this long; 0: never. */
  hardBounceExpirySeconds: number;
  /** Complaint and unsubscribe entries; 0 (the default): never. */
  complaintExpirySeconds: number;
  unsubscribeExpirySeconds: number;
  /** Soft bounces suppress only after `count` in a row (no delivery between) within `windowDays`. */
  softBounce: { count: number; windowDays: number };
  /** Which reasons stop mail of each class. */
  classes: Record<MessageClass, readonly SuppressionReason[]>;
}

/**
 * Defaults. Hard bounces expire after 30 days as in Postal (default_suppression_list_automatic_
 * removal_days): a mailbox can be created again, and an address kept forever costs a customer's
 * customer their mail. Complaints and unsubscribes never expire (SES keeps both until removed).
 * An unsubscribe is about marketing: transactional and OTP mail still go (Gmail exempts
 * transactional mail from one-click unsubscribe). A complaint about an OTP the user asked for is
 * not a reason to stop their next login code; a hard bounce stops everything (the mailbox is gone).
 */
export const DEFAULT_SUPPRESSION_POLICY: SuppressionPolicy = {
  hardBounceExpirySeconds: 30 * 86400,
  complaintExpirySeconds: 0,
  unsubscribeExpirySeconds: 0,
  softBounce: { count: 3, windowDays: 7 },
  classes: {
    otp: ['hard-bounce', 'manual'],
    transactional: ['hard-bounce', 'complaint', 'manual'],
    bulk: ['hard-bounce', 'complaint', 'unsubscribe', 'manual'],
  },
};

/** An address that cannot be normalised (the error names it). */
export class AddressError extends Error {
  constructor(address: string, why: string) {
    super(`"${address}" is not an email address: ${why}`);
    this.name = 'AddressError';
  }
}

/**
 * One spelling per mailbox: angle brackets and blanks dropped, the domain in lower-case ASCII
 * (IDNA), the local part lower-cased. RFC 5321 lets a local part be case-sensitive, but no
 * mailbox provider treats it so, and a suppression that misses `John@` after `john@` bounced is
 * the costlier mistake. Throws AddressError.
 */
export function normaliseAddress(raw: string): string {
  const a = raw.trim().replace(/^<(.*)>$/, '$1').trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1) throw new AddressError(raw, 'expected local@domain');
  const local = a.slice(0, at);
  if (/[\s<>]/.test(local) || local.length > 64) throw new AddressError(raw, 'bad local part');
  const written = a.slice(at + 1);
  const domain = domainOfAddress(written);
  if (!domain) throw new AddressError(raw, 'bad domain');
  const lower = local.toLowerCase();
  // Already in its one spelling (nearly every recipient): the address as given, not built again.
  return lower === local && domain === written ? a : `${lower}@${domain}`;
}

/** normaliseDomain of recipients' domains, remembered: every delivery asks for each recipient's (a few names, over and over). */
const DOMAINS_MAX = 10_000;
const domains = new Map<string, string>();

function domainOfAddress(written: string): string {
  let d = domains.get(written);
  if (d === undefined) {
    if (domains.size >= DOMAINS_MAX) domains.clear();
    domains.set(written, (d = normaliseDomain(written)));
  }
  return d;
}

/** Lower-case ASCII form of a domain, or '' when it is not one. */
export function normaliseDomain(raw: string): string {
  const lower = raw.trim().replace(/\.$/, '').toLowerCase();
  // domainToASCII (IDNA) only changes a name with characters outside ASCII letters, digits, '-'
  // and '.'; it was most of a suppression lookup's cost for the common name.
  const d = /^[a-z0-9.-]*$/.test(lower) ? lower : domainToASCII(lower);
  return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/.test(d) ? d : '';
}

/** Scopes seen, by how they were written: every outcome's feedback asks for its sending domain's (a few names). */
const SCOPES_MAX = 1000;
const scopes = new Map<string, string>();

export function normaliseScope(raw: string): string {
  if (raw === FLEET_SCOPE || raw === '') return FLEET_SCOPE;
  const known = scopes.get(raw);
  if (known !== undefined) return known;
  const d = normaliseDomain(raw);
  if (!d) throw new AddressError(raw, 'a scope is a sending domain or "*" (the whole fleet)');
  if (scopes.size >= SCOPES_MAX) scopes.clear();
  scopes.set(raw, d);
  return d;
}

/**
 * The entry, among those found for an address (fleet-wide and its sending domain's), that stops
 * this delivery; undefined: deliver. Expired entries and reasons the class ignores do not count.
 */
export function blockingEntry<E extends Pick<SuppressionEntry, 'scope' | 'reason' | 'expiresAt'>>(
  entries: readonly E[],
  sendingDomain: string,
  cls: MessageClass,
  now: number,
  policy: SuppressionPolicy,
): E | undefined {
  const applies = policy.classes[cls];
  return entries.find((e) => (e.scope === FLEET_SCOPE || e.scope === sendingDomain) && (e.expiresAt === null || e.expiresAt > now) && applies.includes(e.reason));
}

export function expiryFor(reason: SuppressionReason, now: number, policy: SuppressionPolicy): number | null {
  const s = reason === 'hard-bounce' ? policy.hardBounceExpirySeconds
    : reason === 'complaint' ? policy.complaintExpirySeconds
    : reason === 'unsubscribe' ? policy.unsubscribeExpirySeconds
    : 0;
  return s > 0 ? now + s * 1000 : null;
}

/**
 * Feedback about one recipient, from any source: a final outcome of our own delivery attempt, an
 * asynchronous DSN or ARF report parsed on the bounce MX (branch `bounces` calls onFeedback with
 * this shape), or a one-click unsubscribe.
 */
export interface FeedbackRecord {
  kind: 'delivered' | 'bounce' | 'complaint' | 'unsubscribe';
  recipient: string;
  /** The sending domain the feedback is about. */
  sendingDomain: string;
  /** Bounces: our category (relay/bounce/rules.ts) and verdict. */
  category?: string | undefined;
  hard?: boolean | undefined;
  /** Enhanced status code (bounces). */
  status?: string | undefined;
  /** The reply or report text, kept as the entry's detail. */
  detail?: string | undefined;
  queueId?: string | undefined;
  eventId?: string | undefined;
  /** ARF Feedback-Type. */
  feedbackType?: string | undefined;
  at: number;
}

/**
 * Categories that are the recipient's doing. Only these ever suppress: a 5.7.1 block during
 * warm-up (reputation, policy, content, auth) is the sender's problem, and suppressing its
 * recipients is Postal's issue #60.
 */
// unknown-domain: a receiver says the recipient's domain does not exist (relay/bounce/rules.ts).
const HARD_CATEGORIES = new Set(['unknown-user', 'unknown-domain', 'dns']);
const SOFT_CATEGORIES = new Set(['mailbox-full']);

export type BounceVerdict = 'hard' | 'soft' | 'not-recipient';

/** Whether a bounce says something about the recipient: hard, soft, or neither. */
export function bounceVerdict(r: Pick<FeedbackRecord, 'category' | 'hard' | 'status'>): BounceVerdict {
  const cat = r.category ?? '';
  const status = r.status ?? '';
  if (HARD_CATEGORIES.has(cat)) return r.hard === false ? 'soft' : 'hard';
  if (SOFT_CATEGORIES.has(cat)) return 'soft';
  // Unclassified text: only the status code's subject (RFC 3463: x.1 addressing, x.2 mailbox) tells.
  if (cat === 'hard' || cat === 'soft' || cat === '') {
    if (/^5\.1\.[0-9]+$/.test(status) || status === '5.2.1') return 'hard';
    if (/^[45]\.2\.[0-9]+$/.test(status)) return 'soft';
  }
  return 'not-recipient';
}

/** Recent soft bounces of one address in one scope (kept per relay, reset by a delivery). */
export interface SoftHistory {
  count: number;
  firstAt: number;
}

export interface FeedbackDecision {
  /** An entry to add or refresh. */
  suppress?: { scope: string; reason: SuppressionReason; detail: string; expiresAt: number | null };
  /** What to keep as the address's soft-bounce history: a number, or undefined to forget it. */
  soft?: SoftHistory | undefined;
  /** Whether the soft history changed (write it). */
  softChanged: boolean;
}

/** A delivery with no soft bounces behind it (nearly every one): one shared decision, read and never changed. */
const NOTHING_CHANGED: FeedbackDecision = { soft: undefined, softChanged: false };

/**
 * Feedback → suppression. Hard bounces suppress fleet-wide (a mailbox that does not exist does not
 * exist for any sender); complaints and unsubscribes suppress for the sending domain they were
 * about (the recipient objected to that sender, not to every customer of the fleet); soft bounces
 * after policy.softBounce.count in a row within windowDays, then as a hard bounce. A delivery
 * forgets the soft history (it was a passing condition).
 */
export function decideFeedback(r: FeedbackRecord, soft: SoftHistory | undefined, policy: SuppressionPolicy): FeedbackDecision {
  const domainScope = normaliseScope(r.sendingDomain);
  switch (r.kind) {
    case 'delivered':
      return soft === undefined ? NOTHING_CHANGED : { soft: undefined, softChanged: true };
    case 'complaint':
      return { suppress: { scope: domainScope, reason: 'complaint', detail: r.detail ?? `complaint (${r.feedbackType ?? 'abuse'})`, expiresAt: expiryFor('complaint', r.at, policy) }, softChanged: false };
    case 'unsubscribe':
      return { suppress: { scope: domainScope, reason: 'unsubscribe', detail: r.detail ?? 'one-click unsubscribe', expiresAt: expiryFor('unsubscribe', r.at, policy) }, softChanged: false };
    case 'bounce': {
      const verdict = bounceVerdict(r);
      if (verdict === 'hard') {
        return { suppress: { scope: FLEET_SCOPE, reason: 'hard-bounce', detail: r.detail ?? `hard bounce ${r.status ?? ''}`.trim(), expiresAt: expiryFor('hard-bounce', r.at, policy) }, soft: undefined, softChanged: soft !== undefined };
      }
      if (verdict === 'not-recipient') return { softChanged: false };
      const windowMs = policy.softBounce.windowDays * 86400_000;
      const fresh = soft === undefined || r.at - soft.firstAt > windowMs;
      const next: SoftHistory = fresh ? { count: 1, firstAt: r.at } : { count: soft.count + 1, firstAt: soft.firstAt };
      if (next.count >= policy.softBounce.count) {
        return {
          suppress: { scope: FLEET_SCOPE, reason: 'hard-bounce', detail: `${next.count} soft bounces in a row within ${policy.softBounce.windowDays} days; last: ${r.detail ?? r.status ?? ''}`.trim(), expiresAt: expiryFor('hard-bounce', r.at, policy) },
          soft: undefined,
          softChanged: true,
        };
      }
      return { soft: next, softChanged: true };
    }
  }
}
