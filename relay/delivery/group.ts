// One group's way through the outbound phases, in order: screen (suppressed recipients finish
// here, relay/feedback) → send (sign + attempt, send.ts) → observe (backoff, observe.ts) → settle
// (pure outcome step, settle.ts) → report (metrics, stats, log, record.ts) → notify the sender of
// failures (notify.ts) → record in the queue, and the attempt as events (relay/feedback) → delay
// notices.
import { sendingDomainOf } from '../stats/categories.ts';
import { providerOfKey } from '../scheduler/providers.ts';
import type { DeliveryContext } from './context.ts';
import { PART_BYTES, type DueRecipient } from '../queue/store.ts';
import { headerOf, heldBytesOf, outgoingOf, type Outgoing } from './large-message.ts';
import { routeOf } from './egress.ts';
import type { RecipientOutcome } from './attempt.ts';
import { histogramChildren } from '../metric-children.ts';
import { releaseBody } from './body-release.ts';
import { sendGroup } from './send.ts';
import { observeRefusal, observeBlocklistSignals } from './observe.ts';
import { postponeFailures, settleAttempt, type OutcomeRecord, type Settled } from './settle.ts';
import { attemptReport, recordOutcomes, reportOutcomes } from './record.ts';
import { sendDelayNotices, sendDsn } from './notify.ts';

/** Wait after a failure of our own (store, signing) before trying again. */
export const LOCAL_RETRY_MS = 60_000;

export async function deliverGroup(ctx: DeliveryContext, claimed: DueRecipient[], sourceIp: string, shapedAs: string): Promise<void> {
  const { config, clock, metrics } = ctx;
  const group = ctx.feedback ? ctx.feedback.screen(claimed, suppressedOf(ctx, claimed, sourceIp, shapedAs)) : claimed;
  if (group.length === 0) return;
  const first = group[0]!;
  // The size is asked (a closure made) only when the bodies held reach the limit.
  if (!ctx.bodyMemory.free()) {
    const room = ctx.bodyMemory.admit(() => ctx.store.bodySize(first.messageId));
    if (room) await room;
  }
  const stored = ctx.store.open(first.messageId);
  if (!stored) return; // deleted by an administrator while claimed
  // A body stored in parts is streamed: its header section is held, one part at a time of the rest.
  const original = outgoingOf(stored);
  const held = heldBytesOf(original, PART_BYTES);
  ctx.bodyMemory.hold(held);
  try {
    // One async frame for the attempt (the phases after the send are synchronous but for the
    // notices), and the route looked up once for the send and the report.
    const route = routeOf(config.delivery.routes, first.domain);
    const startedAt = clock();
    const queueAge = histogramChildren(metrics.queueAge, CLASS);
    for (const g of group) queueAge.of(g.class).observe(Math.max(0, (startedAt - g.createdAt) / 1000));
    const outcomes = await sendGroup(ctx, group, original, sourceIp, shapedAs, route);
    const notices = afterSend(ctx, group, original, outcomes, sourceIp, shapedAs, route !== undefined);
    if (notices) await notices;
  } finally {
    ctx.bodyMemory.release(held);
    // Done with the body: its memory goes now, not at the next full collection (body-release.ts).
    // Not while stopping: an attempt cut short by the shutdown may still be writing it.
    if (!ctx.stopping.signal.aborted) releaseBody(original);
  }
}

/**
 * Suppressed recipients are finished here, never attempted (relay/feedback/feedback.ts).
 * Logged like every other final outcome (record.ts): `kubectl logs` of the relay otherwise shows
 * the message queued and then nothing, and "why did it never arrive?" starts there. Made outside
 * deliverGroup, so that its variables are not kept in a context for the callback.
 */
function suppressedOf(ctx: DeliveryContext, claimed: DueRecipient[], sourceIp: string, shapedAs: string): (recipients: string[], reply: string) => void {
  return (rs, reply) => {
    ctx.store.recordAttempt(claimed[0]!.messageId, rs, { state: 'suppressed' }, reply);
    for (const r of rs) ctx.logger.info({ event: 'suppressed', queueId: claimed[0]!.messageId, recipient: r, sourceIp, reply }, 'suppressed');
    ctx.counters?.add({ ip: sourceIp, provider: providerOfKey(shapedAs), domain: sendingDomainOf(claimed[0]!.mailFrom, ctx.config.domains), class: claimed[0]!.class }, ['suppressed'], rs.length);
  };
}

const CLASS = ['class'] as const;
const NONE: readonly OutcomeRecord[] = [];

/**
 * Observe, settle, report and record an attempt's outcomes. Returns a promise only when a DSN or
 * a delay notice is to be queued (most attempts notify nobody: no promise, no await).
 */
function afterSend(ctx: DeliveryContext, group: DueRecipient[], original: Outgoing, outcomes: RecipientOutcome[], sourceIp: string, shapedAs: string, viaRoute: boolean): Promise<void> | undefined {
  const { config, clock } = ctx;
  const first = group[0]!;
  const now = clock();
  const backoff = observeRefusal(ctx, outcomes, sourceIp, shapedAs);
  observeBlocklistSignals(ctx, outcomes, sourceIp, shapedAs);
  const settled = settleAttempt({
    group, outcomes, now, retry: config.retry, bounceRules: config.delivery.bounceRules,
    shuttingDown: ctx.stopping.signal.aborted, backoff, delayNoticeMs: ctx.delayNoticeMs,
  });
  // What the receiver accepted is recorded first, before logs, counters and DSNs: it is in this
  // turn's outcome batch even if composing a DSN below waits (bench/crash-duplicates.ts).
  // One record (one recipient, or all with the same reply): split without filtering.
  const all = settled.records;
  const one = all.length === 1 ? all[0]! : undefined;
  const accepted = one ? (one.outcome.kind === 'delivered' ? all : NONE) : all.filter((r) => r.outcome.kind === 'delivered');
  if (accepted.length > 0) recordOutcomes(ctx, first.messageId, accepted);
  reportOutcomes(ctx, settled.recipients, { sourceIp, shapedAs, viaRoute, now });

  const rest = accepted.length === 0 ? all : one ? NONE : all.filter((r) => r.outcome.kind !== 'delivered');
  // Awaited only when there is one to send (most attempts fail nobody).
  if (settled.failed.length > 0) return withDsn(ctx, group, original, settled, rest, now, sourceIp, viaRoute);
  return finish(ctx, group, original, settled, rest, false, sourceIp, viaRoute);
}

/**
 * The DSN is made durable before the bounce is recorded: a crash in between repeats the attempt
 * (and perhaps the DSN) rather than losing the notice.
 */
async function withDsn(ctx: DeliveryContext, group: DueRecipient[], original: Outgoing, settled: Settled, rest: readonly OutcomeRecord[], now: number, sourceIp: string, viaRoute: boolean): Promise<void> {
  let records = rest;
  let failuresPostponed = false;
  try {
    await sendDsn(ctx, group, headerOf(original), settled.failed);
  } catch (err) {
    ctx.logger.error({ err, queueId: group[0]!.messageId }, 'DSN could not be queued; bounce postponed');
    records = postponeFailures(records, now + LOCAL_RETRY_MS);
    failuresPostponed = true;
  }
  await finish(ctx, group, original, settled, records, failuresPostponed, sourceIp, viaRoute);
}

/** The rest of the outcomes to the queue, the attempt to the feedback side; then the delay notices, if any (a promise only then). */
function finish(ctx: DeliveryContext, group: DueRecipient[], original: Outgoing, settled: Settled, records: readonly OutcomeRecord[], failuresPostponed: boolean, sourceIp: string, viaRoute: boolean): Promise<void> | undefined {
  recordOutcomes(ctx, group[0]!.messageId, records);
  // Each recipient's report as it is made (no list of them, no options object per attempt).
  if (ctx.feedback) for (const r of settled.recipients) ctx.feedback.attempted(attemptReport(ctx, r, sourceIp, viaRoute, failuresPostponed));
  if (settled.delayed.length > 0) return sendDelayNotices(ctx, group, headerOf(original), settled.delayed);
  return undefined;
}
