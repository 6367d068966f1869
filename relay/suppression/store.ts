// The relay's own copy of the suppression list, in SQLite (relay/feedback/db.ts opens the file).
// Every lookup the delivery engine makes is answered here, never over the network. Entries this
// relay records are also written to an outbox in the same transaction; relay/suppression/fleet.ts
// pushes the outbox to PostgreSQL when one is configured and pulls everyone else's entries in.
// Without PostgreSQL the outbox is not written and this table is the list (mailfleet dev).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { MessageClass } from '../queue/store.ts';
import { immediateTransaction } from '../sqlite.ts';
import { AddressFilter } from './filter.ts';
import {
  blockingEntry, FLEET_SCOPE, normaliseAddress, type SoftHistory, type SuppressionEntry, type SuppressionPolicy, type SuppressionReason,
} from './rules.ts';

/**
 * Every table of the suppression list. The relay's schema owner calls this once per database;
 * IF NOT EXISTS makes it safe to call again.
 */
export function createSuppressionTables(db: DatabaseSync): void {
  db.exec(`
CREATE TABLE IF NOT EXISTS suppressions (
  address TEXT NOT NULL,
  scope TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  source_queue_id TEXT,
  source_event_id TEXT,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (address, scope)
) STRICT, WITHOUT ROWID;
-- Entries recorded or removed here and not yet in PostgreSQL (only written when one is configured).
CREATE TABLE IF NOT EXISTS suppression_outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  op TEXT NOT NULL,
  entry TEXT NOT NULL
) STRICT;
-- Soft bounces in a row per address and scope (this relay's own; reset by a delivery).
CREATE TABLE IF NOT EXISTS suppression_soft (
  address TEXT NOT NULL,
  scope TEXT NOT NULL,
  count INTEGER NOT NULL,
  first_at INTEGER NOT NULL,
  PRIMARY KEY (address, scope)
) STRICT, WITHOUT ROWID;
-- The last PostgreSQL sequence number applied here, per synced table.
CREATE TABLE IF NOT EXISTS fleet_sync (
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) STRICT;
`);
}

export interface SuppressionRow {
  address: string;
  scope: string;
  reason: SuppressionReason;
  detail: string;
  source_queue_id: string | null;
  source_event_id: string | null;
  first_seen: number;
  last_seen: number;
  expires_at: number | null;
}

export function rowToEntry(r: SuppressionRow): SuppressionEntry {
  return {
    address: r.address, scope: r.scope, reason: r.reason, detail: r.detail, sourceQueueId: r.source_queue_id,
    sourceEventId: r.source_event_id, firstSeen: r.first_seen, lastSeen: r.last_seen, expiresAt: r.expires_at,
  };
}

export type OutboxOp = { id: number; op: 'add'; entry: SuppressionEntry } | { id: number; op: 'rm'; entry: { address: string; scope: string; at: number } };

export interface ListFilter {
  scope?: string | undefined;
  reason?: SuppressionReason | undefined;
  /** Only addresses after this one (paging). */
  after?: string | undefined;
  /** Only entries that apply at this time (not expired). */
  activeAt?: number | undefined;
  limit?: number | undefined;
}

// The merge both copies apply when an entry for (address, scope) exists already: the earliest
// first sighting, the latest last sighting and its reason, and "never expires" over any date.
const MERGE = `
  reason = CASE WHEN excluded.last_seen >= suppressions.last_seen THEN excluded.reason ELSE suppressions.reason END,
  detail = CASE WHEN excluded.last_seen >= suppressions.last_seen THEN excluded.detail ELSE suppressions.detail END,
  source_queue_id = COALESCE(excluded.source_queue_id, suppressions.source_queue_id),
  source_event_id = COALESCE(excluded.source_event_id, suppressions.source_event_id),
  first_seen = MIN(suppressions.first_seen, excluded.first_seen),
  last_seen = MAX(suppressions.last_seen, excluded.last_seen),
  expires_at = CASE WHEN suppressions.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                    ELSE MAX(suppressions.expires_at, excluded.expires_at) END`;

/** How stale the filters may be about entries written by another connection (filters()). */
export const VERSION_CHECK_MS = 250;

export class SuppressionStore {
  private readonly db: DatabaseSync;
  /** Whether entries recorded here go to the outbox (a fleet database is configured). */
  readonly fleet: boolean;
  private readonly policy: SuppressionPolicy;
  private readonly lookupStmt: StatementSync;
  private readonly upsertStmt: StatementSync;
  private readonly outboxStmt: StatementSync;
  private readonly statements = new Map<string, StatementSync>();
  private readonly versionStmt: StatementSync;
  /**
   * Addresses with an entry (any scope) and addresses with soft-bounce history: most lookups end
   * at "certainly not" here (filter.ts). Built on first use; dropped when another connection
   * (the CLI writing the file directly) has committed, which `PRAGMA data_version` tells.
   */
  private listedFilter: AddressFilter | undefined;
  private softFilter: AddressFilter | undefined;
  private dataVersion = -1;
  private versionCheckedAt = -Infinity;

  constructor(db: DatabaseSync, options: { fleet: boolean; policy: SuppressionPolicy }) {
    this.db = db;
    this.fleet = options.fleet;
    this.policy = options.policy;
    this.lookupStmt = db.prepare(`SELECT scope, reason, expires_at, detail FROM suppressions WHERE address = ? AND scope IN ('${FLEET_SCOPE}', ?)`);
    this.upsertStmt = db.prepare(
      `INSERT INTO suppressions (address, scope, reason, detail, source_queue_id, source_event_id, first_seen, last_seen, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (address, scope) DO UPDATE SET ${MERGE}`,
    );
    this.outboxStmt = db.prepare(`INSERT INTO suppression_outbox (op, entry) VALUES (?, ?)`);
    this.versionStmt = db.prepare('PRAGMA data_version');
  }

  /**
   * The filters, rebuilt when another connection changed the file since they were built. That is
   * asked at most every VERSION_CHECK_MS: the PRAGMA is a statement like the lookup it saves, and
   * only the CLI writing the file directly (`--data-dir`, not through the relay's API) is another
   * connection, whose change may take that long to stop a delivery.
   */
  private filters(): { listed: AddressFilter; soft: AddressFilter } {
    const t = performance.now();
    if (t - this.versionCheckedAt >= VERSION_CHECK_MS) {
      this.versionCheckedAt = t;
      const v = (this.versionStmt.get() as { data_version: number }).data_version;
      if (v !== this.dataVersion) {
        this.dataVersion = v;
        this.listedFilter = this.softFilter = undefined;
      }
    }
    if (!this.listedFilter || this.listedFilter.full) this.listedFilter = this.build(`SELECT DISTINCT address FROM suppressions`);
    if (!this.softFilter || this.softFilter.full) this.softFilter = this.build(`SELECT DISTINCT address FROM suppression_soft`);
    // The same pair while neither filter was rebuilt (asked twice per delivered recipient).
    const p = this.filterPair;
    if (p && p.listed === this.listedFilter && p.soft === this.softFilter) return p;
    return (this.filterPair = { listed: this.listedFilter, soft: this.softFilter });
  }

  private filterPair: { readonly listed: AddressFilter; readonly soft: AddressFilter } | undefined;

  private build(sql: string): AddressFilter {
    const rows = this.stmt(sql).all() as unknown as { address: string }[];
    // Room to grow before the next rebuild (full: twice the capacity).
    const f = new AddressFilter(rows.length * 1.5);
    for (const r of rows) f.add(r.address);
    return f;
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * The entry that stops delivery of `cls` mail from `sendingDomain` to `recipient`, or undefined.
   * One primary-key range read (microseconds at a million entries: bench/suppression.ts).
   */
  check(recipient: string, sendingDomain: string, cls: MessageClass, now: number): { scope: string; reason: SuppressionReason; detail: string } | undefined {
    let address: string;
    try {
      address = normaliseAddress(recipient);
    } catch {
      return undefined; // nothing could have been recorded for it
    }
    if (!this.filters().listed.mayContain(address)) return undefined;
    const rows = this.lookupStmt.all(address, sendingDomain) as unknown as { scope: string; reason: SuppressionReason; expires_at: number | null; detail: string }[];
    if (rows.length === 0) return undefined;
    const hit = blockingEntry(rows.map((r) => ({ scope: r.scope, reason: r.reason, expiresAt: r.expires_at, detail: r.detail })), sendingDomain, cls, now, this.policy);
    return hit ? { scope: hit.scope, reason: hit.reason, detail: hit.detail } : undefined;
  }

  get(address: string, scope?: string): SuppressionEntry[] {
    const a = normaliseAddress(address);
    const rows = (scope === undefined
      ? this.stmt(`SELECT * FROM suppressions WHERE address = ?`).all(a)
      : this.stmt(`SELECT * FROM suppressions WHERE address = ? AND scope = ?`).all(a, scope)) as unknown as SuppressionRow[];
    return rows.map(rowToEntry);
  }

  /** Records or refreshes entries (and queues them for the fleet), in one transaction. */
  add(entries: readonly SuppressionEntry[]): void {
    if (entries.length === 0) return;
    this.transaction(() => {
      for (const e of entries) {
        this.upsertStmt.run(e.address, e.scope, e.reason, e.detail, e.sourceQueueId, e.sourceEventId, e.firstSeen, e.lastSeen, e.expiresAt);
        this.listedFilter?.add(e.address); // "maybe" from now on
        if (this.fleet) this.outboxStmt.run('add', JSON.stringify(e));
      }
    });
  }

  /** Removes entries; returns how many existed here. Queued for the fleet even when none did. */
  remove(address: string, scope: string | undefined, at: number): number {
    const a = normaliseAddress(address);
    return this.transaction(() => {
      const scopes = scope !== undefined ? [scope] : (this.stmt(`SELECT scope FROM suppressions WHERE address = ?`).all(a) as unknown as { scope: string }[]).map((r) => r.scope);
      let n = 0;
      for (const s of scopes) {
        n += Number(this.stmt(`DELETE FROM suppressions WHERE address = ? AND scope = ?`).run(a, s).changes);
        if (this.fleet) this.outboxStmt.run('rm', JSON.stringify({ address: a, scope: s, at }));
      }
      return n;
    });
  }

  list(filter: ListFilter = {}): SuppressionEntry[] {
    const { sql, params } = this.where(filter);
    const rows = this.db.prepare(`SELECT * FROM suppressions ${sql} ORDER BY address, scope LIMIT ?`).all(...params, filter.limit ?? 1000) as unknown as SuppressionRow[];
    return rows.map(rowToEntry);
  }

  /** Every matching entry, read lazily (exports of millions). */
  *iterate(filter: Omit<ListFilter, 'limit'> = {}): Generator<SuppressionEntry> {
    const { sql, params } = this.where(filter);
    for (const r of this.db.prepare(`SELECT * FROM suppressions ${sql} ORDER BY address, scope`).iterate(...params)) yield rowToEntry(r as unknown as SuppressionRow);
  }

  private where(f: ListFilter): { sql: string; params: (string | number)[] } {
    const parts: string[] = [];
    const params: (string | number)[] = [];
    if (f.scope !== undefined) (parts.push('scope = ?'), params.push(f.scope));
    if (f.reason !== undefined) (parts.push('reason = ?'), params.push(f.reason));
    if (f.after !== undefined) (parts.push('address > ?'), params.push(f.after));
    if (f.activeAt !== undefined) (parts.push('(expires_at IS NULL OR expires_at > ?)'), params.push(f.activeAt));
    return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', params };
  }

  /** Entries per reason (active ones), for metrics and stats. */
  countByReason(now: number): Record<SuppressionReason, number> {
    const out: Record<SuppressionReason, number> = { 'hard-bounce': 0, complaint: 0, unsubscribe: 0, manual: 0 };
    for (const r of this.stmt(`SELECT reason, COUNT(*) AS n FROM suppressions WHERE expires_at IS NULL OR expires_at > ? GROUP BY reason`).all(now) as unknown as { reason: SuppressionReason; n: number }[]) out[r.reason] = r.n;
    return out;
  }

  /** Active entries per (scope, reason): the metrics' source. */
  countByScope(now: number): { scope: string; reason: SuppressionReason; n: number }[] {
    return this.stmt(`SELECT scope, reason, COUNT(*) AS n FROM suppressions WHERE expires_at IS NULL OR expires_at > ? GROUP BY scope, reason`).all(now) as unknown as { scope: string; reason: SuppressionReason; n: number }[];
  }

  softHistory(address: string, scope: string): SoftHistory | undefined {
    if (!this.filters().soft.mayContain(address)) return undefined;
    const r = this.stmt(`SELECT count, first_at FROM suppression_soft WHERE address = ? AND scope = ?`).get(address, scope) as { count: number; first_at: number } | undefined;
    return r ? { count: r.count, firstAt: r.first_at } : undefined;
  }

  setSoftHistory(address: string, scope: string, h: SoftHistory | undefined): void {
    if (h === undefined) this.stmt(`DELETE FROM suppression_soft WHERE address = ? AND scope = ?`).run(address, scope);
    else {
      this.softFilter?.add(address);
      this.stmt(`INSERT INTO suppression_soft (address, scope, count, first_at) VALUES (?, ?, ?, ?) ON CONFLICT (address, scope) DO UPDATE SET count = excluded.count, first_at = excluded.first_at`).run(address, scope, h.count, h.firstAt);
    }
  }

  // ---- fleet sync (relay/suppression/fleet.ts) ----

  outbox(limit: number): OutboxOp[] {
    return (this.stmt(`SELECT id, op, entry FROM suppression_outbox ORDER BY id LIMIT ?`).all(limit) as unknown as { id: number; op: 'add' | 'rm'; entry: string }[])
      .map((r) => ({ id: r.id, op: r.op, entry: JSON.parse(r.entry) }) as OutboxOp);
  }

  outboxSize(): number {
    return (this.stmt(`SELECT COUNT(*) AS n FROM suppression_outbox`).get() as { n: number }).n;
  }

  /** The outbox rows up to `id` are in PostgreSQL. */
  outboxDone(upToId: number): void {
    this.stmt(`DELETE FROM suppression_outbox WHERE id <= ?`).run(upToId);
  }

  syncedSeq(name: string): number {
    return (this.stmt(`SELECT seq FROM fleet_sync WHERE name = ?`).get(name) as { seq: number } | undefined)?.seq ?? 0;
  }

  /**
   * Applies rows pulled from PostgreSQL (its copy is the fleet's truth: replaced whole, removed
   * rows deleted) and remembers how far it got, in one transaction.
   */
  applyFleet(rows: readonly (SuppressionEntry & { removed: boolean })[], seq: number): void {
    this.transaction(() => {
      const put = this.stmt(
        `INSERT OR REPLACE INTO suppressions (address, scope, reason, detail, source_queue_id, source_event_id, first_seen, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const del = this.stmt(`DELETE FROM suppressions WHERE address = ? AND scope = ?`);
      for (const e of rows) {
        if (e.removed) del.run(e.address, e.scope);
        else {
          put.run(e.address, e.scope, e.reason, e.detail, e.sourceQueueId, e.sourceEventId, e.firstSeen, e.lastSeen, e.expiresAt);
          this.listedFilter?.add(e.address); // "maybe" from now on
        }
      }
      this.stmt(`INSERT INTO fleet_sync (name, seq) VALUES ('suppressions', ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`).run(seq);
    });
  }

  transaction<T>(fn: () => T): T {
    if (this.db.isTransaction) return fn();
    return immediateTransaction(this.db, fn);
  }
}
