// The send phase: sign the message and make one attempt for a group (one message, one destination
// domain) over the chosen source IP, within the scheduler's connection budget. Returns one outcome
// per recipient, never throws: a failure of our own (signing) reads as a 451 4.3.0 for each.
import type { DeliveryContext } from './context.ts';
import type { DueRecipient } from '../queue/store.ts';
import { isNullSender } from '../dsn/compose.ts';
import { attemptDelivery, type RecipientOutcome } from './attempt.ts';
import { routeFor } from './egress.ts';
import type { Budget } from './pool.ts';
import { STOPPED } from './smtp-client.ts';
import { DEFAULT_IP } from '../scheduler/shaper.ts';
import { withFeedbackId } from './feedback-id.ts';
import { headerOf, LargeMessage, mapHead, type Outgoing } from './large-message.ts';

export async function sendGroup(ctx: DeliveryContext, group: readonly DueRecipient[], original: Outgoing, sourceIp: string, shapedAs: string): Promise<RecipientOutcome[]> {
  const { config, shaper, stopping } = ctx;
  const first = group[0]!;
  const recipients = group.map((g) => g.recipient);
  const egress = sourceIp === DEFAULT_IP ? undefined : config.delivery.egressIps.find((e) => e.address === sourceIp);
  const route = routeFor(config.delivery.routes, first.domain);
  const limits = shaper.limits(sourceIp, shapedAs);
  const budget: Budget = {
    key: `${sourceIp}|${shapedAs}`,
    maxOpen: limits.maxConnections,
    maxMessagesPerConnection: limits.messagesPerConnection,
    beforeOpen: () => shaper.beforeOpen(sourceIp, shapedAs, stopping.signal),
  };
  try {
    // Feedback-ID (relay/delivery/feedback-id.ts) and the feedback side's per-recipient headers
    // (one-click unsubscribe) go in before signing, so DKIM covers them.
    // All three only add header fields at the top: a message stored in parts keeps its body in the
    // queue and only its header section changes (relay/delivery/large-message.ts).
    const withId = mapHead(original, (m) => withFeedbackId(config.domains, { message: m, class: first.class, user: () => ctx.store.get(first.messageId)?.authUser ?? undefined }));
    const prepared = ctx.feedback ? mapHead(withId, (m) => ctx.feedback!.prepare(m, group)) : withId;
    const body = prepared instanceof LargeMessage
      ? prepared.withHead(await ctx.signer.sign(prepared.head, first.mailFrom, prepared.body()))
      : await ctx.signer.sign(prepared, first.mailFrom);
    return await untilStopped(stopping.signal, recipients, attemptDelivery(
      {
        resolver: ctx.resolver,
        pool: ctx.pool,
        mtaSts: route ? undefined : ctx.mtaSts,
        routes: route ? [route] : undefined,
        mxPort: ctx.mxPort,
        ehloName: egress?.hostname ?? config.hostname,
        egress,
        tlsCa: ctx.tlsCa,
        connectTimeoutMs: config.delivery.connectTimeoutMs,
        commandTimeoutMs: ctx.commandTimeoutMs,
        signal: stopping.signal,
        allowPrivateMx: config.delivery.allowPrivateMx,
        budget,
      },
      first.domain,
      // The signed return-path token when configured (one recipient per group then), else the submitter's.
      isNullSender(first.mailFrom) ? '' : ctx.returnPath.mailFrom({ mailFrom: first.mailFrom, queueId: first.messageId, recipient: first.recipient, sourceIp: egress?.address, message: headerOf(original) }),
      recipients,
      body,
    ));
  } catch (err) {
    ctx.logger.error({ err, queueId: first.messageId }, 'delivery attempt failed locally');
    const text = `local error: ${(err as Error).message}`;
    return recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.3.0', text, raw: `451 4.3.0 ${text}`, phase: 'connect' as const }));
  }
}

/**
 * Sockets are cut on stop, but DNS lookups and policy fetches cannot be: an attempt still in one
 * when the relay stops is abandoned (its late result is ignored) and requeued.
 */
function untilStopped(signal: AbortSignal, recipients: string[], attempt: Promise<RecipientOutcome[]>): Promise<RecipientOutcome[]> {
  const stopped = () => recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.4.1', text: STOPPED, raw: `451 4.4.1 ${STOPPED}`, phase: 'connect' as const }));
  if (signal.aborted) {
    attempt.catch(() => {}); // a late failure of an abandoned attempt is of no interest
    return Promise.resolve(stopped());
  }
  // One abort listener per signal for every attempt in flight (stopHandlers), not one added and
  // removed per attempt, and one promise settled by whichever comes first instead of a race.
  return new Promise((resolve, reject) => {
    const handlers = stopHandlers(signal);
    const onStop = () => resolve(stopped());
    handlers.add(onStop);
    attempt.then(
      (outcomes) => {
        handlers.delete(onStop);
        resolve(outcomes);
      },
      (err: unknown) => {
        handlers.delete(onStop);
        reject(err);
      },
    );
  });
}

const handlersBySignal = new WeakMap<AbortSignal, Set<() => void>>();

function stopHandlers(signal: AbortSignal): Set<() => void> {
  let set = handlersBySignal.get(signal);
  if (!set) {
    const handlers = new Set<() => void>();
    signal.addEventListener('abort', () => {
      for (const h of handlers) h();
      handlers.clear();
    }, { once: true });
    handlersBySignal.set(signal, (set = handlers));
  }
  return set;
}
