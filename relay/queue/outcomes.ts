// Attempt outcomes on their way to the queue: recorded by the delivery engine, written together
// (or riding along in the intake's commit). Deferrals are written with the event-loop turn; final
// outcomes are journalled at once (journal.ts) and wait up to FINAL_BATCH_MS for a transaction.
// Like a claim, an outcome is not fsynced: losing it repeats the delivery (at least once).
import type { QueueDb } from './db.ts';
import type { OutcomeJournal } from './journal.ts';

export interface PendingOutcome {
  messageId: string;
  recipients: string[];
  state: 'delivered' | 'bounced' | 'suppressed' | 'queued';
  nextAttemptAt: number;
  reply: string;
}

/** A pending batch of outcomes that could not be written is tried again after this long. */
const OUTCOME_RETRY_MS = 1000;
/**
 * Journalled (final) outcomes wait this long for their transaction, unless the intake's commit
 * carries them first: a kill -9 no longer needs them written within the turn (journal.ts), and a
 * transaction per turn cost one per delivered message once turns got short (relay/delivery/pace.ts).
 */
const FINAL_BATCH_MS = 50;
/** ... or until this many are pending. */
const FINAL_BATCH_MAX = 500;

export class OutcomeWriter {
  private readonly q: QueueDb;
  /** Whether the store is closing: a failed batch is then not tried again by a timer. */
  private readonly closing: () => boolean;
  /** Final outcomes are appended here at once (journal.ts); undefined for the CLI's connection. */
  private readonly journal: OutcomeJournal | undefined;
  /** Waiting for the next outcome transaction. */
  private pending: PendingOutcome[] = [];
  private retry: NodeJS.Timeout | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  /** A deferral is pending (it moves due times: written with the turn), or the batch is full. */
  private urgent = false;
  /** Pending outcomes that put a recipient back in the queue (deferrals). */
  private requeues = 0;
  /** An outcome transaction failed; its outcomes are kept and written again later. */
  onError: ((err: Error, outcomes: number) => void) | undefined;

  constructor(q: QueueDb, closing: () => boolean, journal?: OutcomeJournal) {
    this.q = q;
    this.closing = closing;
    this.journal = journal;
  }

  get size(): number {
    return this.pending.length;
  }

  /**
   * Whether reads of queued recipients (claims, due times) must write the pending outcomes first:
   * a deferral among them puts a recipient back in the queue (or, without a journal, nothing else
   * would keep them). Final outcomes change no queued recipient (they close inflight ones), so
   * those reads need not wait for them: they are journalled and go with their batch, the intake's
   * commit or FINAL_BATCH_MS (issue 13: a claim or a due-time query wrote them in a transaction of
   * their own, one more per engine turn with reused connections).
   */
  get requeuesPending(): boolean {
    return this.pending.length > 0 && (this.requeues > 0 || this.journal === undefined);
  }

  /** Before a read of queued recipients: writes the pending outcomes if one of them requeues (above). */
  flushRequeues(): boolean {
    return this.requeuesPending ? this.flush() : true;
  }

  private recount(): void {
    let n = 0;
    for (const o of this.pending) if (o.state === 'queued') n++;
    this.requeues = n;
  }

  /** False after close: the recipients stay inflight and the next start queues them. */
  add(o: PendingOutcome): boolean {
    if (this.q.closed) return false;
    // A final outcome survives a kill -9 from here on, long before its batch is written.
    if (o.state !== 'queued') this.journal?.record(o.state, o.messageId, o.recipients, o.reply);
    this.pending.push(o);
    if (o.state === 'queued') this.requeues++;
    if (o.state === 'queued' || this.journal === undefined || this.pending.length >= FINAL_BATCH_MAX) this.urgent = true;
    else if (this.batchTimer === undefined) {
      this.batchTimer = setTimeout(() => {
        this.batchTimer = undefined;
        this.flush();
      }, FINAL_BATCH_MS);
      this.batchTimer.unref();
    }
    return true;
  }

  /** Whether the pending outcomes must be written with this turn (GroupCommit.schedule). */
  get due(): boolean {
    return this.urgent;
  }

  /** At the end of a turn: writes the pending outcomes if a deferral or a full batch is among them. */
  flushDue(): void {
    if (this.urgent) this.flush();
  }

  /** Puts a batch that was taken but not written back in front of the queue. */
  putBack(batch: PendingOutcome[]): void {
    this.pending = batch.concat(this.pending);
    this.recount();
    // Written in their own transaction right after the intake's failed one (flushDue).
    if (batch.length > 0) this.urgent = true;
  }

  /**
   * First thing inside the intake's transaction (GroupCommit.flush): this turn's outcomes ride
   * along (one COMMIT, one set of WAL frames for both). Returns what was written. When their write
   * fails they are kept for flush() and the error is thrown: the caller rolls back and writes the
   * intake's mail without them.
   */
  carry(): PendingOutcome[] {
    if (this.pending.length === 0) return [];
    const batch = this.pending;
    this.pending = [];
    this.urgent = false;
    this.requeues = 0;
    try {
      this.write(batch);
      return batch;
    } catch (err) {
      this.pending = batch.concat(this.pending);
      this.recount();
      this.urgent = true;
      throw err;
    }
  }

  /** Final states delete the message when none of its recipients remain open. */
  private write(batch: readonly PendingOutcome[]): void {
    const upd = this.q.stmt(
      `UPDATE recipients SET state = ?, attempts = attempts + 1, last_reply = ?, next_attempt_at = ? WHERE message_id = ? AND recipient = ?`,
    );
    // One statement where a SELECT and a DELETE were two (issue 13: the common case, once per
    // delivered message). changes counts the message row only, not the trigger's deletes.
    const delIfLast = this.q.stmt(
      `DELETE FROM messages WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM recipients WHERE message_id = ?1 AND recipient <> ?2 AND state IN ('queued', 'inflight'))`,
    );
    const open = this.q.stmt(`SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ? AND state IN ('queued', 'inflight')) AS n`);
    const del = this.q.stmt(`DELETE FROM messages WHERE id = ?`);
    for (const o of batch) {
      if (o.state === 'queued') {
        for (const r of o.recipients) upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, r);
      } else if (o.recipients.length === 1) {
        // The common case. With no other recipient open the message goes, and its recipients
        // with it (the recipients_gc trigger): updating the row first would be wasted.
        if (delIfLast.run(o.messageId, o.recipients[0]!).changes === 0) upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, o.recipients[0]!);
      } else {
        for (const r of o.recipients) upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, r);
        if ((open.get(o.messageId) as { n: number }).n === 0) del.run(o.messageId);
      }
    }
  }

  /**
   * Writes every pending outcome in one transaction. Never throws: when the write fails (disk
   * full, I/O error) the outcomes stay pending, onError says so, and they are tried again
   * OUTCOME_RETRY_MS later; their recipients stay inflight meanwhile, and are queued again by the
   * next start if the relay stops first. Returns whether nothing is left pending.
   */
  flush(): boolean {
    // Inside the intake's transaction (an adopter asking nextDueAt) or after close: later.
    if (this.q.closed || this.q.db.isTransaction) return this.pending.length === 0;
    if (this.pending.length === 0) {
      // What the intake's commit carried is in queue.db now too.
      this.journal?.written();
      return true;
    }
    const batch = this.pending;
    this.pending = [];
    this.urgent = false;
    this.requeues = 0;
    this.stopRetry();
    try {
      this.q.lightTransaction(() => this.write(batch));
      this.journal?.written();
      return true;
    } catch (err) {
      this.pending = batch.concat(this.pending);
      this.recount();
      this.onError?.(err as Error, this.pending.length);
      if (!this.closing()) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.flush();
        }, OUTCOME_RETRY_MS);
        this.retry.unref();
      }
      return false;
    }
  }

  stopRetry(): void {
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.retry = undefined;
    if (this.batchTimer !== undefined) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
  }
}
