// What an administrator (the CLI, the metrics scrape, tests) reads and changes in the queue:
// listings, one message, counts, delete and retry-now. Reads write pending outcomes first, so
// they see every outcome recorded so far.
import type { QueueDb } from './db.ts';
import type { OutcomeWriter } from './outcomes.ts';
import type { Claims } from './claims.ts';
import type { MessageClass, MessageSummary, RecipientState } from './types.ts';
import { StoredBody } from './body-parts.ts';
import type { FreshBodies } from './fresh-bodies.ts';

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

const MESSAGE_COLUMNS = 'id, created_at, mail_from, size, class, message_id, auth_user, client_address';

export class QueueAdmin {
  private readonly q: QueueDb;
  private readonly outcomes: OutcomeWriter;
  private readonly claims: Claims;
  private readonly clock: () => number;

  /** Bodies of mail taken at birth, for delivery's first read (fresh-bodies.ts). */
  private readonly fresh: FreshBodies | undefined;

  constructor(q: QueueDb, outcomes: OutcomeWriter, claims: Claims, clock: () => number, fresh?: FreshBodies) {
    this.q = q;
    this.fresh = fresh;
    this.outcomes = outcomes;
    this.claims = claims;
    this.clock = clock;
  }

  list(options: { limit?: number; state?: RecipientState } = {}): MessageSummary[] {
    this.outcomes.flush();
    const rows = this.q.db
      .prepare(
        `SELECT ${MESSAGE_COLUMNS} FROM messages
         ${options.state ? 'WHERE id IN (SELECT message_id FROM recipients WHERE state = ?)' : ''}
         ORDER BY created_at, id LIMIT ?`,
      )
      .all(...(options.state ? [options.state] : []), options.limit ?? 1000) as unknown as MessageRow[];
    return rows.map((r) => this.summarize(r));
  }

  get(id: string): MessageSummary | undefined {
    this.outcomes.flush();
    const row = this.q.db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`).get(id) as MessageRow | undefined;
    return row ? this.summarize(row) : undefined;
  }

  /** The stored message's size in bytes, without reading it (relay/delivery/body-memory.ts). */
  size(id: string): number | undefined {
    return (this.q.stmt(`SELECT size FROM messages WHERE id = ?`).get(id) as { size: number } | undefined)?.size;
  }

  /**
   * The stored message as the delivery engine reads it before each attempt: mail taken at birth
   * from memory the first time (fresh-bodies.ts), small mail whole (one row, one read), a body
   * stored in parts as a reader of its parts (relay/queue/body-parts.ts).
   */
  open(id: string): Buffer | StoredBody | undefined {
    const fresh = this.fresh?.take(id);
    if (fresh) return Buffer.isBuffer(fresh) ? fresh : Buffer.from(fresh.buffer, fresh.byteOffset, fresh.byteLength);
    return this.read(id);
  }

  /** The stored message in one Buffer, however it is stored (administration and tests; delivery uses open()). */
  body(id: string): Buffer | undefined {
    const b = this.read(id);
    return b instanceof StoredBody ? b.whole() : b;
  }

  private read(id: string): Buffer | StoredBody | undefined {
    const row = this.q.stmt(`SELECT body, size, parts FROM messages WHERE id = ?`).get(id) as { body: Uint8Array; size: number; parts: number } | undefined;
    if (!row) return undefined;
    if (row.parts === 0) return Buffer.from(row.body.buffer, row.body.byteOffset, row.body.byteLength);
    const read = this.q.stmt(`SELECT data FROM body_parts WHERE message_id = ? AND seq = ?`);
    return new StoredBody(row.size, row.parts, (seq) => (read.get(id, seq) as { data: Uint8Array } | undefined)?.data);
  }

  private summarize(r: MessageRow): MessageSummary {
    const recipients = (this.q.db
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
    this.outcomes.flush();
    this.claims.invalidate();
    this.fresh?.forget(id);
    return Number(this.q.db.prepare(`DELETE FROM messages WHERE id = ?`).run(id).changes) > 0;
  }

  /** Makes every waiting recipient of a message due now; returns how many were rescheduled. */
  retryNow(id: string): number {
    this.outcomes.flush();
    this.claims.invalidate();
    return Number(
      this.q.db.prepare(`UPDATE recipients SET next_attempt_at = ? WHERE message_id = ? AND state = 'queued'`).run(this.clock(), id).changes,
    );
  }

  /** suppressed is present only while such rows exist (a message with other recipients still open). */
  counts(): Record<Exclude<RecipientState, 'suppressed'>, number> & { suppressed?: number } {
    this.outcomes.flush();
    const out: Record<Exclude<RecipientState, 'suppressed'>, number> & { suppressed?: number } = { queued: 0, inflight: 0, delivered: 0, bounced: 0 };
    for (const row of this.q.db.prepare(`SELECT state, COUNT(*) AS n FROM recipients GROUP BY state`).all() as unknown as { state: RecipientState; n: number }[]) {
      out[row.state] = row.n;
    }
    return out;
  }

  /**
   * Recipients not yet final (queued or inflight) and the acceptance time of the oldest, per
   * class: the queue depth and oldest-age gauges, read at scrape time.
   */
  backlogByClass(): { class: MessageClass; recipients: number; oldestCreatedAt: number }[] {
    this.outcomes.flush();
    return (this.q.db
      .prepare(`SELECT m.class AS class, COUNT(*) AS n, MIN(m.created_at) AS oldest FROM recipients r JOIN messages m ON m.id = r.message_id
                WHERE r.state IN ('queued', 'inflight') GROUP BY m.class`)
      .all() as unknown as { class: MessageClass; n: number; oldest: number }[]).map((r) => ({ class: r.class, recipients: r.n, oldestCreatedAt: r.oldest }));
  }

  messageCount(): number {
    this.outcomes.flush();
    return (this.q.db.prepare(`SELECT COUNT(*) AS n FROM messages`).get() as { n: number }).n;
  }
}
