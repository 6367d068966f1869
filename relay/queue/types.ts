// The queue's vocabulary: what goes in, what comes out, and the hand-over of fresh mail to the
// delivery engine. Shared by the store's parts (commit path, claims, admin reads) and its callers.
import type { MessageClass } from '../message-class.ts';
import type { BodyInput } from './body-parts.ts';

export type { MessageClass };
// suppressed: finished without an attempt, the recipient is on the suppression list (relay/suppression).
export type RecipientState = 'queued' | 'inflight' | 'delivered' | 'bounced' | 'suppressed';

export interface NewMessage {
  /** Assigned by the caller when it must know the id before the commit (the Received header). */
  id?: string;
  mailFrom: string;
  recipients: string[];
  /** In memory, or spooled by the intake (relay/queue/body-parts.ts); past 128 KiB stored in parts. */
  body: BodyInput;
  clientAddress?: string;
  authUser?: string;
  listener?: string;
  messageId?: string;
  class?: MessageClass;
  /** First delivery attempt not before this time (intake smoothing); default: at once. */
  notBefore?: number;
}

export interface MessageSummary {
  id: string;
  createdAt: number;
  mailFrom: string;
  size: number;
  class: MessageClass;
  messageId: string | null;
  authUser: string | null;
  clientAddress: string | null;
  recipients: RecipientInfo[];
}

export interface RecipientInfo {
  recipient: string;
  domain: string;
  state: RecipientState;
  attempts: number;
  nextAttemptAt: number;
  lastReply: string | null;
}

export interface DueRecipient {
  messageId: string;
  recipient: string;
  domain: string;
  attempts: number;
  createdAt: number;
  mailFrom: string;
  class: MessageClass;
}

/**
 * Takes fresh mail straight from the intake, like Postfix's qmgr moving a new message into its
 * active queue: recipients the delivery engine has room for are written 'inflight' by the intake's
 * own transaction and handed over once that transaction's fsync succeeded, so fresh mail costs no
 * claim transaction (docs/queue-durability.md, "Claim at birth").
 */
export interface Adopter {
  /**
   * Inside the intake transaction, synchronous, no I/O: whether the engine takes every recipient of
   * a message that is due now. A yes reserves the room until adopted() or released().
   */
  reserve(cls: MessageClass, domains: readonly string[]): boolean;
  /** The reserved recipients are durable (fsynced) and inflight: the engine holds them as if claimed. */
  adopted(due: DueRecipient[]): void;
  /**
   * The commit or its fsync failed: the room is given back. Rows committed before a failed fsync
   * stay inflight until the next start, which queues them again (a possible duplicate for a client
   * that got a 4xx, never a loss).
   */
  released(cls: MessageClass, count: number): void;
  /** Recipients were written 'queued' (not taken, or not due yet) and are durable: look at the queue. */
  queued(): void;
}

/** A failure to make a message durable; nothing was acknowledged and nothing stored was changed. */
export class StoreError extends Error {
  readonly sqliteCode: string;
  constructor(message: string, sqliteCode: string) {
    super(message);
    this.name = 'StoreError';
    this.sqliteCode = sqliteCode;
  }
}

/**
 * The default of the `excludeDomains` parameters: one shared empty list, not a new array on every
 * call (nextDueAt runs for each class on every engine turn and for each message taken at birth).
 */
export const NO_DOMAINS: readonly string[] = Object.freeze([]);

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : address).toLowerCase();
}
