// The notify phase: delivery status notifications to the sender (RFC 3464), failures and the one
// delay notice per recipient. A DSN is queued like any mail (taken at birth or claimed).
import type { DeliveryContext } from './context.ts';
import type { DueRecipient } from '../queue/store.ts';
import { DEFAULT_CLASS } from '../message-class.ts';
import { composeDsn, isDeliveryReport, isNullSender, type DsnRecipient } from '../dsn/compose.ts';

/** No DSN for a null sender, nor about a message that is itself a report (no loops). */
export function wantsDsn(group: readonly DueRecipient[], original: Buffer): boolean {
  return !isNullSender(group[0]!.mailFrom) && !isDeliveryReport(original);
}

/** Queues one DSN for these recipients of the group's message; resolves once it is durable. */
export async function sendDsn(ctx: DeliveryContext, group: readonly DueRecipient[], original: Buffer, recipients: DsnRecipient[]): Promise<void> {
  const first = group[0]!;
  if (recipients.length === 0 || !wantsDsn(group, original)) return;
  const body = composeDsn({
    reportingMta: ctx.config.hostname,
    queueId: first.messageId,
    sender: first.mailFrom,
    arrivalAt: first.createdAt,
    now: ctx.clock(),
    recipients,
    original,
  });
  // Taken at birth like any fresh mail, or queued (the store tells the engine either way).
  const id = await ctx.store.enqueue({ mailFrom: '', recipients: [first.mailFrom], body, class: DEFAULT_CLASS });
  const action = recipients.some((r) => r.action === 'failed') ? 'failed' : 'delayed';
  ctx.metrics.dsnGenerated.inc({ action });
  ctx.logger.info({ event: 'dsn', action, queueId: id, originalQueueId: first.messageId, to: first.mailFrom, recipients: recipients.map((r) => r.recipient) }, 'DSN queued');
}

/** One delay notice per recipient, ever: those the ledger has not seen yet. Never throws. */
export async function sendDelayNotices(ctx: DeliveryContext, group: readonly DueRecipient[], original: Buffer, delayed: DsnRecipient[]): Promise<void> {
  if (!ctx.delayNotices || delayed.length === 0 || !wantsDsn(group, original)) return;
  const first = group[0]!;
  try {
    const fresh = new Set(ctx.delayNotices.claimFirst(first.messageId, delayed.map((d) => d.recipient)));
    await sendDsn(ctx, group, original, delayed.filter((d) => fresh.has(d.recipient)));
  } catch (err) {
    ctx.logger.error({ err, queueId: first.messageId }, 'delay notice could not be queued');
  }
}
