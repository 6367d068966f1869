// The durable queue: one SQLite database (queue.db) in WAL mode, and the one object the relay
// and the CLI hold. It wires its parts, each in its own file:
//   schema.ts    every table of queue.db and its migrations (versioned)
//   commit.ts    the intake's group commit with its fsync, and claim at birth (Adopter)
//   outcomes.ts  attempt outcomes, batched per event-loop turn
//   journal.ts   final outcomes appended at once (outcomes.log), replayed at start after a crash
//   claims.ts    claims, postponements and due times for the delivery engine
//   admin.ts     listings, counts, delete and retry-now
// Why SQLite and not a spool directory: docs/queue-durability.md (measured by bench/queue-store.ts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openQueueDb } from './schema.ts';
import { QueueDb } from './db.ts';
import { OutcomeWriter } from './outcomes.ts';
import { OutcomeJournal, replayJournal } from './journal.ts';
import { Claims } from './claims.ts';
import { QueueAdmin } from './admin.ts';
import { FreshBodies } from './fresh-bodies.ts';
import { GroupCommit, type CommitDelay, type Fsync } from './commit.ts';
import { NO_DOMAINS, type Adopter, type DueRecipient, type MessageSummary, type NewMessage, type RecipientState } from './types.ts';
import type { StoredBody } from './body-parts.ts';
import type { MessageClass } from '../message-class.ts';

export type { CommitDelay, DataSessions } from './commit.ts';
export type { Adopter, DueRecipient, MessageClass, MessageSummary, NewMessage, RecipientInfo, RecipientState } from './types.ts';
export { StoreError, domainOf } from './types.ts';
export { StoredBody, PART_BYTES, type SpooledBody, type BodyInput } from './body-parts.ts';

export interface QueueStoreOptions {
  clock?: () => number;
  /** Open for reading and administration while a relay owns the queue (the CLI). */
  readOnlyRecovery?: boolean;
  /** The WAL's fsync; tests pass a failing one (a disk that reports EIO). */
  fsync?: Fsync;
}

export class QueueStore {
  readonly path: string;
  private readonly clock: () => number;
  private readonly q: QueueDb;
  private readonly outcomes: OutcomeWriter;
  private readonly journal: OutcomeJournal | undefined;
  private readonly claims: Claims;
  private readonly admin: QueueAdmin;
  private readonly commit: GroupCommit;

  constructor(dir: string, options: QueueStoreOptions = {}) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'queue.db');
    this.clock = options.clock ?? Date.now;
    const db = openQueueDb(this.path, {
      pragmas: [
        'journal_mode=WAL',
        // The relay never needs FULL: the intake's commits are made durable by an explicit fsync
        // of the WAL (commit.ts) and everything else may be lost to a power cut at the price of a
        // duplicate (QueueDb.lightTransaction). Checkpoints fsync under NORMAL too. The CLI's edits
        // are rare and an administrator's "deleted" should survive a power cut: FULL there
        // (docs/queue-durability.md).
        options.readOnlyRecovery ? 'synchronous=FULL' : 'synchronous=NORMAL',
        // Off (SQLite's default): a message's recipients are deleted with it by a trigger
        // (schema.ts, version 11), not by ON DELETE CASCADE, which cost a count and a temporary
        // b-tree per delete and a parent lookup per recipient insert (issue 13). Every row the
        // store inserts into recipients belongs to a message it inserted in the same transaction.
        'foreign_keys=OFF',
      ],
    });
    if (!options.readOnlyRecovery) {
      // Outcomes a killed relay had journalled but not yet written (journal.ts): those receivers
      // have the message already.
      const journalPath = join(dir, 'outcomes.log');
      replayJournal(db, journalPath);
      // A relay that died mid-delivery left its claims behind (and mail handed to its engine at
      // birth): deliver those again (at least once).
      db.prepare(`UPDATE recipients SET state='queued' WHERE state='inflight'`).run();
      this.journal = new OutcomeJournal(journalPath);
    }
    this.q = new QueueDb(db);
    this.outcomes = new OutcomeWriter(this.q, () => this.commit.closed, this.journal);
    this.claims = new Claims(this.q, this.outcomes);
    const fresh = new FreshBodies();
    this.admin = new QueueAdmin(this.q, this.outcomes, this.claims, this.clock, fresh);
    this.commit = new GroupCommit({ q: this.q, dbPath: this.path, clock: this.clock, fsync: options.fsync, outcomes: this.outcomes, claims: this.claims, fresh });
  }

  /** Number of commits, to let tests and metrics see that sessions shared an fsync. */
  get commits(): number {
    return this.commit.commits;
  }

  get onCommit(): ((batchSize: number, seconds: number) => void) | undefined {
    return this.commit.onCommit;
  }

  set onCommit(fn: ((batchSize: number, seconds: number) => void) | undefined) {
    this.commit.onCommit = fn;
  }

  /** Commits that waited for sessions mid-DATA (the commit delay). */
  get delayedCommits(): number {
    return this.commit.delayed;
  }

  /**
   * The commit delay (queue.commitDelayMs, queue.commitSiblings) with the intake's count of
   * sessions in DATA; undefined or delayMs 0: no delay.
   */
  setCommitDelay(delay: CommitDelay | undefined): void {
    this.commit.setDelay(delay);
  }

  /** An outcome transaction failed; its outcomes are kept and written again later. */
  get onOutcomeError(): ((err: Error, outcomes: number) => void) | undefined {
    return this.outcomes.onError;
  }

  set onOutcomeError(fn: ((err: Error, outcomes: number) => void) | undefined) {
    this.outcomes.onError = fn;
  }

  // --- the intake's commit path (commit.ts) ---

  /** Resolves with the queue id once the message is on disk (WAL fsynced); rejects with StoreError otherwise. */
  enqueue(msg: NewMessage): Promise<string> {
    return this.commit.enqueue(msg);
  }

  /**
   * The delivery engine that takes fresh mail at birth (see Adopter); undefined: every recipient
   * is written 'queued' and waits for a claim.
   */
  setAdopter(adopter: Adopter | undefined): void {
    this.commit.adopter = adopter;
  }

  /** Stops handing fresh mail to this adopter (an engine that stops), unless another took its place. */
  removeAdopter(adopter: Adopter): void {
    if (this.commit.adopter === adopter) this.commit.adopter = undefined;
  }

  hasAdopter(): boolean {
    return this.commit.adopter !== undefined;
  }

  // --- the delivery engine's claims (claims.ts) and outcomes (outcomes.ts) ---

  claimDue(now: number, limit: number, cls?: MessageClass, excludeDomains: readonly string[] = NO_DOMAINS): DueRecipient[] {
    return this.claims.claimDue(now, limit, cls, excludeDomains);
  }

  postpone(entries: readonly { messageId: string; recipient: string; at: number; reply?: string }[]): void {
    this.claims.postpone(entries);
  }

  advance(entries: readonly { messageId: string; recipient: string }[], at: number): void {
    this.claims.advance(entries, at);
  }

  /**
   * Queued recipients the scheduler held with a reply starting with `replyPrefix` (a paused
   * domain's bulk, relay/scheduler/paused-domains.ts) become due at `at`: a resume.
   */
  releaseHeld(replyPrefix: string, at: number): number {
    return this.claims.releaseHeld(replyPrefix, at);
  }

  nextDueAt(cls?: MessageClass, excludeDomains: readonly string[] = NO_DOMAINS): number | undefined {
    return this.claims.nextDueAt(cls, excludeDomains);
  }

  /**
   * Records the outcome of one attempt for some recipients of a message. Final states delete the
   * message when none remain open. Outcomes are written together (OutcomeWriter: deferrals with the
   * event-loop turn, final ones journalled at once and batched); reads through this store write
   * them first, so they see every outcome.
   */
  recordAttempt(
    messageId: string,
    recipients: string[],
    outcome: { state: 'delivered' | 'bounced' | 'suppressed' } | { state: 'queued'; nextAttemptAt: number },
    reply: string,
  ): void {
    const next = outcome.state === 'queued' ? outcome.nextAttemptAt : this.clock();
    if (!this.outcomes.add({ messageId, recipients, state: outcome.state, nextAttemptAt: next, reply })) return;
    // A requeued recipient moves the next due time.
    if (outcome.state === 'queued') this.claims.invalidate();
    // Final outcomes are in the journal already (OutcomeWriter.add): a kill -9 from here on does not
    // send the message again, and their batch goes to queue.db within FINAL_BATCH_MS or with the
    // intake's next commit: a transaction per outcome cost 140-235 µs against 30-50 µs batched
    // (docs/queue-durability.md). Deferrals are written with the turn.
    if (this.outcomes.due) this.commit.schedule();
  }

  /** Writes pending outcomes now; false when some could not be written (they are tried again). */
  flushOutcomes(): boolean {
    return this.outcomes.flush();
  }

  // --- administration (admin.ts) ---

  list(options: { limit?: number; state?: RecipientState } = {}): MessageSummary[] {
    return this.admin.list(options);
  }

  get(id: string): MessageSummary | undefined {
    return this.admin.get(id);
  }

  /** The stored message in one Buffer (administration, tests); delivery reads it with open(). */
  body(id: string): Buffer | undefined {
    return this.admin.body(id);
  }

  /** Small mail whole; a body stored in parts as a reader of its parts (relay/queue/body-parts.ts). */
  open(id: string): Buffer | StoredBody | undefined {
    return this.admin.open(id);
  }

  /** A message's size in bytes, without reading its body. */
  bodySize(id: string): number | undefined {
    return this.admin.size(id);
  }

  delete(id: string): boolean {
    return this.admin.delete(id);
  }

  retryNow(id: string): number {
    return this.admin.retryNow(id);
  }

  /** suppressed is present only while such rows exist (a message with other recipients still open). */
  counts(): Record<Exclude<RecipientState, 'suppressed'>, number> & { suppressed?: number } {
    return this.admin.counts();
  }

  backlogByClass(): { class: MessageClass; recipients: number; oldestCreatedAt: number }[] {
    return this.admin.backlogByClass();
  }

  messageCount(): number {
    return this.admin.messageCount();
  }

  /** Waits for pending writes, then closes. */
  async close(): Promise<void> {
    if (this.commit.closed) return;
    await this.commit.close();
    // Outcomes that still cannot be written are lost with their recipients inflight: the next
    // start queues those again (delivered again, at least once).
    const written = this.outcomes.flush();
    this.outcomes.stopRetry();
    this.claims.close();
    this.q.close();
    // Kept when the last batch could not be written: the next start applies it.
    if (written) this.journal?.close(true);
    this.commit.closeWal();
  }
}
