// Events of the mail this relay handled, durably: the tracking API reads them, and the webhook
// outbox (relay/events/webhooks.ts) delivers them. One row per event, unique by (queue id, id)
// (relay/events/ids.ts): recording the same event twice (a journal replayed after a kill -9, a report
// received twice) is one event, and a webhook retry carries the same id.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { immediateTransaction } from '../sqlite.ts';

export { eventId, newEventId } from './ids.ts';

export const EVENT_TYPES = ['accepted', 'delivered', 'deferred', 'bounced', 'complained', 'suppressed', 'unsubscribed', 'expired'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface MailEvent {
  /** Unique, and kept: a webhook retry or a replay carries the same id (relay/events/ids.ts). */
  id: string;
  type: EventType;
  /** ISO 8601 time of the event. */
  at: string;
  queueId: string | null;
  messageId: string | null;
  recipient: string | null;
  sendingDomain: string | null;
  ip: string | null;
  provider: string | null;
  class: string | null;
  /** The SMTP reply, or the report (DSN status and diagnostic, ARF feedback type). */
  reply: string | null;
  category: string | null;
  /** X-Mailfleet-Tag values the submitter set (removed from the message before sending). */
  tags: string[];
  /** Which relay recorded it. */
  relay: string;
}

/**
 * The events table. An event is unique by (queue id, id), not by id alone: ids of reports are
 * hashes and each process's own ids start with a random prefix, so an index on them alone takes
 * inserts to random pages, and under load those page writes were
 * most of the cost of recording events; queue ids grow with time, so this index is appended to
 * (and serves the lookups by queue id as well). `queue_id` is '' for an event about no message of ours.
 */
const EVENTS_TABLE = `CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  queue_id TEXT NOT NULL,
  message_id TEXT,
  recipient TEXT,
  sending_domain TEXT,
  body TEXT NOT NULL,
  UNIQUE (queue_id, id)
) STRICT;`;

/** A database from before EVENTS_TABLE (id UNIQUE on its own) gets its events copied over once. */
function migrateEventsTable(db: DatabaseSync): void {
  const row = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'`).get() as { sql: string } | undefined;
  if (!row || row.sql.includes('UNIQUE (queue_id, id)')) return;
  immediateTransaction(db, () => {
    db.exec(`ALTER TABLE events RENAME TO events_v0;
${EVENTS_TABLE}
INSERT INTO events (seq, id, type, at, queue_id, message_id, recipient, sending_domain, body)
  SELECT seq, id, type, at, COALESCE(queue_id, ''), message_id, recipient, sending_domain, body FROM events_v0 ORDER BY seq;
DROP TABLE events_v0;`);
  });
}

export function createEventTables(db: DatabaseSync): void {
  migrateEventsTable(db);
  db.exec(`
${EVENTS_TABLE}
CREATE INDEX IF NOT EXISTS events_message_id ON events (message_id);
CREATE INDEX IF NOT EXISTS events_recipient ON events (recipient);
-- Not indexed by time: purge() finds old events by seq (see there). Each index is a page more
-- in every events commit (bench/README.md, events write cost).
DROP INDEX IF EXISTS events_at;
CREATE TABLE IF NOT EXISTS event_tags (
  tag TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (tag, seq)
) STRICT, WITHOUT ROWID;
-- What later events of a message need to know (tags, Message-ID, class, sending domain), as
-- relays before 2026-12-07 kept it. It is read for their messages and purged; nothing writes it now:
-- a message's accepted event says the same (EventStore.message).
CREATE TABLE IF NOT EXISTS event_messages (
  queue_id TEXT PRIMARY KEY,
  message_id TEXT,
  sending_domain TEXT,
  class TEXT,
  tags TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
-- Events waiting for a webhook (per sending domain), and those given up on.
CREATE TABLE IF NOT EXISTS webhook_outbox (
  domain TEXT NOT NULL,
  seq INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  next_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  PRIMARY KEY (domain, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (domain, next_at);
CREATE TABLE IF NOT EXISTS webhook_dead (
  domain TEXT NOT NULL,
  seq INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  dead_at INTEGER NOT NULL,
  last_error TEXT,
  PRIMARY KEY (domain, seq)
) STRICT, WITHOUT ROWID;
-- Events not yet copied to PostgreSQL (only written when one is configured).
CREATE TABLE IF NOT EXISTS event_fleet_outbox (
  seq INTEGER PRIMARY KEY
) STRICT;
`);
}

export interface MessageMeta {
  queueId: string;
  messageId: string | null;
  sendingDomain: string | null;
  class: string | null;
  tags: string[];
}

export interface EventQuery {
  queueId?: string | undefined;
  messageId?: string | undefined;
  recipient?: string | undefined;
  tag?: string | undefined;
  /** Events after this sequence number (tail). */
  afterSeq?: number | undefined;
  limit?: number | undefined;
}

export interface OutboxRow {
  domain: string;
  seq: number;
  firstAt: number;
  attempts: number;
  event: MailEvent;
}

export class EventStore {
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  /** Whether recorded events are queued for PostgreSQL. */
  readonly fleet: boolean;

  constructor(db: DatabaseSync, options: { fleet: boolean }) {
    this.db = db;
    this.fleet = options.fleet;
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * What later events of a message need to know: its accepted event carries it (every accepted
   * message has one per recipient), found through the (queue_id, id) index. Messages recorded by
   * older relays have an event_messages row instead.
   */
  message(queueId: string): MessageMeta | undefined {
    const e = this.stmt(`SELECT body FROM events WHERE queue_id = ? AND type = 'accepted' LIMIT 1`).get(queueId) as { body: string } | undefined;
    if (e) {
      const a = JSON.parse(e.body) as MailEvent;
      return { queueId, messageId: a.messageId, sendingDomain: a.sendingDomain, class: a.class, tags: a.tags };
    }
    const r = this.stmt(`SELECT * FROM event_messages WHERE queue_id = ?`).get(queueId) as { queue_id: string; message_id: string | null; sending_domain: string | null; class: string | null; tags: string } | undefined;
    return r ? { queueId: r.queue_id, messageId: r.message_id, sendingDomain: r.sending_domain, class: r.class, tags: JSON.parse(r.tags) } : undefined;
  }

  /**
   * Records events (once each: a known id is ignored) and queues them for the webhook of their
   * sending domain when `webhookDomains` has it. Returns the events that were new. `bodies[i]`,
   * when given, is JSON.stringify(events[i]) already made (the event journal's line).
   */
  record(events: readonly MailEvent[], webhookDomains: ReadonlySet<string>, now: number, bodies?: readonly string[]): MailEvent[] {
    const fresh: MailEvent[] = [];
    if (events.length === 0) return fresh;
    const ins = this.stmt(`INSERT OR IGNORE INTO events (id, type, at, queue_id, message_id, recipient, sending_domain, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    const tag = this.stmt(`INSERT OR IGNORE INTO event_tags (tag, seq) VALUES (?, ?)`);
    const out = this.stmt(`INSERT OR IGNORE INTO webhook_outbox (domain, seq, first_at, next_at) VALUES (?, ?, ?, ?)`);
    const fleet = this.stmt(`INSERT OR IGNORE INTO event_fleet_outbox (seq) VALUES (?)`);
    // Events of a batch share their times (one per millisecond at most): each parsed once.
    let atText = '';
    let atMs = NaN;
    this.transaction(() => {
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (e.at !== atText) atMs = Date.parse((atText = e.at));
        // run(), not RETURNING: an ignored duplicate changes nothing, a new row's seq is its rowid.
        const r = ins.run(e.id, e.type, atMs, e.queueId ?? '', e.messageId, e.recipient, e.sendingDomain, bodies?.[i] ?? JSON.stringify(e));
        if (r.changes === 0) continue;
        const seq = Number(r.lastInsertRowid);
        fresh.push(e);
        for (const t of e.tags) tag.run(t, seq);
        if (e.sendingDomain && webhookDomains.has(e.sendingDomain)) out.run(e.sendingDomain, seq, now, now);
        if (this.fleet) fleet.run(seq);
      }
    });
    return fresh;
  }

  query(q: EventQuery): (MailEvent & { seq: number })[] {
    const parts: string[] = [];
    const params: (string | number)[] = [];
    if (q.queueId) (parts.push('e.queue_id = ?'), params.push(q.queueId));
    if (q.messageId) (parts.push('e.message_id = ?'), params.push(q.messageId.replace(/^<|>$/g, '')));
    if (q.recipient) (parts.push('e.recipient = ?'), params.push(q.recipient.toLowerCase()));
    if (q.tag) (parts.push('e.seq IN (SELECT seq FROM event_tags WHERE tag = ?)'), params.push(q.tag));
    if (q.afterSeq !== undefined) (parts.push('e.seq > ?'), params.push(q.afterSeq));
    const sql = `SELECT seq, body FROM events e ${parts.length ? `WHERE ${parts.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    return (this.db.prepare(sql).all(...params, q.limit ?? 1000) as unknown as { seq: number; body: string }[]).map((r) => ({ ...JSON.parse(r.body), seq: r.seq }));
  }

  /**
   * Forgets events older than `cutoff` (and what was kept for their messages), at most `limit` per
   * call so a big purge never holds the database for long; events still owed to a webhook or to
   * PostgreSQL stay. Returns how many went.
   */
  purge(cutoff: number, limit = 10_000): number {
    const below = this.firstSeqAtOrAfter(cutoff);
    return this.transaction(() => {
      const old = `SELECT seq FROM events WHERE seq < ? AND at < ? AND seq NOT IN (SELECT seq FROM webhook_outbox) AND seq NOT IN (SELECT seq FROM event_fleet_outbox) ORDER BY seq LIMIT ?`;
      this.stmt(`DELETE FROM event_tags WHERE seq IN (${old})`).run(below, cutoff, limit);
      const n = Number(this.stmt(`DELETE FROM events WHERE seq IN (${old})`).run(below, cutoff, limit).changes);
      this.stmt(`DELETE FROM event_messages WHERE queue_id IN (SELECT queue_id FROM event_messages WHERE at < ? LIMIT ?)`).run(cutoff, limit);
      this.stmt(`DELETE FROM webhook_dead WHERE dead_at < ?`).run(cutoff);
      return n;
    });
  }

  /**
   * The first seq whose event is at or after `t` (one past the last seq when none is): events are
   * appended in time order, so a binary search over seq by rowid lookups replaces an index on
   * `at` that every insert paid for. An event recorded with an older time (a late report) after
   * newer ones is purged once the boundary passes it.
   */
  private firstSeqAtOrAfter(t: number): number {
    const bounds = this.stmt(`SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM events`).get() as { lo: number | null; hi: number | null };
    if (bounds.lo === null || bounds.hi === null) return 0;
    const atFrom = this.stmt(`SELECT seq, at FROM events WHERE seq >= ? ORDER BY seq LIMIT 1`);
    let lo = bounds.lo;
    let hi = bounds.hi + 1;
    // Invariant: every event before lo is older than t; the event at or after hi is not (or none).
    while (lo < hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const r = atFrom.get(mid) as { seq: number; at: number } | undefined;
      if (!r || r.seq >= hi) hi = mid;
      else if (r.at < t) lo = r.seq + 1;
      else hi = mid;
    }
    return lo;
  }

  // ---- webhook outbox ----

  /** Domains with events due for their webhook at `now`. */
  dueDomains(now: number): string[] {
    return (this.stmt(`SELECT DISTINCT domain FROM webhook_outbox WHERE next_at <= ?`).all(now) as unknown as { domain: string }[]).map((r) => r.domain);
  }

  nextDueAt(): number | undefined {
    return (this.stmt(`SELECT MIN(next_at) AS t FROM webhook_outbox`).get() as { t: number | null }).t ?? undefined;
  }

  due(domain: string, now: number, limit: number): OutboxRow[] {
    return (this.stmt(
      `SELECT o.domain, o.seq, o.first_at, o.attempts, e.body FROM webhook_outbox o JOIN events e ON e.seq = o.seq
       WHERE o.domain = ? AND o.next_at <= ? ORDER BY o.seq LIMIT ?`,
    ).all(domain, now, limit) as unknown as { domain: string; seq: number; first_at: number; attempts: number; body: string }[])
      .map((r) => ({ domain: r.domain, seq: r.seq, firstAt: r.first_at, attempts: r.attempts, event: JSON.parse(r.body) }));
  }

  delivered(domain: string, seqs: readonly number[]): void {
    this.transaction(() => {
      const del = this.stmt(`DELETE FROM webhook_outbox WHERE domain = ? AND seq = ?`);
      for (const s of seqs) del.run(domain, s);
    });
  }

  /** A failed batch: each row again at its own time, or to the dead letters when `dead(row)`. */
  failed(domain: string, rows: readonly OutboxRow[], error: string, now: number, nextAt: (attempts: number) => number, dead: (row: OutboxRow) => boolean): number {
    let deadCount = 0;
    this.transaction(() => {
      const upd = this.stmt(`UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE domain = ? AND seq = ?`);
      const del = this.stmt(`DELETE FROM webhook_outbox WHERE domain = ? AND seq = ?`);
      const bury = this.stmt(`INSERT OR REPLACE INTO webhook_dead (domain, seq, attempts, dead_at, last_error) VALUES (?, ?, ?, ?, ?)`);
      for (const r of rows) {
        if (dead(r)) {
          del.run(domain, r.seq);
          bury.run(domain, r.seq, r.attempts + 1, now, error);
          deadCount++;
        } else upd.run(nextAt(r.attempts + 1), error, domain, r.seq);
      }
    });
    return deadCount;
  }

  outboxStats(now: number): { pending: number; oldestAgeSeconds: number; dead: number } {
    const o = this.stmt(`SELECT COUNT(*) AS n, MIN(first_at) AS oldest FROM webhook_outbox`).get() as { n: number; oldest: number | null };
    const d = this.stmt(`SELECT COUNT(*) AS n FROM webhook_dead`).get() as { n: number };
    return { pending: o.n, oldestAgeSeconds: o.oldest === null ? 0 : Math.max(0, (now - o.oldest) / 1000), dead: d.n };
  }

  // ---- fleet (PostgreSQL) outbox ----

  fleetOutbox(limit: number): (MailEvent & { seq: number })[] {
    return (this.stmt(`SELECT e.seq, e.body FROM event_fleet_outbox o JOIN events e ON e.seq = o.seq ORDER BY o.seq LIMIT ?`).all(limit) as unknown as { seq: number; body: string }[])
      .map((r) => ({ ...JSON.parse(r.body), seq: r.seq }));
  }

  fleetOutboxSize(): number {
    return (this.stmt(`SELECT COUNT(*) AS n FROM event_fleet_outbox`).get() as { n: number }).n;
  }

  fleetDone(upToSeq: number): void {
    this.stmt(`DELETE FROM event_fleet_outbox WHERE seq <= ?`).run(upToSeq);
  }

  transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    return immediateTransaction(this.db, fn);
  }
}
