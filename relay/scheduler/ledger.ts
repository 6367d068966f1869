// Durable shaping state in the queue's own SQLite file, in tables of its own (created by
// relay/queue/schema.ts, migrations 3 and 5): warm-up counters and the recipients each IP sent per
// UTC day (a restart must not hand an IP a fresh quota) and suspensions/throttles (a restart must not
// resume sending to Yahoo an hour into a TS04 pause). synchronous=NORMAL on this connection: in
// WAL mode that survives a process crash, and a power loss costs at most a few counts.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openQueueDb } from '../queue/schema.ts';
import { immediateTransaction } from '../sqlite.ts';
import type { Counter, Window } from './quota.ts';

export interface Restriction {
  ip: string;
  provider: string;
  action: 'suspend' | 'throttle';
  until: number;
  messagesPerMinute: number;
  maxConnections: number;
  reason: string;
}

export class ShapingLedger {
  private readonly db: DatabaseSync;
  private readonly upsertCounter: StatementSync;
  private readonly upsertRestriction: StatementSync;
  private readonly upsertDay: StatementSync;
  private readonly pendingCounters = new Map<string, { ip: string; provider: string; window: Window; counter: Counter }>();
  private readonly pendingDays = new Map<string, { ip: string; day: number; sent: number }>();
  private flushScheduled = false;
  /** Pending counters could not be written (they are kept and tried again). */
  onError: ((err: Error) => void) | undefined;

  constructor(queueDbPath: string, options: { readOnly?: boolean } = {}) {
    this.db = openQueueDb(queueDbPath, { pragmas: ['synchronous=NORMAL'], ...options });
    this.upsertCounter = this.db.prepare(
      `INSERT INTO shaping_counters (ip, provider, window, start, count) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (ip, provider, window) DO UPDATE SET start = excluded.start, count = excluded.count`,
    );
    this.upsertDay = this.db.prepare(
      `INSERT INTO warmup_days (ip, day, sent) VALUES (?, ?, ?) ON CONFLICT (ip, day) DO UPDATE SET sent = excluded.sent`,
    );
    this.upsertRestriction = this.db.prepare(
      `INSERT INTO shaping_restrictions (ip, provider, action, until, messages_per_minute, max_connections, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (ip, provider) DO UPDATE SET action = excluded.action, until = excluded.until,
         messages_per_minute = excluded.messages_per_minute, max_connections = excluded.max_connections, reason = excluded.reason`,
    );
  }

  counters(): { ip: string; provider: string; window: Window; counter: Counter }[] {
    return (this.db.prepare(`SELECT ip, provider, window, start, count FROM shaping_counters`).all() as unknown as { ip: string; provider: string; window: Window; start: number; count: number }[])
      .map((r) => ({ ip: r.ip, provider: r.provider, window: r.window, counter: { start: r.start, count: r.count } }));
  }

  /** Recipients sent per IP and UTC day. */
  sentPerDay(): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    for (const r of this.db.prepare(`SELECT ip, day, sent FROM warmup_days`).all() as unknown as { ip: string; day: number; sent: number }[]) {
      const m = out.get(r.ip) ?? new Map<number, number>();
      m.set(r.day, r.sent);
      out.set(r.ip, m);
    }
    return out;
  }

  /**
   * Counters are written with the event-loop turn, not with each booking: a warming IP's every
   * attempt was a transaction of its own (a commit per message). The latest value per row wins, so
   * a turn's bookings are one upsert per row; a kill -9 loses at most that turn's counts.
   */
  saveCounters(rows: { ip: string; provider: string; window: Window; counter: Counter }[], days: { ip: string; day: number; sent: number }[] = []): void {
    for (const r of rows) this.pendingCounters.set(`${r.ip}\0${r.provider}\0${r.window}`, r);
    for (const d of days) this.pendingDays.set(`${d.ip}\0${d.day}`, d);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Writes the pending counters now. A failure keeps them for the next try (onError says so). */
  flush(): void {
    if (this.pendingCounters.size === 0 && this.pendingDays.size === 0) return;
    const counters = [...this.pendingCounters.values()];
    const days = [...this.pendingDays.values()];
    try {
      immediateTransaction(this.db, () => {
        for (const r of counters) this.upsertCounter.run(r.ip, r.provider, r.window, r.counter.start, r.counter.count);
        for (const d of days) this.upsertDay.run(d.ip, d.day, d.sent);
      });
    } catch (err) {
      if (!this.db.isOpen) return;
      // Kept (newer bookings overwrite them) and written with the next turn that books.
      this.onError?.(err as Error);
      return;
    }
    // Rows booked again meanwhile cannot be: this runs synchronously.
    this.pendingCounters.clear();
    this.pendingDays.clear();
  }

  restrictions(now: number): Restriction[] {
    return (this.db.prepare(`SELECT * FROM shaping_restrictions WHERE until > ? ORDER BY until`).all(now) as unknown as {
      ip: string; provider: string; action: 'suspend' | 'throttle'; until: number; messages_per_minute: number; max_connections: number; reason: string;
    }[]).map((r) => ({ ip: r.ip, provider: r.provider, action: r.action, until: r.until, messagesPerMinute: r.messages_per_minute, maxConnections: r.max_connections, reason: r.reason }));
  }

  saveRestriction(r: Restriction): void {
    this.upsertRestriction.run(r.ip, r.provider, r.action, r.until, r.messagesPerMinute, r.maxConnections, r.reason);
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}

/** Current suspensions and throttles of a relay's queue, for `mailfleet queue suspensions`; [] when none were ever recorded. */
export function readRestrictions(queueDbPath: string, now: number): Restriction[] {
  let ledger: ShapingLedger | undefined;
  try {
    ledger = new ShapingLedger(queueDbPath, { readOnly: true });
    return ledger.restrictions(now);
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return [];
    throw err;
  } finally {
    ledger?.close();
  }
}
