// Who may be written to at a bounce domain: a return-path token this fleet minted (and that is
// still valid), a feedback-loop address, postmaster and abuse. Anything else is refused at RCPT:
// the bounce MX consumes mail, it never relays, so routing tricks (%, !, quoted local parts with
// "@") get a 5.7.1 and unknown local parts a 5.1.1. Pure: keys and the clock are passed in.
import { looksLikeToken, verifyToken, type ReturnPathKey, type TokenVerdict } from '../returnpath/token.ts';

export type BounceAddressDecision =
  | { ok: true; as: 'token'; verdict: TokenVerdict }
  | { ok: true; as: 'feedback' | 'postmaster' }
  | { ok: false; code: number; enhanced: string; text: string; reason: string }
  /** Not one of our bounce domains: the ordinary recipient policy decides (relaying is refused there). */
  | { ok: 'not-ours' };

export interface BounceAddressContext {
  /** Lower-case bounce and feedback domains (acceptDomains and every sending domain's returnPathDomain). */
  bounceDomains: ReadonlySet<string>;
  feedbackLocalParts: readonly string[];
  keys: readonly ReturnPathKey[];
  now: number;
  validityMs: number;
  pool?: string | undefined;
}

const ALWAYS = new Set(['postmaster', 'abuse']);

const REASON_TEXT: Record<string, string> = {
  'not-a-token': 'is not a return path of this server',
  'unknown-key': 'was signed with a key this server does not have',
  'retired-key': 'was signed with a retired key',
  'bad-signature': 'has an invalid signature',
  expired: 'has expired',
  'from-the-future': 'is not valid yet',
};

export function decideBounceAddress(address: string, ctx: BounceAddressContext): BounceAddressDecision {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1).toLowerCase().replace(/\.$/, '');
  if (at <= 0 || !ctx.bounceDomains.has(domain)) return { ok: 'not-ours' };
  const local = address.slice(0, at);
  // Source routes (RFC 5321 §3.6.1 "%"-hack, UUCP "!") and quoted local parts hiding another
  // address: refused as policy, before anything else could read them as a destination.
  if (/[%!@"\\]/.test(local) || local.startsWith('"')) {
    return { ok: false, code: 550, enhanced: '5.7.1', text: `<${address}>: source routing and quoted local parts are not accepted here; this server relays nothing`, reason: 'routing' };
  }
  const lower = local.toLowerCase();
  if (ALWAYS.has(lower)) return { ok: true, as: 'postmaster' };
  if (ctx.feedbackLocalParts.includes(lower)) return { ok: true, as: 'feedback' };
  if (looksLikeToken(local)) {
    const verdict = verifyToken(local, domain, { keys: ctx.keys, now: ctx.now, validityMs: ctx.validityMs, ...(ctx.pool !== undefined ? { pool: ctx.pool } : {}) });
    if (verdict.trusted) return { ok: true, as: 'token', verdict };
    return { ok: false, code: 550, enhanced: '5.1.1', text: `<${address}>: this return path ${REASON_TEXT[verdict.reason] ?? 'is not valid'}`, reason: `token-${verdict.reason}` };
  }
  return { ok: false, code: 550, enhanced: '5.1.1', text: `<${address}>: no such bounce address`, reason: 'unknown-bounce-address' };
}
