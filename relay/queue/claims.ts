// Claims: the delivery engine takes due recipients (marking them inflight), puts back what the
// scheduler held back, and asks when its class's queued mail is next due.
import { MESSAGE_CLASSES, laneOf, type MessageClass } from '../message-class.ts';
import type { QueueDb } from './db.ts';
import type { OutcomeWriter } from './outcomes.ts';
import { NO_DOMAINS, type DueRecipient } from './types.ts';

/**
 * nextDueAt() answers from memory while no write of ours could have moved it; this bounds how
 * long an edit by another connection (the CLI's retry-now) goes unseen.
 */
const NEXT_DUE_TTL_MS = 1000;

interface DueRow {
  message_id: string;
  recipient: string;
  domain: string;
  attempts: number;
  created_at: number;
  mail_from: string;
  class: MessageClass;
  next_attempt_at: number;
}

/** Due order: next_attempt_at, then queue id (arrival), then recipient: what the lane indexes hold. */
function dueOrder(a: DueRow, b: DueRow): number {
  return a.next_attempt_at - b.next_attempt_at || (a.message_id < b.message_id ? -1 : a.message_id > b.message_id ? 1 : 0) || (a.recipient < b.recipient ? -1 : a.recipient > b.recipient ? 1 : 0);
}

/**
 * Due recipients a claim that skips full domains reads in due order before it walks the other
 * domains instead: enough that a few full domains among many cost nothing extra, few enough to
 * stay a millisecond or two.
 */
const DUE_WINDOW = 500;

export class Claims {
  private readonly q: QueueDb;
  private readonly outcomes: OutcomeWriter;
  /** nextDueAt per lane (no exclusions), while valid: { t }; undefined once forgotten. */
  private readonly nextDue: ({ t: number | undefined } | undefined)[] = MESSAGE_CLASSES.map(() => undefined);
  /**
   * Forgets every cached nextDueAt each NEXT_DUE_TTL_MS (so another connection's edit is seen
   * within that), instead of reading the clock on every call: nextDueAt runs per class on every
   * engine turn and for each message taken at birth, and each performance.now() there was a call
   * and a heap number (issue 13). Unref'd: it keeps no process alive; close() stops it.
   */
  private readonly expiry: NodeJS.Timeout;

  constructor(q: QueueDb, outcomes: OutcomeWriter) {
    this.q = q;
    this.outcomes = outcomes;
    this.expiry = setInterval(() => this.invalidate(), NEXT_DUE_TTL_MS);
    this.expiry.unref();
  }

  close(): void {
    clearInterval(this.expiry);
  }

  /** A write moved (or may have moved) the next due time of a lane, or of every lane. */
  invalidate(lane?: number): void {
    if (lane === undefined) this.nextDue.fill(undefined);
    else this.nextDue[lane] = undefined;
  }

  /**
   * Claims up to `limit` recipients due at `now` (of one class when given), lane by lane, oldest
   * first, marking them inflight. `excludeDomains`: domains the scheduler already holds enough of.
   */
  claimDue(now: number, limit: number, cls?: MessageClass, excludeDomains: readonly string[] = NO_DOMAINS): DueRecipient[] {
    this.outcomes.flushRequeues();
    return this.q.lightTransaction(() => {
      const mark = this.q.stmt(`UPDATE recipients SET state = 'inflight' WHERE message_id = ? AND recipient = ?`);
      const out: DueRecipient[] = [];
      for (const c of cls ? [cls] : MESSAGE_CLASSES) {
        if (out.length >= limit) break;
        const lane = laneOf(c);
        const rows = excludeDomains.length > 0 ? this.dueOutside(lane, now, excludeDomains, limit - out.length) : this.due(lane, now, limit - out.length);
        if (rows.length > 0) this.nextDue[lane] = undefined;
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
   * The lane's due recipients, oldest first. Ties in next_attempt_at (a whole intake batch shares
   * one) go by queue id, i.e. arrival (relay/queue/id.ts), then recipient: the index holds the
   * primary key (message_id, recipient) after next_attempt_at, so no sort of the due backlog is
   * needed.
   */
  private due(lane: number, now: number, limit: number): DueRow[] {
    return this.q.stmt(
      `SELECT r.message_id, r.recipient, r.domain, r.attempts, m.created_at, m.mail_from, m.class, r.next_attempt_at
       FROM recipients r INDEXED BY recipients_lane_due JOIN messages m ON m.id = r.message_id
       WHERE r.state = 'queued' AND r.lane = ? AND r.next_attempt_at <= ?
       ORDER BY r.next_attempt_at, r.message_id, r.recipient LIMIT ?`,
    ).all(lane, now, limit) as unknown as DueRow[];
  }

  /**
   * The lane's due recipients outside some domains (those whose lanes are full), oldest first.
   * Reading the due order past an excluded domain's backlog costs its size (155 ms at 1,000,000
   * queued, bench/README.md): the first DUE_WINDOW due recipients are read that way, which is
   * exact when they hold enough; otherwise the lane's other domains are walked
   * (recipients_lane_domain, a few index seeks per domain with queued mail), each read oldest
   * first, and merged.
   */
  private dueOutside(lane: number, now: number, exclude: readonly string[], limit: number): DueRow[] {
    const excluded = JSON.stringify(exclude);
    // Filtered before the join: only the rows taken look their message up.
    const window = this.q.stmt(
      `SELECT r.message_id, r.recipient, r.domain, r.attempts, m.created_at, m.mail_from, m.class, r.next_attempt_at
       FROM (SELECT * FROM (SELECT message_id, recipient, domain, attempts, next_attempt_at FROM recipients INDEXED BY recipients_lane_due
                            WHERE state = 'queued' AND lane = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, message_id, recipient LIMIT ?)
             WHERE domain NOT IN (SELECT value FROM json_each(?)) ORDER BY next_attempt_at, message_id, recipient LIMIT ?) r
       JOIN messages m ON m.id = r.message_id
       ORDER BY r.next_attempt_at, r.message_id, r.recipient`,
    );
    const counted = this.q.stmt(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM recipients INDEXED BY recipients_lane_due WHERE state = 'queued' AND lane = ? AND next_attempt_at <= ? LIMIT ?)`);
    const first = window.all(lane, now, DUE_WINDOW, excluded, limit) as unknown as DueRow[];
    if (first.length >= limit || (counted.get(lane, now, DUE_WINDOW) as { n: number }).n < DUE_WINDOW) return first;
    const perDomain = this.q.stmt(
      `SELECT r.message_id, r.recipient, r.domain, r.attempts, m.created_at, m.mail_from, m.class, r.next_attempt_at
       FROM recipients r INDEXED BY recipients_lane_domain JOIN messages m ON m.id = r.message_id
       WHERE r.state = 'queued' AND r.lane = ? AND r.domain = ? AND r.next_attempt_at <= ?
       ORDER BY r.next_attempt_at, r.message_id, r.recipient LIMIT ?`,
    );
    const rows: DueRow[] = [];
    for (const domain of this.domains(lane, excluded)) rows.push(...(perDomain.all(lane, domain, now, limit) as unknown as DueRow[]));
    rows.sort(dueOrder);
    return rows.slice(0, limit);
  }

  /** The domains with queued recipients in a lane, but the excluded ones (JSON array): one index seek each. */
  private domains(lane: number, excluded: string): string[] {
    const rows = this.q.stmt(
      `WITH RECURSIVE d(domain) AS (
         SELECT (SELECT MIN(domain) FROM recipients INDEXED BY recipients_lane_domain WHERE state = 'queued' AND lane = ?1)
         UNION ALL
         SELECT (SELECT MIN(domain) FROM recipients INDEXED BY recipients_lane_domain WHERE state = 'queued' AND lane = ?1 AND domain > d.domain)
         FROM d WHERE d.domain IS NOT NULL)
       SELECT domain FROM d WHERE domain IS NOT NULL AND domain NOT IN (SELECT value FROM json_each(?2))`,
    ).all(lane, excluded) as { domain: string }[];
    return rows.map((r) => r.domain);
  }

  /**
   * Puts claimed recipients back, due at the given times, without counting an attempt: the
   * scheduler held them back (suspension, quota, rate), the receiver never saw them.
   */
  postpone(entries: readonly { messageId: string; recipient: string; at: number; reply?: string }[]): void {
    if (entries.length === 0) return;
    this.outcomes.flush();
    this.invalidate();
    this.q.lightTransaction(() => {
      const upd = this.q.stmt(
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
    this.outcomes.flush();
    this.invalidate();
    this.q.lightTransaction(() => {
      const upd = this.q.stmt(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND recipient = ? AND state = 'queued' AND next_attempt_at > ?`);
      for (const e of entries) upd.run(at, e.messageId, e.recipient, at);
    });
  }

  /** Queued recipients last held with a reply starting with `replyPrefix` become due at `at`; one scan; returns how many. */
  releaseHeld(replyPrefix: string, at: number): number {
    this.outcomes.flush();
    this.invalidate();
    const like = `${replyPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const r = this.q.stmt(`UPDATE recipients SET next_attempt_at = ? WHERE state = 'queued' AND next_attempt_at > ? AND last_reply LIKE ? ESCAPE '\\'`).run(at, at, like);
    return Number(r.changes);
  }

  /**
   * Earliest time a queued recipient (of one class when given) becomes due, or undefined when
   * nothing waits. Per class without exclusions (once per class per engine loop turn) it is
   * answered from memory while nothing of ours could have moved it: every write that adds,
   * claims or requeues a queued recipient forgets it, and NEXT_DUE_TTL_MS bounds how long another
   * connection's edit goes unseen.
   */
  nextDueAt(cls?: MessageClass, excludeDomains: readonly string[] = NO_DOMAINS): number | undefined {
    const cacheable = cls !== undefined && excludeDomains.length === 0;
    if (cacheable) {
      const c = this.nextDue[laneOf(cls)];
      if (c) return c.t;
    }
    this.outcomes.flushRequeues();
    if (cls === undefined) {
      const each = MESSAGE_CLASSES.map((c) => this.nextDueAt(c, excludeDomains)).filter((t): t is number => t !== undefined);
      return each.length > 0 ? Math.min(...each) : undefined;
    }
    const lane = laneOf(cls);
    let t: number | undefined;
    if (excludeDomains.length > 0) {
      // Per domain (one seek each), not a read past the excluded domains' backlog.
      const min = this.q.stmt(`SELECT MIN(next_attempt_at) AS t FROM recipients INDEXED BY recipients_lane_domain WHERE state = 'queued' AND lane = ? AND domain = ?`);
      for (const d of this.domains(lane, JSON.stringify(excludeDomains))) {
        const x = (min.get(lane, d) as { t: number | null }).t;
        if (x !== null && (t === undefined || x < t)) t = x;
      }
    } else {
      const row = this.q.stmt(`SELECT MIN(next_attempt_at) AS t FROM recipients INDEXED BY recipients_lane_due WHERE state = 'queued' AND lane = ?`).get(lane) as { t: number | null };
      t = row.t ?? undefined;
    }
    // Not cached while an outcome transaction keeps failing: what it would requeue is not counted yet.
    if (cacheable && !this.outcomes.requeuesPending) this.nextDue[lane] = { t };
    return t;
  }
}
