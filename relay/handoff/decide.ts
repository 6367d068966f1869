// Hand-off of a quarantined relay's mail to a healthy relay of the pool (docs/reputation.md
// "Hand-off"): when it applies, what the peer is sent, and what each peer reply means for our
// record. Pure; relay/delivery/handoff.ts does the I/O.
//
// Why a hand-off and not a shared queue: like Postfix's fallback relay (smtp_fallback_relay) and
// KumoMTA's routing of a queue through another egress path, the mail travels as an SMTP
// transaction, so the peer's 250 means its fsync and our record follows it (at least once). The
// peer delivers from its own IP, under its own caps, warm-up and blocks, exactly like mail
// submitted to it.
import type { HandoffConfig, ShapingConfig } from '../config/schema.ts';
import type { MessageClass } from '../message-class.ts';
import { quarantinedOutOfService } from '../scheduler/reputation.ts';

/** The user a peer authenticates as; its password is the pool's shared secret (handoff.secretFile). */
export const HANDOFF_USER = 'mailfleet-handoff';
/** Marks a handed-off message: a relay never hands it off again (no loops between quarantined relays). */
export const HANDOFF_HEADER = 'X-Mailfleet-Handoff';

/**
 * Whether this relay hands its mail off now: every source IP quarantined, the operator says
 * another relay of the pool is healthy (quarantineLeavesService), and there is a peer to go to
 * with the shared secret. Otherwise the mail waits here as before (never dropped).
 */
export function handoffActive(
  shaping: Pick<ShapingConfig, 'quarantine' | 'quarantineLeavesService'>,
  egressIps: readonly { address: string }[],
  unbound: string,
  handoff: Pick<HandoffConfig, 'peers' | 'secretFile'>,
): boolean {
  return handoff.peers.length > 0 && handoff.secretFile !== undefined && quarantinedOutOfService(shaping, egressIps, unbound);
}

/**
 * Whether this relay turns a hand-off away (454, the sender tries again): its own sources are
 * quarantined and it is leaving the Service. A peer list rendered before the operator saw this
 * relay's quarantine may still name it for a moment; accepting would only hold the mail here,
 * marked, for the quarantine's length.
 */
export function refusesHandoff(shaping: Pick<ShapingConfig, 'quarantine' | 'quarantineLeavesService'>, egressIps: readonly { address: string }[], unbound: string): boolean {
  return quarantinedOutOfService(shaping, egressIps, unbound);
}

/** The header section of a message (up to the first empty line). */
function headerSection(body: Buffer): string {
  const end = body.indexOf('\r\n\r\n');
  return body.subarray(0, end < 0 ? Math.min(body.length, 65_536) : end + 2).toString('latin1');
}

/** Whether the message came to this relay by a hand-off already (it then waits here instead). */
export function alreadyHandedOff(body: Buffer): boolean {
  return new RegExp(`^${HANDOFF_HEADER}[ \\t]*:`, 'im').test(headerSection(body));
}

/**
 * What the peer receives: the message as submitted (unsigned: the peer signs and adds the
 * Feedback-ID as for its own mail), its class again (the intake strips X-Mailfleet-Class, and
 * only an authenticated client may set it: the hand-off user is one), and the hand-off mark.
 */
export function handoffMessage(body: Buffer, cls: MessageClass, from: string, queueId: string): Buffer {
  const safeFrom = from.replace(/[^A-Za-z0-9.-]/g, '');
  return Buffer.concat([Buffer.from(`${HANDOFF_HEADER}: from=${safeFrom}; id=${queueId}\r\nX-Mailfleet-Class: ${cls}\r\n`, 'latin1'), body]);
}

/**
 * Whether one more hand-off of class `cls` may start: otp may use every hand-off connection, the
 * other classes leave one free for otp (like shaping.otpShare), so a bulk backlog being handed off
 * never makes an otp wait for a slot.
 */
export function handoffRoom(inFlight: number, maxConnections: number, cls: MessageClass): boolean {
  const limit = cls === 'otp' || maxConnections <= 1 ? maxConnections : maxConnections - 1;
  return inFlight < limit;
}

/** Round robin over the peers: one per hand-off, so a peer that fails is not always first. */
export function pickPeer<P>(peers: readonly P[], turn: number): P {
  return peers[turn % peers.length]!;
}

export interface PeerReply {
  recipient: string;
  code: number;
  raw: string;
}

export type HandoffRecord =
  | { recipient: string; state: 'delivered'; reply: string }
  | { recipient: string; state: 'queued'; nextAttemptAt: number; reply: string };

/**
 * Our record of each recipient after the peer's reply. A 2xx is final here (the peer has it on
 * disk). Anything else, 5xx included, keeps the recipient queued here: a peer's refusal says
 * something about the peer (credentials, its limits, a restart), not about the recipient, and
 * must never bounce mail; the message's own maxAge still ends it with a DSN as for any mail.
 */
export function settleHandoff(replies: readonly PeerReply[], peer: string, now: number, retryMs: number): HandoffRecord[] {
  return replies.map((r) =>
    r.code >= 200 && r.code < 300
      ? { recipient: r.recipient, state: 'delivered' as const, reply: `250 2.0.0 handed off to ${peer} (quarantined source): ${r.raw}`.slice(0, 500) }
      : { recipient: r.recipient, state: 'queued' as const, nextAttemptAt: now + retryMs, reply: `451 4.4.0 hand-off to ${peer} failed: ${r.raw}`.slice(0, 500) },
  );
}
