// SMTP reply → bounce category, and whether the failure is final. Pure: the engine, DSN composer,
// metrics and the backoff rules (backoff.ts, keyed on these categories) all ask this one module.
import { DEFAULT_BOUNCE_RULES, UNMISTAKABLE_UNKNOWN_USER, type BounceCategory, type BounceRule, type SmtpPhase } from './rules.ts';

export type { BounceCategory, BounceRule, SmtpPhase };

export interface SmtpReply {
  /** Three-digit reply code; 0 when no reply was received (DNS, connect, TLS failures). */
  code: number;
  /** RFC 3463 enhanced status code ("5.1.1"), when the server sent one. */
  enhanced?: string | undefined;
  text: string;
  phase: SmtpPhase;
}

export interface Classification {
  category: BounceCategory;
  permanent: boolean;
}

/**
 * Whether the address itself is bad, so that it may be suppressed as a hard bounce: a permanent
 * failure that names the recipient or its domain. A policy or reputation block (5.7.1 during
 * warm-up, Postal issue #60) is never the recipient's fault.
 */
export function isHardBounce(c: Classification): boolean {
  return c.permanent && HARD_CATEGORIES.has(c.category);
}
const HARD_CATEGORIES = new Set<BounceCategory>(['unknown-user', 'unknown-domain']);

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})\b/;

/** Splits a (possibly multi-line, already joined) reply into code, enhanced code and text. */
export function parseReplyLine(line: string): { code: number; enhanced?: string; text: string } {
  const m = /^(\d{3})[ -]?(.*)$/s.exec(line.trim());
  if (!m) return { code: 0, text: line.trim() };
  const rest = m[2] ?? '';
  const e = ENHANCED.exec(rest);
  return e ? { code: Number(m[1]), enhanced: e[0], text: rest.slice(e[0].length).trim() } : { code: Number(m[1]), text: rest.trim() };
}

// The matchers every reply rule uses (these bounce rules and the backoff rules, backoff.ts).

/** "5.7." is a class prefix; "5.1.1" is exact, so it does not swallow 5.1.10 (null MX). */
export function enhancedMatches(pattern: string, enhanced: string | undefined): boolean {
  if (enhanced === undefined) return false;
  return pattern.endsWith('.') ? enhanced.startsWith(pattern) : enhanced === pattern;
}

const compiled = new WeakMap<{ text?: string | undefined }, RegExp>();
/** A rule's case-insensitive text pattern (compiled once per rule); a rule without one matches. */
export function textMatches(rule: { text?: string | undefined }, text: string): boolean {
  if (rule.text === undefined) return true;
  let re = compiled.get(rule);
  if (!re) {
    re = new RegExp(rule.text, 'i');
    compiled.set(rule, re);
  }
  return re.test(text);
}

function ruleMatches(rule: BounceRule, reply: SmtpReply, enhanced: string | undefined): boolean {
  if (rule.phase && !rule.phase.includes(reply.phase)) return false;
  if (rule.code !== undefined && !String(reply.code).startsWith(rule.code)) return false;
  if (rule.enhanced !== undefined && !enhancedMatches(rule.enhanced, enhanced)) return false;
  // Rules made only of a text pattern do not override a success.
  if (reply.code >= 200 && reply.code < 400) return false;
  return textMatches(rule, reply.text);
}

/**
 * Classifies a failed reply. `extraRules` (from config) are tried before the built-in ones.
 * Whether the failure is permanent follows the reply code (5xx) — a category never turns a
 * 4xx into a bounce, because the receiver asked us to come back.
 */
export function classifyReply(reply: SmtpReply, extraRules: readonly BounceRule[] = []): Classification {
  const enhanced = reply.enhanced ?? ENHANCED.exec(reply.text)?.[0];
  const permanent = reply.code >= 500 || (reply.code === 0 && enhanced?.startsWith('5.') === true);
  for (const rule of [...extraRules, ...DEFAULT_BOUNCE_RULES]) {
    if (!ruleMatches(rule, reply, enhanced)) continue;
    // "User unknown" after DATA: the address was accepted at RCPT, so a filter speaks (ezweb and
    // others hide content filtering this way; sisimai calls it "filtered"). Not the address's fault.
    if (rule.category === 'unknown-user' && extraRules.indexOf(rule) < 0 && (reply.phase === 'data' || reply.phase === 'eom') && !UNMISTAKABLE_UNKNOWN_USER.test(reply.text) && !/^[45]\.1\.1$/.test(enhanced ?? '')) return { category: 'policy', permanent };
    // A security/policy status (X.7.x) with "user unknown" words is a block, not a bad address:
    // a 5.7.1 is never the recipient's fault.
    if ((rule.category === 'unknown-user' || rule.category === 'unknown-domain') && extraRules.indexOf(rule) < 0 && /^[45]\.7\./.test(enhanced ?? '')) return { category: 'policy', permanent };
    // An unknown address or domain refused at MAIL FROM is the sender's, never the recipient's.
    if ((rule.category === 'unknown-user' || rule.category === 'unknown-domain') && extraRules.indexOf(rule) < 0 && reply.phase === 'mail') return { category: 'policy', permanent };
    return { category: rule.category, permanent };
  }
  return { category: permanent ? 'hard' : 'soft', permanent };
}

/**
 * Whether a failed reply ends the recipient's delivery: the one place that says so. A 5xx (or a
 * 5.x.x with no reply) is final; a 4xx is final only when a backoff rule with action "bounce"
 * matched it (config: shaping.backoffRules), because otherwise the receiver asked us to come back.
 */
export function isFinal(c: Classification, backoff?: { action: string } | undefined): boolean {
  return c.permanent || backoff?.action === 'bounce';
}
