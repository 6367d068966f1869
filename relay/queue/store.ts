// The durable queue: one SQLite database in WAL mode. Concurrent SMTP sessions share one commit
// (group commit): every message whose DATA finished while the previous commit ran goes into the
// next transaction. The intake's commit is made durable by an fsync of the WAL file on libuv's
// thread pool rather than by synchronous=FULL inside COMMIT, so the event loop keeps serving
// sessions while the disk works; enqueue() resolves only after that fsync (docs/queue-durability.md).
// Why SQLite and not a spool directory: docs/queue-durability.md (measured by bench/queue-store.ts).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { fsync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { newQueueId } from './id.ts';

// suppressed: finished without an attempt, the recipient is on the suppression list (relay/suppression).
export type RecipientState = 'queued' | 'inflight' | 'delivered' | 'bounced' | 'suppressed';
export type MessageClass = 'otp' | 'transactional' | 'bulk';

export interface NewMessage {
  /** Assigned by the caller when it must know the id before the commit (the Received header). */
  id?: string;
  mailFrom: string;
  recipients: string[];
  body: Buffer;
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

export interface QueueStoreOptions {
  clock?: () => number;
  /** Open for reading and administration while a relay owns the queue (the CLI). */
  readOnlyRecovery?: boolean;
  /** The WAL's fsync; tests pass a failing one (a disk that reports EIO). */
  fsync?: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  mail_from TEXT NOT NULL,
  size INTEGER NOT NULL,
  class TEXT NOT NULL DEFAULT 'transactional',
  message_id TEXT,
  auth_user TEXT,
  client_address TEXT,
  listener TEXT,
  body BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS recipients (
  message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  recipient TEXT NOT NULL,
  domain TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'queued',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_reply TEXT,
  PRIMARY KEY (message_id, recipient)
) STRICT;
`;

const LANES: Record<MessageClass, number> = { otp: 0, transactional: 1, bulk: 2 };
const LANE_ORDER: MessageClass[] = ['otp', 'transactional', 'bulk'];

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : address).toLowerCase();
}

interface Pending {
  id: string;
  msg: NewMessage;
  resolve: (id: string) => void;
  reject: (err: Error) => void;
  /** Written inflight for the adopter; handed over after the fsync. */
  handed?: DueRecipient[];
  /** Written queued. */
  queued?: boolean;
}

interface PendingOutcome {
  messageId: string;
  recipients: string[];
  state: 'delivered' | 'bounced' | 'suppressed' | 'queued';
  nextAttemptAt: number;
  reply: string;
}

/** A pending batch of outcomes that could not be written is tried again after this long. */
const OUTCOME_RETRY_MS = 1000;
/**
 * nextDueAt() answers from memory while no write of ours could have moved it; this bounds how
 * long an edit by another connection (the CLI's retry-now) goes unseen.
 */
const NEXT_DUE_TTL_MS = 1000;

export class QueueStore {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly clock: () => number;
  private readonly fsync: NonNullable<QueueStoreOptions['fsync']>;
  private pending: Pending[] = [];
  /** One write per event-loop turn: the intake's batch, with the turn's outcomes riding along. */
  private writeScheduled = false;
  private closed = false;
  /** Committed to the WAL, waiting for an fsync that starts after their COMMIT. */
  private unsynced: { batch: Pending[]; started: number; adopter: Adopter | undefined }[] = [];
  private syncing: Promise<void> | undefined;
  private walFd: number | undefined;
  private readonly statements = new Map<string, StatementSync>();
  private readonly insertMessage: StatementSync;
  private readonly insertRecipient: StatementSync;
  private readonly insertInflight: StatementSync;
  private adopter: Adopter | undefined;
  /** Attempt outcomes waiting for the next outcome transaction (one per event-loop turn). */
  private outcomes: PendingOutcome[] = [];
  private outcomeRetry: NodeJS.Timeout | undefined;
  private dbClosed = false;
  /** nextDueAt per lane (no exclusions), while valid: [value, read at (performance.now())]. */
  private readonly nextDue: ([number | undefined, number] | undefined)[] = [undefined, undefined, undefined];
  /** Number of commits, to let tests and metrics see that sessions shared an fsync. */
  commits = 0;
  onCommit: ((batchSize: number, seconds: number) => void) | undefined;
  /** An outcome transaction failed; its outcomes are kept and written again later. */
  onOutcomeError: ((err: Error, outcomes: number) => void) | undefined;

  constructor(dir: string, options: QueueStoreOptions = {}) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, 'queue.db');
    this.clock = options.clock ?? Date.now;
    this.fsync = options.fsync ?? fsync;
    this.db = new DatabaseSync(this.path, { timeout: 5000 });
    this.db.exec('PRAGMA journal_mode=WAL');
    // The relay never needs FULL: the intake's commits are made durable by sync() (an explicit
    // fsync of the WAL) and everything else may be lost to a power cut at the price of a duplicate
    // (lightTransaction). Checkpoints fsync under NORMAL too. The CLI's edits are rare and an
    // administrator's "deleted" should survive a power cut: FULL there (docs/queue-durability.md).
    this.db.exec(options.readOnlyRecovery ? 'PRAGMA synchronous=FULL' : 'PRAGMA synchronous=NORMAL');
    this.db.exec('PRAGMA foreign_keys=ON');
    this.db.exec(SCHEMA);
    this.migrate();
    if (!options.readOnlyRecovery) {
      // A relay that died mid-delivery left its claims behind (and mail handed to its engine at
      // birth): deliver those again (at least once).
      this.db.prepare(`UPDATE recipients SET state='queued' WHERE state='inflight'`).run();
    }
    this.insertMessage = this.db.prepare(
      `INSERT INTO messages (id, created_at, mail_from, size, class, message_id, auth_user, client_address, listener, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertRecipient = this.db.prepare(
      `INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane) VALUES (?, ?, ?, ?, ?)`,
    );
    this.insertInflight = this.db.prepare(
      `INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane, state) VALUES (?, ?, ?, ?, ?, 'inflight')`,
    );
  }

  /**
   * Each recipient carries its message's lane (0 otp, 1 transactional, 2 bulk) so a claim is an
   * index range scan: (state, lane, next_attempt_at) finds the few due otp recipients under a
   * bulk backlog of any size without reading or sorting the backlog (bench/README.md).
   */
  private migrate(): void {
    const cols = this.db.prepare(`PRAGMA table_info(recipients)`).all() as unknown as { name: string }[];
    if (!cols.some((c) => c.name === 'lane')) {
      this.db.exec(`ALTER TABLE recipients ADD COLUMN lane INTEGER NOT NULL DEFAULT 1`);
      this.db.exec(`UPDATE recipients SET lane = (SELECT CASE m.class WHEN 'otp' THEN 0 WHEN 'bulk' THEN 2 ELSE 1 END FROM messages m WHERE m.id = recipients.message_id)`);
    }
    this.db.exec(`CREATE INDEX IF NOT EXISTS recipients_lane_due ON recipients (state, lane, next_attempt_at)`);
    // Superseded by recipients_lane_due (claims and due times go per lane); each index costs every
    // insert and delete of the intake and of delivered mail.
    this.db.exec(`DROP INDEX IF EXISTS recipients_due`);
    this.db.exec(`DROP INDEX IF EXISTS messages_class`);
  }

  private stmt(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * The delivery engine that takes fresh mail at birth (see Adopter); undefined: every recipient
   * is written 'queued' and waits for a claim.
   */
  setAdopter(adopter: Adopter | undefined): void {
    this.adopter = adopter;
  }

  /** Stops handing fresh mail to this adopter (an engine that stops), unless another took its place. */
  removeAdopter(adopter: Adopter): void {
    if (this.adopter === adopter) this.adopter = undefined;
  }

  hasAdopter(): boolean {
    return this.adopter !== undefined;
  }

  /**
   * A transaction that needs no fsync of its own: claims and attempt outcomes. WAL with
   * synchronous=NORMAL still survives a killed process (the frames are in the OS page cache);
   * only a power loss can take the last few back, and then the message is delivered again
   * (at least once) — never lost, since everything acknowledged was fsynced by sync(), which
   * covers these frames too. See docs/queue-durability.md.
   */
  private lightTransaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Resolves with the queue id once the message is on disk (WAL fsynced); rejects with StoreError otherwise. */
  enqueue(msg: NewMessage): Promise<string> {
    if (this.closed) return Promise.reject(new StoreError('queue is closed', 'CLOSED'));
    return new Promise((resolve, reject) => {
      this.pending.push({ id: msg.id ?? newQueueId(this.clock()), msg, resolve, reject });
      this.scheduleWrite();
    });
  }

  private scheduleWrite(): void {
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      this.flush();
      this.flushOutcomes();
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const now = this.clock();
    const started = performance.now();
    // Taken once: the reservations made in this batch belong to this adopter, even if it goes.
    const adopter = this.adopter;
    let carried: PendingOutcome[] = [];
    try {
      // COMMIT writes the WAL frames without fsyncing them (synchronous=NORMAL); sync() below
      // does, off the event loop, before anyone is told. Checkpoints still fsync under NORMAL, so
      // the WAL is never reused before its frames are safely in the database file.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        for (const p of batch) {
          const m = p.msg;
          const cls = m.class ?? 'transactional';
          this.insertMessage.run(
            p.id, now, m.mailFrom, m.body.length, cls, m.messageId ?? null,
            m.authUser ?? null, m.clientAddress ?? null, m.listener ?? null, m.body,
          );
          const lane = LANES[cls];
          const due = Math.max(now, m.notBefore ?? now);
          const recipients = [...new Set(m.recipients)];
          const domains = recipients.map(domainOf);
          // Mail held back by the intake (notBefore) is not due: the queue keeps it until then.
          if (adopter && due <= now && recipients.length > 0 && adopter.reserve(cls, domains)) {
            p.handed = recipients.map((r, i) => {
              this.insertInflight.run(p.id, r, domains[i]!, due, lane);
              return { messageId: p.id, recipient: r, domain: domains[i]!, attempts: 0, createdAt: now, mailFrom: m.mailFrom, class: cls };
            });
          } else {
            for (let i = 0; i < recipients.length; i++) this.insertRecipient.run(p.id, recipients[i]!, domains[i]!, due, lane);
            if (recipients.length > 0) {
              p.queued = true;
              this.nextDue[lane] = undefined;
            }
          }
        }
        carried = this.carryOutcomes();
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      this.walFd ??= openSync(`${this.path}-wal`, 'r');
    } catch (err) {
      const e = err as Error & { errcode?: number; errstr?: string; code?: string };
      const error = new StoreError(`queue write failed: ${e.message}`, e.errstr ?? e.code ?? 'UNKNOWN');
      // Rolled back: nothing of this batch exists, the reservations are void; the outcomes wait.
      this.outcomes = carried.concat(this.outcomes);
      for (const p of batch) {
        if (p.handed) adopter!.released(p.handed[0]!.class, p.handed.length);
        p.handed = undefined;
        p.reject(error);
      }
      for (let lane = 0; lane < this.nextDue.length; lane++) this.nextDue[lane] = undefined;
      return;
    }
    this.unsynced.push({ batch, started, adopter });
    this.sync();
  }

  /**
   * One fsync at a time; batches committed while one runs wait for the next, because an fsync
   * that started before their COMMIT need not cover their frames. fsync works on the inode, so
   * our read-only descriptor flushes what SQLite wrote through its own; the WAL file keeps its
   * inode while this connection is open (SQLite deletes it only when the last connection closes).
   */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const waiting = this.unsynced;
    this.unsynced = [];
    this.syncing = new Promise<void>((done) => {
      this.fsync(this.walFd!, (err) => {
        this.syncing = undefined;
        for (const { batch, started, adopter } of waiting) {
          if (err) {
            // The frames are committed but maybe not on disk: the client gets a 4xx and retries,
            // and the copy here may still be delivered (a duplicate, never a loss). Recipients
            // written inflight for the adopter stay so until the next start queues them again.
            const error = new StoreError(`queue fsync failed: ${err.message}`, err.code ?? 'EIO');
            for (const p of batch) {
              if (p.handed) adopter!.released(p.handed[0]!.class, p.handed.length);
              p.reject(error);
            }
            continue;
          }
          this.commits++;
          this.onCommit?.(batch.length, (performance.now() - started) / 1000);
          const handed: DueRecipient[] = [];
          let queued = false;
          for (const p of batch) {
            if (p.handed) handed.push(...p.handed);
            queued ||= p.queued === true;
            p.resolve(p.id);
          }
          if (handed.length > 0) adopter!.adopted(handed);
          if (queued) adopter?.queued();
        }
        done();
        this.sync();
      });
    });
  }

  list(options: { limit?: number; state?: RecipientState } = {}): MessageSummary[] {
    this.flushOutcomes();
    const rows = this.db
      .prepare(
        `SELECT id, created_at, mail_from, size, class, message_id, auth_user, client_address FROM messages
         ${options.state ? 'WHERE id IN (SELECT message_id FROM recipients WHERE state = ?)' : ''}
         ORDER BY created_at, id LIMIT ?`,
      )
      .all(...(options.state ? [options.state] : []), options.limit ?? 1000) as unknown as MessageRow[];
    return rows.map((r) => this.summarize(r));
  }

  get(id: string): MessageSummary | undefined {
    this.flushOutcomes();
    const row = this.db
      .prepare(`SELECT id, created_at, mail_from, size, class, message_id, auth_user, client_address FROM messages WHERE id = ?`)
      .get(id) as MessageRow | undefined;
    return row ? this.summarize(row) : undefined;
  }

  body(id: string): Buffer | undefined {
    const row = this.stmt(`SELECT body FROM messages WHERE id = ?`).get(id) as { body: Uint8Array } | undefined;
    return row ? Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength) : undefined;
  }

  private summarize(r: MessageRow): MessageSummary {
    const recipients = (this.db
      .prepare(`SELECT recipient, domain, state, attempts, next_attempt_at, last_reply FROM recipients WHERE message_id = ? ORDER BY recipient`)
      .all(r.id) as unknown as RecipientRow[]).map((x) => ({
      recipient: x.recipient,
      domain: x.domain,
      state: x.state,
      attempts: x.attempts,
      nextAttemptAt: x.next_attempt_at,
      lastReply: x.last_reply,
    }));
    return {
      id: r.id,
      createdAt: r.created_at,
      mailFrom: r.mail_from,
      size: r.size,
      class: r.class,
      messageId: r.message_id,
      authUser: r.auth_user,
      clientAddress: r.client_address,
      recipients,
    };
  }

  /** Removes a message and its recipients; false when no such message. */
  delete(id: string): boolean {
    this.flushOutcomes();
    this.invalidateNextDue();
    return Number(this.db.prepare(`DELETE FROM messages WHERE id = ?`).run(id).changes) > 0;
  }

  /** Makes every waiting recipient of a message due now; returns how many were rescheduled. */
  retryNow(id: string): number {
    this.flushOutcomes();
    this.invalidateNextDue();
    return Number(
      this.db.prepare(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND state = 'queued'`).run(this.clock(), id).changes,
    );
  }

  /**
   * Claims up to `limit` recipients due at `now` (of one class when given), lane by lane, oldest
   * first, marking them inflight. `excludeDomains`: domains the scheduler already holds enough of.
   */
  claimDue(now: number, limit: number, cls?: MessageClass, excludeDomains: readonly string[] = []): DueRecipient[] {
    this.flushOutcomes();
    return this.lightTransaction(() => {
      const exclude = excludeDomains.length > 0;
      // Ties in next_attempt_at (a whole intake batch shares one) go by rowid, i.e. arrival: the
      // index holds rowid after next_attempt_at, so no sort of the due backlog is needed.
      const select = this.stmt(
        `SELECT r.message_id, r.recipient, r.domain, r.attempts, m.created_at, m.mail_from, m.class
         FROM recipients r INDEXED BY recipients_lane_due JOIN messages m ON m.id = r.message_id
         WHERE r.state = 'queued' AND r.lane = ? AND r.next_attempt_at <= ?
         ${exclude ? 'AND r.domain NOT IN (SELECT value FROM json_each(?))' : ''}
         ORDER BY r.next_attempt_at, r.rowid
         LIMIT ?`,
      );
      const mark = this.stmt(`UPDATE recipients SET state = 'inflight' WHERE message_id = ? AND recipient = ?`);
      const out: DueRecipient[] = [];
      for (const c of cls ? [cls] : LANE_ORDER) {
        if (out.length >= limit) break;
        const rows = (exclude
          ? select.all(LANES[c], now, JSON.stringify(excludeDomains), limit - out.length)
          : select.all(LANES[c], now, limit - out.length)) as unknown as DueRow[];
        if (rows.length > 0) this.nextDue[LANES[c]] = undefined;
        for (const r of rows) {
          mark.run(r.message_id, r.recipient);
          out.push({
            messageId: r.message_id,
            recipient: r.recipient,
            domain: r.domain,
            attempts: r.attempts,
            createdAt: r.created_at,
            mailFrom: r.mail_from,
            class: r.class,
          });
        }
      }
      return out;
    });
  }

  /**
   * Puts claimed recipients back, due at the given times, without counting an attempt: the
   * scheduler held them back (suspension, quota, rate), the receiver never saw them.
   */
  postpone(entries: readonly { messageId: string; recipient: string; at: number; reply?: string }[]): void {
    if (entries.length === 0) return;
    this.flushOutcomes();
    this.invalidateNextDue();
    this.lightTransaction(() => {
      const upd = this.stmt(
        `UPDATE recipients SET state = 'queued', next_attempt_at = ?, last_reply = COALESCE(?, last_reply) WHERE message_id = ? AND recipient = ? AND state = 'inflight'`,
      );
      for (const e of entries) upd.run(e.at, e.reply ?? null, e.messageId, e.recipient);
    });
  }

  /**
   * Makes queued recipients due at `at` if they were due later (mail the scheduler held back for a
   * cap or a pause, released by a new config); recipients claimed or finished since are untouched.
   */
  advance(entries: readonly { messageId: string; recipient: string }[], at: number): void {
    if (entries.length === 0) return;
    this.flushOutcomes();
    this.invalidateNextDue();
    this.lightTransaction(() => {
      const upd = this.stmt(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND recipient = ? AND state = 'queued' AND next_attempt_at > ?`);
      for (const e of entries) upd.run(at, e.messageId, e.recipient, at);
    });
  }

  /**
   * Earliest time a queued recipient (of one class when given) becomes due, or undefined when
   * nothing waits. Per class without exclusions (once per class per engine loop turn) it is
   * answered from memory while nothing of ours could have moved it: every write that adds,
   * claims or requeues a queued recipient forgets it, and NEXT_DUE_TTL_MS bounds how long another
   * connection's edit goes unseen.
   */
  nextDueAt(cls?: MessageClass, excludeDomains: readonly string[] = []): number | undefined {
    const cacheable = cls !== undefined && excludeDomains.length === 0;
    if (cacheable) {
      const c = this.nextDue[LANES[cls]];
      if (c && performance.now() - c[1] < NEXT_DUE_TTL_MS) return c[0];
    }
    this.flushOutcomes();
    if (cls === undefined) {
      const each = LANE_ORDER.map((c) => this.nextDueAt(c, excludeDomains)).filter((t): t is number => t !== undefined);
      return each.length > 0 ? Math.min(...each) : undefined;
    }
    const row = (excludeDomains.length > 0
      ? this.stmt(`SELECT MIN(next_attempt_at) AS t FROM recipients INDEXED BY recipients_lane_due WHERE state = 'queued' AND lane = ? AND domain NOT IN (SELECT value FROM json_each(?))`).get(LANES[cls], JSON.stringify(excludeDomains))
      : this.stmt(`SELECT MIN(next_attempt_at) AS t FROM recipients INDEXED BY recipients_lane_due WHERE state = 'queued' AND lane = ?`).get(LANES[cls])) as { t: number | null };
    const t = row.t ?? undefined;
    // Not cached while an outcome transaction keeps failing: what it would requeue is not counted yet.
    if (cacheable && this.outcomes.length === 0) this.nextDue[LANES[cls]] = [t, performance.now()];
    return t;
  }

  private invalidateNextDue(): void {
    this.nextDue.fill(undefined);
  }

  /**
   * Records the outcome of one attempt for some recipients of a message. Final states delete the
   * message when none remain open. Outcomes are written together, one transaction per event-loop
   * turn (flushOutcomes); reads through this store write them first, so they see every outcome.
   * Like a claim, an outcome is not fsynced: losing it repeats the delivery (at least once).
   */
  recordAttempt(
    messageId: string,
    recipients: string[],
    outcome: { state: 'delivered' | 'bounced' | 'suppressed' } | { state: 'queued'; nextAttemptAt: number },
    reply: string,
  ): void {
    // After close the write cannot happen: the recipients stay inflight and the next start queues them.
    if (this.dbClosed) return;
    const next = outcome.state === 'queued' ? outcome.nextAttemptAt : this.clock();
    this.outcomes.push({ messageId, recipients, state: outcome.state, nextAttemptAt: next, reply });
    // A requeued recipient moves the next due time.
    if (outcome.state === 'queued') this.invalidateNextDue();
    this.scheduleWrite();
  }

  /**
   * Inside the intake's transaction: this turn's outcomes ride along (one COMMIT, one set of WAL
   * frames for both). A savepoint keeps a failure of theirs from refusing the intake's mail; they
   * then wait for flushOutcomes(). Returns what was written.
   */
  private carryOutcomes(): PendingOutcome[] {
    if (this.outcomes.length === 0) return [];
    this.stmt('SAVEPOINT outcomes').run();
    const batch = this.outcomes;
    this.outcomes = [];
    try {
      this.writeOutcomes(batch);
      this.stmt('RELEASE outcomes').run();
      return batch;
    } catch (err) {
      this.outcomes = batch.concat(this.outcomes);
      // SQLite may roll the whole transaction back itself (SQLITE_FULL, I/O errors): the intake's
      // rows are gone too, so its batch must fail.
      if (!this.db.isTransaction) throw err;
      this.stmt('ROLLBACK TO outcomes').run();
      this.stmt('RELEASE outcomes').run();
      return [];
    }
  }

  private writeOutcomes(batch: readonly PendingOutcome[]): void {
    const upd = this.stmt(
      `UPDATE recipients SET state = ?, attempts = attempts + 1, last_reply = ?, next_attempt_at = ? WHERE message_id = ? AND recipient = ?`,
    );
    const othersOpen = this.stmt(`SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ? AND recipient <> ? AND state IN ('queued', 'inflight')) AS n`);
    const open = this.stmt(`SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ? AND state IN ('queued', 'inflight')) AS n`);
    const del = this.stmt(`DELETE FROM messages WHERE id = ?`);
    for (const o of batch) {
      if (o.state === 'queued') {
        for (const r of o.recipients) upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, r);
      } else if (o.recipients.length === 1) {
        // The common case. With no other recipient open the message goes, and its recipients
        // with it (ON DELETE CASCADE): updating the row first would be wasted.
        if ((othersOpen.get(o.messageId, o.recipients[0]!) as { n: number }).n === 0) del.run(o.messageId);
        else upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, o.recipients[0]!);
      } else {
        for (const r of o.recipients) upd.run(o.state, o.reply, o.nextAttemptAt, o.messageId, r);
        if ((open.get(o.messageId) as { n: number }).n === 0) del.run(o.messageId);
      }
    }
  }

  /**
   * Writes every pending outcome in one transaction. Never throws: when the write fails (disk
   * full, I/O error) the outcomes stay pending, onOutcomeError says so, and they are tried again
   * OUTCOME_RETRY_MS later; their recipients stay inflight meanwhile, and are queued again by the
   * next start if the relay stops first. Returns whether nothing is left pending.
   */
  flushOutcomes(): boolean {
    if (this.outcomes.length === 0) return true;
    // Inside the intake's transaction (an adopter asking nextDueAt) or after close: later.
    if (this.dbClosed || this.db.isTransaction) return false;
    const batch = this.outcomes;
    this.outcomes = [];
    if (this.outcomeRetry !== undefined) {
      clearTimeout(this.outcomeRetry);
      this.outcomeRetry = undefined;
    }
    try {
      this.lightTransaction(() => this.writeOutcomes(batch));
      return true;
    } catch (err) {
      this.outcomes = batch.concat(this.outcomes);
      this.onOutcomeError?.(err as Error, this.outcomes.length);
      if (!this.closed) {
        this.outcomeRetry = setTimeout(() => {
          this.outcomeRetry = undefined;
          this.flushOutcomes();
        }, OUTCOME_RETRY_MS);
        this.outcomeRetry.unref();
      }
      return false;
    }
  }

  /** suppressed is present only while such rows exist (a message with other recipients still open). */
  counts(): Record<Exclude<RecipientState, 'suppressed'>, number> & { suppressed?: number } {
    this.flushOutcomes();
    const out: Record<Exclude<RecipientState, 'suppressed'>, number> & { suppressed?: number } = { queued: 0, inflight: 0, delivered: 0, bounced: 0 };
    for (const row of this.db.prepare(`SELECT state, COUNT(*) AS n FROM recipients GROUP BY state`).all() as unknown as { state: RecipientState; n: number }[]) {
      out[row.state] = row.n;
    }
    return out;
  }

  /**
   * Recipients not yet final (queued or inflight) and the acceptance time of the oldest, per
   * class: the queue depth and oldest-age gauges, read at scrape time.
   */
  backlogByClass(): { class: MessageClass; recipients: number; oldestCreatedAt: number }[] {
    this.flushOutcomes();
    return (this.db
      .prepare(`SELECT m.class AS class, COUNT(*) AS n, MIN(m.created_at) AS oldest FROM recipients r JOIN messages m ON m.id = r.message_id
                WHERE r.state IN ('queued', 'inflight') GROUP BY m.class`)
      .all() as unknown as { class: MessageClass; n: number; oldest: number }[]).map((r) => ({ class: r.class, recipients: r.n, oldestCreatedAt: r.oldest }));
  }

  messageCount(): number {
    this.flushOutcomes();
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM messages`).get() as { n: number }).n;
  }

  /** Waits for pending writes, then closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pending.length > 0) this.flush();
    while (this.syncing) await this.syncing;
    // Outcomes that still cannot be written are lost with their recipients inflight: the next
    // start queues those again (delivered again, at least once).
    this.flushOutcomes();
    if (this.outcomeRetry !== undefined) clearTimeout(this.outcomeRetry);
    this.outcomeRetry = undefined;
    this.db.close();
    this.dbClosed = true;
    if (this.walFd !== undefined) closeSync(this.walFd);
  }
}

interface MessageRow {
  id: string;
  created_at: number;
  mail_from: string;
  size: number;
  class: MessageClass;
  message_id: string | null;
  auth_user: string | null;
  client_address: string | null;
}
interface RecipientRow {
  recipient: string;
  domain: string;
  state: RecipientState;
  attempts: number;
  next_attempt_at: number;
  last_reply: string | null;
}
interface DueRow {
  message_id: string;
  recipient: string;
  domain: string;
  attempts: number;
  created_at: number;
  mail_from: string;
  class: MessageClass;
}
