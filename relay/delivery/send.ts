// The send phase: sign the message and make one attempt for a group (one message, one destination
// domain) over the chosen source IP, within the scheduler's connection budget. Returns one outcome
// per recipient, never throws: a failure of our own (signing) reads as a 451 4.3.0 for each.
import net from 'node:net';
import type { DeliveryContext } from './context.ts';
import type { DueRecipient } from '../queue/store.ts';
import { isNullSender } from '../dsn/compose.ts';
import { attemptDelivery, type AttemptContext, type RecipientOutcome } from './attempt.ts';
import type { Budget } from './pool.ts';
import { STOPPED } from './smtp-client.ts';
import { DEFAULT_IP } from '../scheduler/shaper.ts';
import { anyFeedbackId, withFeedbackId } from './feedback-id.ts';
import type { Limits } from '../scheduler/limits.ts';
import { headerOf, LargeMessage, mapHead, type Outgoing } from './large-message.ts';

/** A configured route (config.delivery.routes). */
type Route = DeliveryContext['config']['delivery']['routes'][number];

/**
 * What every attempt over one path shares (source IP, provider, route): built once per path and
 * config, not per message. Kept per limits object: the shaper keeps one per (IP, provider) until
 * the config or the path's throttle changes, so new limits bring a new budget.
 */
interface PathParts {
  ctx: DeliveryContext;
  delivery: DeliveryContext['config']['delivery'];
  hostname: string;
  sourceIp: string;
  shapedAs: string;
  attempt: AttemptContext;
  /**
   * The attempt waits on nothing a stop does not cut: a route to IP addresses needs no lookup, and
   * its socket, a connection being opened and a wait for one all end when the relay stops (the
   * socket is destroyed, opening fails at once, a slot frees as the others end). Its outcome is
   * then read after it, without a race per attempt (untilStopped).
   */
  cutByStop: boolean;
}

const pathMemo = new WeakMap<Limits, Map<object | undefined, PathParts>>();

function pathPartsOf(ctx: DeliveryContext, sourceIp: string, shapedAs: string, route: Route | undefined): PathParts {
  const { config, shaper, stopping } = ctx;
  const limits = shaper.limits(sourceIp, shapedAs);
  let byRoute = pathMemo.get(limits);
  if (!byRoute) pathMemo.set(limits, (byRoute = new Map()));
  const p = byRoute.get(route);
  if (p && p.ctx === ctx && p.delivery === config.delivery && p.hostname === config.hostname && p.sourceIp === sourceIp && p.shapedAs === shapedAs) return p;
  const egress = sourceIp === DEFAULT_IP ? undefined : config.delivery.egressIps.find((e) => e.address === sourceIp);
  const budget: Budget = {
    key: `${sourceIp}|${shapedAs}`,
    maxOpen: limits.maxConnections,
    maxMessagesPerConnection: limits.messagesPerConnection,
    beforeOpen: () => shaper.beforeOpen(sourceIp, shapedAs, stopping.signal),
  };
  const attempt: AttemptContext = {
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
  };
  const parts: PathParts = { ctx, delivery: config.delivery, hostname: config.hostname, sourceIp, shapedAs, attempt, cutByStop: route !== undefined && net.isIP(route.host) !== 0 };
  byRoute.set(route, parts);
  return parts;
}

/** `route`: the configured route of the group's domain (routeOf), undefined for MX delivery. */
export async function sendGroup(ctx: DeliveryContext, group: readonly DueRecipient[], original: Outgoing, sourceIp: string, shapedAs: string, route: Route | undefined): Promise<RecipientOutcome[]> {
  const { config, stopping } = ctx;
  const first = group[0]!;
  const recipients = group.length === 1 ? [first.recipient] : group.map((g) => g.recipient);
  const path = pathPartsOf(ctx, sourceIp, shapedAs, route);
  const attempt = path.attempt;
  try {
    // Feedback-ID (relay/delivery/feedback-id.ts) and the feedback side's per-recipient headers
    // (one-click unsubscribe) go in before signing, so DKIM covers them.
    // All three only add header fields at the top: a message stored in parts keeps its body in the
    // queue and only its header section changes (relay/delivery/large-message.ts). Each step is
    // skipped without a closure when it has nothing to do (most relays: no Feedback-ID, no key).
    const withId = anyFeedbackId(config.domains)
      ? mapHead(original, (m) => withFeedbackId(config.domains, { message: m, class: first.class, user: () => ctx.store.get(first.messageId)?.authUser ?? undefined }))
      : original;
    const feedback = ctx.feedback;
    const prepared = !feedback ? withId : withId instanceof LargeMessage ? mapHead(withId, (m) => feedback.prepare(m, group)) : feedback.prepare(withId, group);
    const body = !ctx.signer.signs ? prepared
      : prepared instanceof LargeMessage ? prepared.withHead(await ctx.signer.sign(prepared.head, first.mailFrom, prepared.body()))
      : await ctx.signer.sign(prepared, first.mailFrom);
    // The signed return-path token when configured (one recipient per group then), else the submitter's.
    const mailFrom = isNullSender(first.mailFrom) ? ''
      : ctx.returnPath.perRecipient ? ctx.returnPath.mailFrom({ mailFrom: first.mailFrom, queueId: first.messageId, recipient: first.recipient, sourceIp: attempt.egress?.address, message: headerOf(original) })
      : first.mailFrom;
    if (!path.cutByStop) return await untilStopped(stopping.signal, recipients, attemptDelivery(attempt, first.domain, mailFrom, recipients, body));
    // What untilStopped gives, without its race: an attempt the stop overtook reads as stopped. Its
    // continuation runs in the same microtask checkpoint as the attempt's end, so a stop seen here
    // came before that end.
    if (stopping.signal.aborted) return stoppedOutcomes(recipients);
    try {
      const outcomes = await attemptDelivery(attempt, first.domain, mailFrom, recipients, body);
      return stopping.signal.aborted ? stoppedOutcomes(recipients) : outcomes;
    } catch (err) {
      if (stopping.signal.aborted) return stoppedOutcomes(recipients); // a late failure of an abandoned attempt is of no interest
      throw err;
    }
  } catch (err) {
    ctx.logger.error({ err, queueId: first.messageId }, 'delivery attempt failed locally');
    const text = `local error: ${(err as Error).message}`;
    return recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.3.0', text, raw: `451 4.3.0 ${text}`, phase: 'connect' as const }));
  }
}

/** Every recipient of an attempt the relay's stop cut short or abandoned: requeued. */
function stoppedOutcomes(recipients: readonly string[]): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, code: 451, enhanced: '4.4.1', text: STOPPED, raw: `451 4.4.1 ${STOPPED}`, phase: 'connect' as const }));
}

/**
 * Sockets are cut on stop, but DNS lookups and policy fetches cannot be: an attempt still in one
 * when the relay stops is abandoned (its late result is ignored) and requeued.
 */
function untilStopped(signal: AbortSignal, recipients: string[], attempt: Promise<RecipientOutcome[]>): Promise<RecipientOutcome[]> {
  const stopped = () => stoppedOutcomes(recipients);
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
