// The hand-off phase (docs/reputation.md "Hand-off"): while every source IP of this relay is
// quarantined (relay/handoff/decide.ts handoffActive), a held group goes to a peer relay of the
// pool by authenticated SMTP instead of waiting here. Our record follows the peer's reply: a 250
// (the peer's fsync) makes it final here, anything else keeps it queued here. A crash between the
// peer's 250 and our record offers it again (at least once, as for any delivery).
import type { DeliveryContext } from './context.ts';
import type { DueRecipient } from '../queue/store.ts';
import { attemptDelivery } from './attempt.ts';
import { headerOf, mapHead, outgoingOf } from './large-message.ts';
import { alreadyHandedOff, handoffMessage, HANDOFF_USER, pickPeer, settleHandoff } from '../handoff/decide.ts';
import { presentedSecret, readHandoffSecrets } from '../handoff/secret.ts';

/** A message handed off once already waits here this long before it is looked at again (like a quarantine hold). */
const HANDED_OFF_HOLD_MS = 15 * 60_000;

export async function handOffGroup(ctx: DeliveryContext, group: readonly DueRecipient[], turn: number): Promise<void> {
  const { config, clock, store, logger, metrics } = ctx;
  const first = group[0]!;
  const recipients = group.map((g) => g.recipient);
  const stored = store.open(first.messageId);
  if (!stored) return; // deleted by an administrator while claimed
  // A body stored in parts is streamed (relay/delivery/large-message.ts): the mark goes on its header section.
  const body = outgoingOf(stored);
  const keep = (reply: string, at: number, result: 'deferred' | 'held'): void => {
    store.recordAttempt(first.messageId, recipients, { state: 'queued', nextAttemptAt: at }, reply);
    metrics.handoffRecipients.inc({ result }, recipients.length);
  };
  // Came here by a hand-off: two quarantined relays must not pass it back and forth.
  if (alreadyHandedOff(headerOf(body))) {
    keep('451 4.4.0 held: source quarantined and the message was handed off to this relay already', clock() + HANDED_OFF_HOLD_MS, 'held');
    return;
  }
  const retryMs = config.handoff.retrySeconds * 1000;
  const secret = presentedSecret(await readHandoffSecrets(config.handoff.secretFile));
  if (!secret) {
    logger.error({ file: config.handoff.secretFile }, 'hand-off secret file missing or empty: quarantined mail waits here');
    keep('451 4.3.5 hand-off secret file missing or empty', clock() + retryMs, 'deferred');
    return;
  }
  // The peers in turn, starting at this hand-off's: what one peer did not take (down, restarting,
  // quarantined itself: 454) goes to the next at once, and only what no peer took waits
  // retrySeconds. An otp must not wait 10 s because the first peer tried was the one down.
  const peers = config.handoff.peers;
  let left = recipients;
  let accepted = 0;
  let failedReply: string | undefined;
  let peerName = '';
  let records: ReturnType<typeof settleHandoff> = [];
  for (let i = 0; i < peers.length && left.length > 0; i++) {
    if (i > 0) logger.warn({ event: 'handoff-next-peer', queueId: first.messageId, class: first.class, peer: peerName, recipients: left.length, reply: failedReply }, 'hand-off to a peer relay failed; trying the next peer');
    const peer = pickPeer(peers, turn + i);
    peerName = `${peer.host}:${peer.port}`;
    const outcomes = await attemptDelivery(
      {
        resolver: ctx.resolver,
        pool: ctx.pool,
        mtaSts: undefined,
        routes: [peer],
        routeTls: config.handoff.tls,
        auth: { user: HANDOFF_USER, pass: secret },
        mxPort: ctx.mxPort,
        ehloName: config.hostname,
        // Not from a source IP of ours: the peer is inside the pool, and ours are quarantined.
        egress: undefined,
        tlsCa: ctx.tlsCa,
        connectTimeoutMs: config.delivery.connectTimeoutMs,
        commandTimeoutMs: ctx.commandTimeoutMs,
        signal: ctx.stopping.signal,
        budget: { key: `handoff|${peerName}`, maxOpen: config.handoff.maxConnections, maxMessagesPerConnection: config.delivery.maxMessagesPerConnection },
      },
      first.domain,
      first.mailFrom,
      left,
      mapHead(body, (m) => handoffMessage(m, first.class, config.hostname, first.messageId)),
    );
    records = settleHandoff(outcomes, peerName, clock(), retryMs);
    let taken = 0;
    for (const r of records) {
      if (r.state !== 'delivered') continue;
      store.recordAttempt(first.messageId, [r.recipient], { state: 'delivered' }, r.reply);
      taken++;
    }
    if (taken > 0) metrics.handoffRecipients.inc({ result: 'accepted' }, taken);
    accepted += taken;
    left = records.filter((r) => r.state !== 'delivered').map((r) => r.recipient);
    failedReply = outcomes.find((o) => o.code < 200 || o.code >= 300)?.raw;
    if (ctx.stopping.signal.aborted) break;
  }
  // What no peer took waits here for retrySeconds (the last peer's reply says why).
  for (const r of records) if (r.state === 'queued') store.recordAttempt(first.messageId, [r.recipient], { state: 'queued', nextAttemptAt: r.nextAttemptAt }, r.reply);
  if (left.length > 0) metrics.handoffRecipients.inc({ result: 'deferred' }, left.length);
  const log = left.length === 0 ? logger.info.bind(logger) : logger.warn.bind(logger);
  log(
    { event: 'handed-off', queueId: first.messageId, class: first.class, peer: peerName, recipients: recipients.length, accepted, ...(left.length > 0 ? { reply: failedReply } : {}) },
    left.length === 0 ? 'quarantined source: mail handed off to a peer relay' : 'quarantined source: hand-off to a peer relay failed; kept here',
  );
}
