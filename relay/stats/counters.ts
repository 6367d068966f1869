// Durable delivery counters per UTC hour × source IP × provider × sending domain × class, in the
// queue's SQLite file (tables of their own, one connection of their own like the shaping ledger).
// Increments are summed in memory and written once a second (and at stop): one small transaction
// per second whatever the rate; a process crash loses at most that second's counts, never mail.
// synchronous=NORMAL: in WAL mode a process crash loses nothing written; a power loss a few counts.
// Hours older than RETAIN_HOURS are dropped (the operator keeps its own windows: operator/observe).
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';
import { COUNT_FIELDS, MESSAGE_CLASSES, emptyCounts, type CountField, type Counts, type StatsBucket } from './contract.ts';
import { immediateTransaction } from '../sqlite.ts';

export const HOUR_MS = 3_600_000;
/** Hours kept, the current one included: 24 h windows plus a day of slack for a reader that was away. */
export const RETAIN_HOURS = 48;

const COLUMNS: Record<CountField, string> = {
  attempted: 'attempted', delivered: 'delivered', deferred: 'deferred', deferredPolicy: 'deferred_policy',
  deferredRateLimited: 'deferred_rate_limited', bouncedHard: 'bounced_hard', bouncedSoft: 'bounced_soft',
  bouncedPolicy: 'bounced_policy', bouncedRateLimited: 'bounced_rate_limited', complained: 'complained', suppressed: 'suppressed',
};

/** DDL of the counters' tables (one function, so a schema module can own every table's DDL). */
export function deliveryStatsSchema(): string {
  return `
CREATE TABLE IF NOT EXISTS delivery_stats (
  hour INTEGER NOT NULL,
  ip TEXT NOT NULL,
  provider TEXT NOT NULL,
  domain TEXT NOT NULL,
  class TEXT NOT NULL,
  ${COUNT_FIELDS.map((f) => `${COLUMNS[f]} INTEGER NOT NULL DEFAULT 0`).join(',\n  ')},
  PRIMARY KEY (hour, ip, provider, domain, class)
) STRICT;
CREATE TABLE IF NOT EXISTS delivery_stats_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`;
}

export interface CounterKey {
  ip: string;
  provider: string;
  domain: string;
  class: StatsBucket['class'];
}

export class DeliveryCounters {
  readonly instance: string;
  readonly instanceCreated: number;
  private readonly db: DatabaseSync;
  private readonly upsert: StatementSync;
  private readonly clock: () => number;
  private pending = new Map<string, { hour: number; key: CounterKey; counts: Counts }>();
  private timer: NodeJS.Timeout | undefined;
  private prunedHour = 0;
  /** Called when a flush fails (the counts stay pending and are tried again). */
  onError: (err: Error) => void = () => {};

  constructor(queueDbPath: string, options: { clock?: () => number; flushMs?: number } = {}) {
    this.clock = options.clock ?? Date.now;
    this.db = new DatabaseSync(queueDbPath, { timeout: 5000 });
    this.db.exec('PRAGMA synchronous=NORMAL');
    // The queue's migration 6 made these tables (relay/queue/schema.ts); IF NOT EXISTS keeps a
    // counters file opened on its own (tests, tools) usable.
    this.db.exec(deliveryStatsSchema());
    // The store's identity: made once with the tables, so only a new volume brings a new one.
    this.db.prepare(`INSERT OR IGNORE INTO delivery_stats_meta (key, value) VALUES ('instance', ?), ('created', ?)`).run(randomUUID(), String(this.clock()));
    const meta = new Map((this.db.prepare(`SELECT key, value FROM delivery_stats_meta`).all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    this.instance = meta.get('instance')!;
    this.instanceCreated = Number(meta.get('created'));
    const cols = COUNT_FIELDS.map((f) => COLUMNS[f]);
    this.upsert = this.db.prepare(
      `INSERT INTO delivery_stats (hour, ip, provider, domain, class, ${cols.join(', ')}) VALUES (?, ?, ?, ?, ?, ${cols.map(() => '?').join(', ')})
       ON CONFLICT (hour, ip, provider, domain, class) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
    );
    const flushMs = options.flushMs ?? 1000;
    this.timer = setInterval(() => this.flushQuietly(), flushMs);
    this.timer.unref();
  }

  /** Adds to the counters of the current hour. */
  add(key: CounterKey, fields: readonly CountField[], n = 1): void {
    const hour = Math.floor(this.clock() / HOUR_MS) * HOUR_MS;
    const id = `${hour}\0${key.ip}\0${key.provider}\0${key.domain}\0${key.class}`;
    let p = this.pending.get(id);
    if (!p) this.pending.set(id, (p = { hour, key: { ...key }, counts: emptyCounts() }));
    for (const f of fields) p.counts[f] += n;
  }

  private flushQuietly(): void {
    try {
      this.flush();
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Writes pending increments in one transaction; on failure they stay pending. */
  flush(): void {
    const now = this.clock();
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    if (this.pending.size === 0 && this.prunedHour === hour) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      immediateTransaction(this.db, () => {
        for (const r of batch.values()) this.upsert.run(r.hour, r.key.ip, r.key.provider, r.key.domain, r.key.class, ...COUNT_FIELDS.map((f) => r.counts[f]));
        if (this.prunedHour !== hour) this.db.prepare(`DELETE FROM delivery_stats WHERE hour < ?`).run(hour - (RETAIN_HOURS - 1) * HOUR_MS);
      });
    } catch (err) {
      // Put the batch back (merged with what arrived meanwhile) for the next flush.
      for (const [id, r] of batch) {
        const cur = this.pending.get(id);
        if (cur) for (const f of COUNT_FIELDS) cur.counts[f] += r.counts[f];
        else this.pending.set(id, r);
      }
      throw err;
    }
    this.prunedHour = hour;
  }

  /** Every non-empty hour from `fromMs` on (pending increments included), oldest first. */
  buckets(fromMs: number): StatsBucket[] {
    this.flushQuietly();
    const from = Math.floor(fromMs / HOUR_MS) * HOUR_MS;
    const rows = this.db.prepare(`SELECT * FROM delivery_stats WHERE hour >= ? ORDER BY hour, ip, provider, domain, class`).all(from) as Record<string, number | string>[];
    const out = new Map<string, StatsBucket>();
    const keyOf = (hour: number, k: CounterKey) => `${hour}\0${k.ip}\0${k.provider}\0${k.domain}\0${k.class}`;
    for (const r of rows) {
      const b = {
        hour: new Date(r.hour as number).toISOString(), ip: r.ip as string, provider: r.provider as string, domain: r.domain as string,
        class: (MESSAGE_CLASSES as readonly string[]).includes(r.class as string) ? (r.class as StatsBucket['class']) : 'transactional',
        ...(Object.fromEntries(COUNT_FIELDS.map((f) => [f, Number(r[COLUMNS[f]])])) as Counts),
      };
      out.set(keyOf(r.hour as number, b), b);
    }
    // Counts a failed flush left pending still show (the reader must never see a count go down).
    for (const p of this.pending.values()) {
      if (p.hour < from) continue;
      const id = keyOf(p.hour, p.key);
      const b = out.get(id) ?? { hour: new Date(p.hour).toISOString(), ...p.key, ...emptyCounts() };
      for (const f of COUNT_FIELDS) b[f] += p.counts[f];
      out.set(id, b);
    }
    return [...out.values()].sort((a, b) => a.hour.localeCompare(b.hour));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flushQuietly();
    this.db.close();
  }
}
