// The record phase of one attempt: what settleAttempt (relay/delivery/settle.ts) decided goes to
// the metrics, the stats endpoint, the log (one line per recipient), and the queue.
import type { DeliveryContext } from './context.ts';
import type { DueRecipient } from '../queue/store.ts';
import { providerOf } from './provider.ts';
import { providerOfKey } from '../scheduler/providers.ts';
import { sendingDomainLabel } from '../metrics.ts';
import { counterChildren, histogramChildren } from '../metric-children.ts';
import type { OutcomeRecord, SettledRecipient } from './settle.ts';
import type { AttemptReport } from '../feedback/feedback.ts';
import { countFieldsFor, sendingDomainOf } from '../stats/categories.ts';

/** The provider label of metrics and events: "smarthost" through a configured route, else the MX rollup. */
function providerLabel(ctx: DeliveryContext, mx: string | undefined, viaRoute: boolean): string {
  return viaRoute ? 'smarthost' : providerOf(mx, ctx.customProviders);
}

/** The sending domain of an envelope sender, as the metric label and as the stats counters name it. */
interface SendingDomain {
  label: string;
  domain: string;
}

/**
 * Both worked out once per envelope domain, not per recipient (sendingDomainOf walks every
 * configured domain), for the config.domains they came from: a live reload brings a new array.
 */
const sendingDomainMemo = new WeakMap<object, Map<string, SendingDomain>>();
const SENDING_DOMAIN_MEMO_MAX = 10_000;

function sendingDomain(ctx: DeliveryContext, mailFrom: string): SendingDomain {
  const domains = ctx.config.domains;
  let memo = sendingDomainMemo.get(domains);
  if (!memo) sendingDomainMemo.set(domains, (memo = new Map()));
  const at = mailFrom.lastIndexOf('@');
  const key = at < 0 ? '\0' : mailFrom.slice(at + 1);
  let d = memo.get(key);
  if (!d) {
    if (memo.size >= SENDING_DOMAIN_MEMO_MAX) memo.clear();
    d = { label: sendingDomainLabel(mailFrom, ctx.sendingDomains), domain: sendingDomainOf(mailFrom, domains) };
    memo.set(key, d);
  }
  return d;
}

// The label names of the per-recipient metrics, in their order (relay/metrics.ts).
const ATTEMPTS = ['result', 'source_ip', 'provider', 'category'] as const;
const DOMAIN_ATTEMPTS = ['sending_domain', 'result', 'category'] as const;
const PROVIDER = ['provider'] as const;
const CLASS = ['class'] as const;

/** Metrics, stats and a log line per recipient. `viaRoute`: sent through a configured smarthost. */
export function reportOutcomes(ctx: DeliveryContext, settled: readonly SettledRecipient[], at: { sourceIp: string; shapedAs: string; viaRoute: boolean; now: number }): void {
  const { metrics, stats, logger } = ctx;
  const shapedAs = providerOfKey(at.shapedAs);
  for (const { reply: o, due, outcome, category: cat } of settled) {
    const provider = providerLabel(ctx, o.mx, at.viaRoute);
    const sending = sendingDomain(ctx, due.mailFrom);
    counterChildren(metrics.deliveryAttempts, ATTEMPTS).of(outcome.kind, at.sourceIp, provider, cat ?? 'none').inc();
    counterChildren(metrics.deliveryDomainAttempts, DOMAIN_ATTEMPTS).of(sending.label, outcome.kind, cat ?? 'none').inc();
    stats.record(at.sourceIp, shapedAs, outcome.kind, cat);
    ctx.counters?.add({ ip: at.sourceIp, provider: shapedAs, domain: sending.domain, class: due.class }, countFieldsFor(outcome.kind, cat));
    if (outcome.kind === 'delivered') {
      const seconds = Math.max(0, (at.now - due.createdAt) / 1000);
      histogramChildren(metrics.deliveryLatency, PROVIDER).of(provider).observe(seconds);
      histogramChildren(metrics.classLatency, CLASS).of(due.class).observe(seconds);
    }
    // Nothing built for a line the configured level drops (log.level warn drops 'delivered').
    const level = outcome.kind === 'delivered' ? 'info' : 'warn';
    if (!logger.isLevelEnabled(level)) continue;
    // Built whole, then one optional field set: a spread into the literal copied it once more.
    const event: Record<string, unknown> = {
      event: outcome.kind,
      queueId: due.messageId,
      recipient: o.recipient,
      sourceIp: at.sourceIp,
      mx: o.mx,
      reply: o.raw,
      category: cat,
      attempts: due.attempts + 1,
      tls: o.tls,
      tlsVerified: o.tlsVerified,
      mtaSts: o.mtaSts,
    };
    if (outcome.kind === 'deferred') event.nextAttemptAt = new Date(outcome.at).toISOString();
    logger[level](event, outcome.kind);
  }
}

/**
 * The attempt as the feedback side records it (events, soft-bounce counting, relay/feedback).
 * `failuresPostponed`: the DSN could not be queued, so bounced and expired recipients stay deferred.
 */
export function attemptReport(ctx: DeliveryContext, { reply: o, due, outcome, category }: SettledRecipient, sourceIp: string, viaRoute: boolean, failuresPostponed: boolean): AttemptReport {
  return {
    due,
    kind: failuresPostponed && (outcome.kind === 'bounced' || outcome.kind === 'expired') ? 'deferred' : outcome.kind,
    reply: o.raw,
    status: o.enhanced,
    category,
    ip: sourceIp,
    provider: providerLabel(ctx, o.mx, viaRoute),
  };
}

// The final states as recordAttempt takes them: read there, never kept or changed, so shared.
const DELIVERED_STATE = { state: 'delivered' } as const;
const BOUNCED_STATE = { state: 'bounced' } as const;

/** Writes the outcomes to the queue (batched there per event-loop turn). */
export function recordOutcomes(ctx: DeliveryContext, messageId: string, records: readonly OutcomeRecord[]): void {
  for (const r of records) {
    const outcome = r.outcome;
    ctx.store.recordAttempt(
      messageId,
      r.recipients,
      outcome.kind === 'deferred' ? { state: 'queued', nextAttemptAt: outcome.at } : outcome.kind === 'delivered' ? DELIVERED_STATE : BOUNCED_STATE,
      r.reply,
    );
  }
}

/** After an unexpected local error, puts claimed recipients back (a claim must never be left behind). */
export function releaseClaims(ctx: DeliveryContext, group: readonly DueRecipient[], err: unknown, retryAt: number): void {
  const { store, logger } = ctx;
  try {
    const reply = `451 4.3.0 local error: ${(err as Error).message}`.slice(0, 500);
    const claimed = new Set(group.map((g) => g.recipient));
    // Only those still claimed: some outcomes may have been recorded before the error.
    const stuck = (store.get(group[0]!.messageId)?.recipients ?? []).filter((r) => r.state === 'inflight' && claimed.has(r.recipient)).map((r) => r.recipient);
    if (stuck.length > 0) store.recordAttempt(group[0]!.messageId, stuck, { state: 'queued', nextAttemptAt: retryAt }, reply);
  } catch (again) {
    // The store itself is failing; the claims are released when the relay restarts.
    logger.error({ err: again, queueId: group[0]!.messageId }, 'could not release claimed recipients');
  }
}
