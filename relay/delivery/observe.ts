// The observe phase: the receiver's first refusal in an attempt tells the scheduler to back off
// (one reply, one action) per the reply rules (relay/bounce/backoff.ts); suspensions and throttles
// are counted and logged here.
import type { DeliveryContext } from './context.ts';
import type { RecipientOutcome } from './attempt.ts';
import type { BackoffRule } from '../config/schema.ts';
import { classifyReply, parseReplyLine } from '../bounce/classify.ts';
import { providerOfKey } from '../scheduler/providers.ts';

/** The rule the refusal matched, with that reply as received; undefined when none did or we are stopping. */
export function observeRefusal(ctx: DeliveryContext, outcomes: readonly RecipientOutcome[], sourceIp: string, shapedAs: string): { reply: string; rule: BackoffRule } | undefined {
  if (ctx.stopping.signal.aborted) return undefined;
  const refusal = outcomes.find((o) => o.mx !== undefined && (o.code < 200 || o.code >= 300));
  if (!refusal) return undefined;
  const enhanced = refusal.enhanced ?? parseReplyLine(refusal.raw).enhanced;
  // The backoff rules are keyed on the classifier's category of the reply, config rules included.
  const { category } = classifyReply({ code: refusal.code, enhanced, text: refusal.text, phase: refusal.phase }, ctx.config.delivery.bounceRules);
  const rule = ctx.shaper.observe(sourceIp, { code: refusal.code, enhanced, text: refusal.text, provider: shapedAs, category });
  if (!rule) return undefined;
  if (rule.action === 'suspend' || rule.action === 'throttle') {
    ctx.metrics.shapingRestrictions.inc({ source_ip: sourceIp, provider: providerOfKey(shapedAs), action: rule.action });
    ctx.logger.warn({ event: 'shaping', action: rule.action, sourceIp, provider: shapedAs, seconds: rule.durationSeconds, reply: refusal.raw }, `${sourceIp} → ${shapedAs}: ${rule.action} for ${rule.durationSeconds} s`);
  }
  return { reply: refusal.raw, rule };
}

/**
 * Refusals naming a blocklist or the IP's reputation, counted per recipient: several from one
 * provider within a window block this IP toward that provider only (relay/scheduler/reputation.ts).
 */
export function observeBlocklistSignals(ctx: DeliveryContext, outcomes: readonly RecipientOutcome[], sourceIp: string, shapedAs: string): void {
  if (ctx.stopping.signal.aborted) return;
  for (const o of outcomes) {
    if (o.mx === undefined || o.code < 400) continue;
    const blocked = ctx.shaper.noteRefusal(sourceIp, shapedAs, o.recipient, { code: o.code, enhanced: o.enhanced ?? parseReplyLine(o.raw).enhanced, text: o.text });
    if (!blocked) continue;
    ctx.metrics.shapingRestrictions.inc({ source_ip: sourceIp, provider: providerOfKey(shapedAs), action: 'suspend' });
    ctx.logger.warn({ event: 'ip-blocked', sourceIp, provider: shapedAs, until: new Date(blocked.until).toISOString(), reply: o.raw }, `${sourceIp} → ${shapedAs}: blocked (${blocked.reason})`);
  }
}
