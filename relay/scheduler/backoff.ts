// Adaptive backoff: a receiver's reply → what to do to that (source IP, provider). Rules are data;
// config rules are tried first (an "ignore" rule switches a built-in off). Pure.
import type { BackoffRule } from '../config/schema.ts';

export type { BackoffRule };

export interface ReplyFacts {
  code: number;
  enhanced?: string | undefined;
  text: string;
  provider: string;
}

// Sources: deliverability-facts.md (KumoMTA's published Yahoo and reputation rules); the rate-limit
// pause is ours (docs/shaping.md says why 5 minutes).
export const BUILTIN_BACKOFF_RULES: readonly BackoffRule[] = [
  // Yahoo: TS04 (and TS03, "permanently deferred") means stop sending from this IP for a while.
  { text: '\\[TS0[34]\\]', action: 'suspend', durationSeconds: 2 * 3600, messagesPerMinute: 1, maxConnections: 1 },
  // TS01/TS02: "temporarily deferred due to unexpected volume or user complaints".
  { text: '\\[TS0[12]\\]', action: 'throttle', durationSeconds: 90 * 60, messagesPerMinute: 1, maxConnections: 1 },
  // The sending IP's reputation: 1 message/min on 1 connection for 90 min.
  {
    text: 'poor reputation|low reputation|reputation of the sending|sender reputation|IP reputation|blocked using|listed (on|in|at) .*(spamhaus|barracuda|spamcop|sorbs|dnsbl)|Spamhaus|block ?list',
    action: 'throttle', durationSeconds: 90 * 60, messagesPerMinute: 1, maxConnections: 1,
  },
  // Rate limits: pause this IP toward the provider, then resume at the configured rate.
  { code: '4', enhanced: '4.7.28', action: 'suspend', durationSeconds: 300, messagesPerMinute: 1, maxConnections: 1 },
  {
    code: '4',
    text: 'rate limit|rate-limit|too many (messages|connections|concurrent|emails)|unusual rate|try again later.*volume|exceeded.*(quota|limit) for (sending|messages)|throttl|\\[TSS0[1-9]\\]',
    action: 'suspend', durationSeconds: 300, messagesPerMinute: 1, maxConnections: 1,
  },
];

function enhancedMatches(pattern: string, enhanced: string | undefined): boolean {
  if (enhanced === undefined) return false;
  return pattern.endsWith('.') ? enhanced.startsWith(pattern) : enhanced === pattern;
}

const compiled = new WeakMap<BackoffRule, RegExp>();
function regexOf(rule: BackoffRule): RegExp {
  let re = compiled.get(rule);
  if (!re) {
    re = new RegExp(rule.text!, 'i');
    compiled.set(rule, re);
  }
  return re;
}

export function ruleMatches(rule: BackoffRule, r: ReplyFacts): boolean {
  if (r.code >= 200 && r.code < 400) return false;
  if (rule.providers && !rule.providers.includes(r.provider)) return false;
  if (rule.code !== undefined && !String(r.code).startsWith(rule.code)) return false;
  if (rule.enhanced !== undefined && !enhancedMatches(rule.enhanced, r.enhanced)) return false;
  if (rule.text !== undefined && !regexOf(rule).test(r.text)) return false;
  return rule.code !== undefined || rule.enhanced !== undefined || rule.text !== undefined;
}

/** The first matching rule (config before built-in), or undefined; an "ignore" match is returned as such. */
export function matchBackoff(reply: ReplyFacts, configRules: readonly BackoffRule[]): BackoffRule | undefined {
  for (const rule of [...configRules, ...BUILTIN_BACKOFF_RULES]) if (ruleMatches(rule, reply)) return rule;
  return undefined;
}
