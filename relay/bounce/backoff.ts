// Adaptive backoff: a receiver's refusal → what to do to that (source IP, provider). Keyed on the
// classifier's categories (classify.ts), so what reads as a reputation or a rate-limit reply is
// decided in one place: reputation → throttle, rate-limited → suspend. Rules are data; config
// rules (shaping.backoffRules) are tried first and may also match on code, enhanced code, text
// and provider (an "ignore" rule switches a built-in off). Pure.
import type { BackoffRule } from '../config/schema.ts';
import { classifyReply, enhancedMatches, textMatches, type BounceCategory, type BounceRule, type SmtpPhase } from './classify.ts';

export type { BackoffRule };

export interface ReplyFacts {
  code: number;
  enhanced?: string | undefined;
  text: string;
  /** The provider (rollup name) the reply came from, for rules with a provider filter. */
  provider: string;
  /** The classifier's category; classified here (as an RCPT reply, built-in rules) when not given. */
  category?: BounceCategory | undefined;
  phase?: SmtpPhase | undefined;
}

// Sources: deliverability-facts.md (KumoMTA's published Yahoo and reputation rules); the rate-limit
// pause is ours (docs/shaping.md says why 5 minutes).
export const BUILTIN_BACKOFF_RULES: readonly BackoffRule[] = [
  // Yahoo: TS04 (and TS03, "permanently deferred") means stop sending from this IP for a while.
  { category: 'reputation', text: '\\[TS0[34]\\]', action: 'suspend', durationSeconds: 2 * 3600, messagesPerMinute: 1, maxConnections: 1 },
  // The sending IP's reputation (Yahoo's TS01/TS02 "temporarily deferred" included): 1 message/min
  // on 1 connection for 90 min.
  { category: 'reputation', action: 'throttle', durationSeconds: 90 * 60, messagesPerMinute: 1, maxConnections: 1 },
  // Rate limits: pause this IP toward the provider, then resume at the configured rate.
  { category: 'rate-limited', code: '4', action: 'suspend', durationSeconds: 300, messagesPerMinute: 1, maxConnections: 1 },
];

function ruleMatches(rule: BackoffRule, r: ReplyFacts & { category: BounceCategory }): boolean {
  if (r.code >= 200 && r.code < 400) return false;
  if (rule.providers && !rule.providers.includes(r.provider)) return false;
  if (rule.category !== undefined && rule.category !== r.category) return false;
  if (rule.code !== undefined && !String(r.code).startsWith(rule.code)) return false;
  if (rule.enhanced !== undefined && !enhancedMatches(rule.enhanced, r.enhanced)) return false;
  if (!textMatches(rule, r.text)) return false;
  return rule.category !== undefined || rule.code !== undefined || rule.enhanced !== undefined || rule.text !== undefined;
}

/**
 * The first matching rule (config before built-in), or undefined; an "ignore" match is returned as
 * such. `bounceRules`: the config's classification rules, when the reply comes without a category.
 */
export function matchBackoff(reply: ReplyFacts, configRules: readonly BackoffRule[], bounceRules: readonly BounceRule[] = []): BackoffRule | undefined {
  const category = reply.category ?? classifyReply({ code: reply.code, enhanced: reply.enhanced, text: reply.text, phase: reply.phase ?? 'rcpt' }, bounceRules).category;
  const r = { ...reply, category };
  for (const rule of configRules) if (ruleMatches(rule, r)) return rule;
  for (const rule of BUILTIN_BACKOFF_RULES) if (ruleMatches(rule, r)) return rule;
  return undefined;
}
