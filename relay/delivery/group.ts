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
import { routeFor } from './egress.ts';
import { histogramChildren } from '../metric-children.ts';
import { releaseBody } from './body-release.ts';
import { sendGroup } from './send.ts';
import { observeRefusal, observeBlocklistSignals } from './observe.ts';
import { postponeFailures, settleAttempt } from './settle.ts';
import { attemptReports, recordOutcomes, reportOutcomes } from './record.ts';
import { sendDelayNotices, sendDsn } from './notify.ts';

/** Wait after a failure of our own (store, signing) before trying again. */
export const LOCAL_RETRY_MS = 60_000;

export async function deliverGroup(ctx: DeliveryContext, claimed: DueRecipient[], sourceIp: string, shapedAs: string): Promise<void> {
  const { config, clock, metrics } = ctx;
  // Suppressed recipients are finished here, never attempted (relay/feedback/feedback.ts).
  // Logged like every other final outcome (record.ts): `kubectl logs` of the relay otherwise shows
  // the message queued and then nothing, and "why did it never arrive?" starts there.
  const group = ctx.feedback ? ctx.feedback.screen(claimed, (rs, reply) => {
    ctx.store.recordAttempt(claimed[0]!.messageId, rs, { state: 'suppressed' }, reply);
    for (const r of rs) ctx.logger.info({ event: 'suppressed', queueId: claimed[0]!.messageId, recipient: r, sourceIp, reply }, 'suppressed');
    ctx.counters?.add({ ip: sourceIp, provider: providerOfKey(shapedAs), domain: sendingDomainOf(claimed[0]!.mailFrom, config.domains), class: claimed[0]!.class }, ['suppressed'], rs.length);
  }) : claimed;
  if (group.length === 0) return;
  const first = group[0]!;
  const room = ctx.bodyMemory.admit(() => ctx.store.bodySize(first.messageId));
  if (room) await room;
  const stored = ctx.store.open(first.messageId);
  if (!stored) return; // deleted by an administrator while claimed
  // A body stored in parts is streamed: its header section is held, one part at a time of the rest.
  const original = outgoingOf(stored);
  const held = heldBytesOf(original, PART_BYTES);
  ctx.bodyMemory.hold(held);
  try {
    await attemptGroup(ctx, group, original, sourceIp, shapedAs);
  } finally {
    ctx.bodyMemory.release(held);
    // Done with the body: its memory goes now, not at the next full collection (body-release.ts).
    // Not while stopping: an attempt cut short by the shutdown may still be writing it.
    if (!ctx.stopping.signal.aborted) releaseBody(original);
  }
}

const CLASS = ['class'] as const;

async function attemptGroup(ctx: DeliveryContext, group: DueRecipient[], original: Outgoing, sourceIp: string, shapedAs: string): Promise<void> {
  const { config, clock, metrics } = ctx;
  const first = group[0]!;
  const startedAt = clock();
  const queueAge = histogramChildren(metrics.queueAge, CLASS);
  for (const g of group) queueAge.of(g.class).observe(Math.max(0, (startedAt - g.createdAt) / 1000));

  const outcomes = await sendGroup(ctx, group, original, sourceIp, shapedAs);
  const now = clock();
  const backoff = observeRefusal(ctx, outcomes, sourceIp, shapedAs);
  observeBlocklistSignals(ctx, outcomes, sourceIp, shapedAs);
  const settled = settleAttempt({
    group, outcomes, now, retry: config.retry, bounceRules: config.delivery.bounceRules,
    shuttingDown: ctx.stopping.signal.aborted, backoff, delayNoticeMs: ctx.delayNoticeMs,
  });
  // What the receiver accepted is recorded first, before logs, counters and DSNs: it is in this
  // turn's outcome batch even if composing a DSN below waits (bench/crash-duplicates.ts).
  const accepted = settled.records.filter((r) => r.outcome.kind === 'delivered');
  if (accepted.length > 0) recordOutcomes(ctx, first.messageId, accepted);
  const viaRoute = routeFor(config.delivery.routes, first.domain) !== undefined;
  reportOutcomes(ctx, settled.recipients, { sourceIp, shapedAs, viaRoute, now });

  // The DSN is made durable before the bounce is recorded: a crash in between repeats the
  // attempt (and perhaps the DSN) rather than losing the notice.
  let records = accepted.length > 0 ? settled.records.filter((r) => r.outcome.kind !== 'delivered') : settled.records;
  let failuresPostponed = false;
  try {
    // Awaited only when there is one to send (most attempts fail nobody).
    if (settled.failed.length > 0) await sendDsn(ctx, group, headerOf(original), settled.failed);
  } catch (err) {
    ctx.logger.error({ err, queueId: first.messageId }, 'DSN could not be queued; bounce postponed');
    records = postponeFailures(records, now + LOCAL_RETRY_MS);
    failuresPostponed = true;
  }
  recordOutcomes(ctx, first.messageId, records);
  if (ctx.feedback) for (const r of attemptReports(ctx, settled.recipients, { sourceIp, viaRoute, failuresPostponed })) ctx.feedback.attempted(r);
  if (settled.delayed.length > 0) await sendDelayNotices(ctx, group, headerOf(original), settled.delayed);
}
