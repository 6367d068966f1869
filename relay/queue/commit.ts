// The intake's commit path. Concurrent SMTP sessions share one commit (group commit): every
// message whose DATA finished while the previous commit ran goes into the next transaction. The
// commit is made durable by an fsync of the WAL file on libuv's thread pool rather than by
// synchronous=FULL inside COMMIT, so the event loop keeps serving sessions while the disk works;
// enqueue() resolves only after that fsync (docs/queue-durability.md). Fresh mail the delivery
// engine has room for is written inflight and handed over after the fsync (claim at birth).
import { closeSync, fdatasync, openSync } from 'node:fs';
import type { StatementSync } from 'node:sqlite';
import { DEFAULT_CLASS, laneOf } from '../message-class.ts';
import { newQueueId } from './id.ts';
import { beginImmediate, commitTransaction, rollbackTransaction } from '../sqlite.ts';
import type { QueueDb } from './db.ts';
import type { OutcomeWriter, PendingOutcome } from './outcomes.ts';
import type { Claims } from './claims.ts';
import { StoreError, domainOf, type Adopter, type DueRecipient, type NewMessage } from './types.ts';
import { PART_BYTES, isSpooled, partCount, partsOf, sizeOfBody } from './body-parts.ts';
import type { FreshBodies } from './fresh-bodies.ts';

/**
 * Bytes of bodies stored in parts one transaction takes (at least one message): a 25 MiB body is
 * some 100 ms of SQLite work on the event loop, and 50 of them in one batch would stall every
 * session for seconds. The rest wait for the next commit (after this one's fsync).
 */
export const PARTED_BYTES_PER_COMMIT = 32 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

export type Fsync = (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void;

/**
 * The SMTP sessions receiving DATA right now, kept by the intake (relay/intake/data-sessions.ts):
 * what the commit delay waits for. Sequence numbers, so a commit waits only for the sessions that
 * were in DATA when its turn came, not for every later one.
 */
export interface DataSessions {
  /** Sessions in DATA now (never negative). */
  readonly count: number;
  /** The sequence number of the last session that entered DATA (0: none yet). */
  readonly lastEntered: number;
  /** The sequence number of the oldest session still in DATA, or undefined when none is. */
  oldest(): number | undefined;
  /** Called each time a session leaves DATA (its message handed to enqueue(), refused, or the session gone). */
  onLeave: (() => void) | undefined;
}

/**
 * PostgreSQL's commit_delay + commit_siblings for the intake's commit: when at least `siblings`
 * sessions are mid-DATA as a commit's turn comes, it waits up to `delayMs` for them to end so
 * one fsync covers their messages too (bench/README.md "Cost per inbound connection": relay CPU
 * per message grows with commits per message). Never for otp, never at shutdown.
 */
export interface CommitDelay {
  delayMs: number;
  siblings: number;
  sessions: DataSessions;
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

export class GroupCommit {
  private readonly q: QueueDb;
  private readonly walPath: string;
  private readonly clock: () => number;
  private readonly fsync: Fsync;
  private readonly outcomes: OutcomeWriter;
  private readonly claims: Claims;
  private readonly fresh: FreshBodies | undefined;
  private readonly insertMessage: StatementSync;
  private readonly insertParted: StatementSync;
  private readonly insertPart: StatementSync;
  /** Read buffer for spooled bodies' parts, allocated at the first one. */
  private scratch: Buffer | undefined;
  /** Pending messages stored in parts: only then does flush() look at sizes. */
  private pendingParted = 0;
  private readonly insertRecipient: StatementSync;
  private readonly insertInflight: StatementSync;
  private pending: Pending[] = [];
  /** One write per event-loop turn: the intake's batch, with the turn's outcomes riding along. */
  private writeScheduled = false;
  /** Committed to the WAL, waiting for an fsync that starts after their COMMIT. */
  private unsynced: { batch: Pending[]; started: number; adopter: Adopter | undefined }[] = [];
  private syncing: Promise<void> | undefined;
  private walFd: number | undefined;
  /** The delivery engine that takes fresh mail at birth; undefined: everything is written queued. */
  adopter: Adopter | undefined;
  closed = false;
  /** Number of commits, to let tests and metrics see that sessions shared an fsync. */
  commits = 0;
  /** Commits that waited for sessions mid-DATA (CommitDelay), for tests and the bench. */
  delayed = 0;
  /** The commit delay; undefined or delayMs 0: each batch is written at the end of its turn. */
  private delay: CommitDelay | undefined;
  /** A batch held for the sessions that were in DATA (up to `mark`) when its turn came. */
  private holding: { mark: number } | undefined;
  /**
   * Ends a hold after the delay. One timer, re-armed by refresh() for each hold and never cleared
   * (a hold that ends early leaves it to fire as a no-op, unless the next hold moved it): a new
   * Timeout per batch plus its clearTimeout were most of hold()'s cost (issue 13).
   */
  private holdTimer: NodeJS.Timeout | undefined;
  /** The hold just ended: the next flush writes whoever is in DATA. */
  private released = false;
  onCommit: ((batchSize: number, seconds: number) => void) | undefined;

  constructor(deps: { q: QueueDb; dbPath: string; clock: () => number; fsync?: Fsync | undefined; outcomes: OutcomeWriter; claims: Claims; fresh?: FreshBodies }) {
    this.q = deps.q;
    this.walPath = `${deps.dbPath}-wal`;
    this.clock = deps.clock;
    // fdatasync, as SQLite itself and PostgreSQL (wal_sync_method) use on Linux: it flushes the
    // frames and any size change (what reading them back needs) but not the WAL's mtime. The WAL is
    // overwritten in place after each checkpoint, so most syncs change no size. The relay's CPU did
    // not move measurably; an 8 KiB overwrite + sync took 140–250 µs instead of 190–280 (ext4).
    this.fsync = deps.fsync ?? fdatasync;
    this.outcomes = deps.outcomes;
    this.claims = deps.claims;
    this.fresh = deps.fresh;
    this.insertMessage = this.q.db.prepare(
      `INSERT INTO messages (id, created_at, mail_from, size, class, message_id, auth_user, client_address, listener, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertParted = this.q.db.prepare(
      `INSERT INTO messages (id, created_at, mail_from, size, class, message_id, auth_user, client_address, listener, body, parts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertPart = this.q.db.prepare(`INSERT INTO body_parts (message_id, seq, data) VALUES (?, ?, ?)`);
    this.insertRecipient = this.q.db.prepare(
      `INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane) VALUES (?, ?, ?, ?, ?)`,
    );
    this.insertInflight = this.q.db.prepare(
      `INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane, state) VALUES (?, ?, ?, ?, ?, 'inflight')`,
    );
  }

  /** Resolves with the queue id once the message is on disk (WAL fsynced); rejects with StoreError otherwise. */
  enqueue(msg: NewMessage): Promise<string> {
    if (this.closed) return Promise.reject(new StoreError('queue is closed', 'CLOSED'));
    return new Promise((resolve, reject) => {
      this.pending.push({ id: msg.id ?? newQueueId(this.clock()), msg, resolve, reject });
      if (partCount(sizeOfBody(msg.body)) > 0) this.pendingParted++;
      // The OTP lane never waits for other sessions' DATA.
      if (this.holding && msg.class === 'otp') this.release();
      this.schedule();
    });
  }

  /** The intake's batch and the turn's outcomes are written once this event-loop turn is over. */
  schedule(): void {
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      this.flush();
      this.outcomes.flushDue();
    });
  }

  /** Sets (or with undefined, removes) the commit delay; a batch held now is written at once. */
  setDelay(delay: CommitDelay | undefined): void {
    if (this.delay && this.delay !== delay) this.delay.sessions.onLeave = undefined;
    // Armed with the old delay.
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.delay = delay && delay.delayMs > 0 ? delay : undefined;
    if (this.delay) this.delay.sessions.onLeave = () => this.left();
    if (this.holding) this.release();
  }

  /**
   * Whether this turn's batch waits for sessions mid-DATA: at least `siblings` of them, no otp
   * in the batch, not closing, and not just released from a wait (one wait per batch).
   */
  private hold(): boolean {
    if (this.holding) return true;
    if (this.released) {
      this.released = false;
      return false;
    }
    const d = this.delay;
    if (!d || this.closed || this.pending.length === 0 || d.sessions.count < d.siblings) return false;
    for (const p of this.pending) if (p.msg.class === 'otp') return false;
    this.holding = { mark: d.sessions.lastEntered };
    if (this.holdTimer) this.holdTimer.refresh();
    else this.holdTimer = setTimeout(() => this.release(), d.delayMs);
    this.delayed++;
    return true;
  }

  /** A session left DATA: once every one the held batch waits for has, it is written (this turn's end). */
  private left(): void {
    if (!this.holding) return;
    const oldest = this.delay?.sessions.oldest();
    if (oldest === undefined || oldest > this.holding.mark) this.release();
  }

  /** Ends a wait; the batch is written at the end of this turn (with what the leaving session enqueues now). */
  private release(): void {
    if (!this.holding) return;
    this.holding = undefined;
    this.released = true;
    this.schedule();
  }

  private flush(): void {
    // While an fsync runs, a COMMIT would only wait for the next one: the batch grows until this
    // fsync ends instead (sync() flushes then), one transaction per fsync however short the
    // event-loop turns are (relay/delivery/pace.ts makes them short).
    if (this.syncing && !this.closed) return;
    if (this.hold()) return;
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    const now = this.clock();
    const started = performance.now();
    // Taken once: the reservations made in this batch belong to this adopter, even if it goes.
    const adopter = this.adopter;
    let carried: PendingOutcome[] = [];
    const db = this.q.db;
    try {
      // COMMIT writes the WAL frames without fsyncing them (synchronous=NORMAL); sync() below
      // does, off the event loop, before anyone is told. Checkpoints still fsync under NORMAL, so
      // the WAL is never reused before its frames are safely in the database file.
      beginImmediate(db);
      try {
        // The turn's outcomes ride along (one COMMIT, one set of WAL frames for both), first: the
        // pages their deletes free are taken again by the inserts below in this same transaction,
        // instead of going to the freelist and new ones coming out of it (2.25 -> 1.75 WAL frames
        // per message at 4 messages a commit, bench/queue-pages.ts). A failure of theirs never
        // refuses the intake's mail: nothing of the intake is written yet, so the transaction
        // starts over without them, and they wait for their own (carry() kept them).
        try {
          carried = this.outcomes.carry();
        } catch {
          rollbackTransaction(db);
          beginImmediate(db);
        }
        for (const p of batch) {
          const m = p.msg;
          const cls = m.class ?? DEFAULT_CLASS;
          const size = sizeOfBody(m.body);
          const parts = partCount(size);
          if (parts === 0) {
            this.insertMessage.run(
              p.id, now, m.mailFrom, size, cls, m.messageId ?? null,
              m.authUser ?? null, m.clientAddress ?? null, m.listener ?? null, m.body as Buffer,
            );
          } else {
            this.insertParted.run(
              p.id, now, m.mailFrom, size, cls, m.messageId ?? null,
              m.authUser ?? null, m.clientAddress ?? null, m.listener ?? null, EMPTY, parts,
            );
            let seq = 0;
            for (const part of partsOf(m.body, (this.scratch ??= Buffer.allocUnsafe(PART_BYTES)))) this.insertPart.run(p.id, seq++, part);
          }
          const lane = laneOf(cls);
          const due = Math.max(now, m.notBefore ?? now);
          // One recipient is the common case: no Set and no copy for it (issue 13, allocation per message).
          const recipients = m.recipients.length === 1 ? m.recipients : [...new Set(m.recipients)];
          const domains = recipients.map(domainOf);
          // Mail held back by the intake (notBefore) is not due: the queue keeps it until then.
          if (adopter && due <= now && recipients.length > 0 && adopter.reserve(cls, domains)) {
            const handed: DueRecipient[] = [];
            for (let i = 0; i < recipients.length; i++) {
              this.insertInflight.run(p.id, recipients[i]!, domains[i]!, due, lane);
              handed.push({ messageId: p.id, recipient: recipients[i]!, domain: domains[i]!, attempts: 0, createdAt: now, mailFrom: m.mailFrom, class: cls });
            }
            p.handed = handed;
          } else {
            for (let i = 0; i < recipients.length; i++) this.insertRecipient.run(p.id, recipients[i]!, domains[i]!, due, lane);
            if (recipients.length > 0) {
              p.queued = true;
              this.claims.invalidate(lane);
            }
          }
        }
        commitTransaction(db);
      } catch (err) {
        rollbackTransaction(db);
        throw err;
      }
      this.walFd ??= openSync(this.walPath, 'r');
    } catch (err) {
      const e = err as Error & { errcode?: number; errstr?: string; code?: string };
      const error = new StoreError(`queue write failed: ${e.message}`, e.errstr ?? e.code ?? 'UNKNOWN');
      // Rolled back: nothing of this batch exists, the reservations are void; the outcomes wait.
      this.outcomes.putBack(carried);
      for (const p of batch) {
        if (p.handed) adopter!.released(p.handed[0]!.class, p.handed.length);
        p.handed = undefined;
        p.reject(error);
      }
      this.claims.invalidate();
      return;
    }
    this.unsynced.push({ batch, started, adopter });
    this.sync();
  }

  /**
   * The pending messages for this transaction: all of them, except that bodies stored in parts
   * stop at PARTED_BYTES_PER_COMMIT (the first always goes); the others wait for the next commit.
   */
  private takeBatch(): Pending[] {
    const all = this.pending;
    this.pending = [];
    if (this.pendingParted === 0) return all;
    const batch: Pending[] = [];
    let parted = 0;
    for (const p of all) {
      const size = sizeOfBody(p.msg.body);
      if (partCount(size) === 0) batch.push(p);
      else if (parted === 0 || parted + size <= PARTED_BYTES_PER_COMMIT) {
        parted += size;
        batch.push(p);
        this.pendingParted--;
      } else this.pending.push(p);
    }
    return batch;
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
            if (p.handed) {
              for (const d of p.handed) handed.push(d);
              // Durable now: the engine's first read takes these bytes instead of reading them back.
              const body = p.msg.body;
              if (this.fresh && !isSpooled(body) && partCount(body.length) === 0) this.fresh.put(p.id, body);
            }
            queued ||= p.queued === true;
            p.resolve(p.id);
          }
          if (handed.length > 0) adopter!.adopted(handed);
          if (queued) adopter?.queued();
        }
        done();
        if (this.pending.length > 0) this.flush();
        this.sync();
      });
    });
  }

  /** Refuses new mail, writes what is pending and waits for its fsync. */
  async close(): Promise<void> {
    this.closed = true;
    // Shutdown does not wait for sessions mid-DATA.
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.holding) {
      this.holding = undefined;
    }
    if (this.pending.length > 0) this.flush();
    while (this.syncing) await this.syncing;
  }

  /** After the database is closed. */
  closeWal(): void {
    if (this.walFd !== undefined) closeSync(this.walFd);
  }
}
