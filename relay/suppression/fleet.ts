// The fleet's suppression list (and its events) in PostgreSQL, with every relay's SQLite copy kept
// current: push this relay's outbox, then pull every row whose sequence number is above the last
// one applied here. A NOTIFY after each push makes the other relays pull at once; a timer pulls
// anyway (a missed notification costs at most syncIntervalSeconds). While PostgreSQL is away the
// relay keeps answering from its copy and keeps its own new entries in the outbox; nothing is lost,
// and the next successful sync catches up both ways. docs/suppression.md.
import pg from 'pg';
import type { SuppressionStore } from './store.ts';
import type { EventStore } from '../events/store.ts';
import type { SuppressionEntry } from './rules.ts';

const CHANNEL = 'mailfleet_suppressions';
/**
 * Writers take this transaction-scoped advisory lock, so sequence numbers become visible in the
 * order they were drawn: a reader that has seen seq N can never later find a row below N commit.
 */
const WRITE_LOCK = 0x6d66_7375; // "mfsu"

/** Every PostgreSQL table of the fleet; run by each relay at connect (IF NOT EXISTS, idempotent). */
export const FLEET_SCHEMA = `
CREATE SEQUENCE IF NOT EXISTS mailfleet_suppression_seq;
CREATE TABLE IF NOT EXISTS mailfleet_suppressions (
  address text NOT NULL,
  scope text NOT NULL,
  reason text NOT NULL,
  detail text NOT NULL DEFAULT '',
  source_queue_id text,
  source_event_id text,
  first_seen bigint NOT NULL,
  last_seen bigint NOT NULL,
  expires_at bigint,
  removed boolean NOT NULL DEFAULT false,
  seq bigint NOT NULL DEFAULT nextval('mailfleet_suppression_seq'),
  PRIMARY KEY (address, scope)
);
CREATE INDEX IF NOT EXISTS mailfleet_suppressions_seq ON mailfleet_suppressions (seq);
CREATE TABLE IF NOT EXISTS mailfleet_events (
  id text PRIMARY KEY,
  type text NOT NULL,
  at timestamptz NOT NULL,
  queue_id text,
  message_id text,
  recipient text,
  sending_domain text,
  tags text[] NOT NULL DEFAULT '{}',
  relay text,
  body jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS mailfleet_events_queue_id ON mailfleet_events (queue_id);
CREATE INDEX IF NOT EXISTS mailfleet_events_message_id ON mailfleet_events (message_id);
CREATE INDEX IF NOT EXISTS mailfleet_events_recipient ON mailfleet_events (recipient);
CREATE INDEX IF NOT EXISTS mailfleet_events_tags ON mailfleet_events USING gin (tags);
`;

// The same merge as the SQLite copy (relay/suppression/store.ts); a removal is a tombstone row
// (removed = true) with a new seq, so every relay hears of it; a later add revives it.
const UPSERT = `
INSERT INTO mailfleet_suppressions AS s (address, scope, reason, detail, source_queue_id, source_event_id, first_seen, last_seen, expires_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[])
ON CONFLICT (address, scope) DO UPDATE SET
  reason = CASE WHEN s.removed OR excluded.last_seen >= s.last_seen THEN excluded.reason ELSE s.reason END,
  detail = CASE WHEN s.removed OR excluded.last_seen >= s.last_seen THEN excluded.detail ELSE s.detail END,
  source_queue_id = COALESCE(excluded.source_queue_id, s.source_queue_id),
  source_event_id = COALESCE(excluded.source_event_id, s.source_event_id),
  first_seen = CASE WHEN s.removed THEN excluded.first_seen ELSE LEAST(s.first_seen, excluded.first_seen) END,
  last_seen = GREATEST(s.last_seen, excluded.last_seen),
  expires_at = CASE WHEN s.removed THEN excluded.expires_at
                    WHEN s.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                    ELSE GREATEST(s.expires_at, excluded.expires_at) END,
  removed = false,
  seq = nextval('mailfleet_suppression_seq')`;

const REMOVE = `
UPDATE mailfleet_suppressions SET removed = true, seq = nextval('mailfleet_suppression_seq')
WHERE (address, scope) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND NOT removed`;

export interface FleetStatus {
  /** PostgreSQL is configured. */
  configured: true;
  /** The last sync reached it. */
  connected: boolean;
  lastSyncAt: string | null;
  lastError: string | null;
  /** Entries and events recorded here, not yet in PostgreSQL. */
  outbox: { suppressions: number; events: number };
  /** Highest fleet sequence number applied to this relay's copy. */
  seq: number;
}

export interface FleetSyncOptions {
  url: string;
  suppressions: SuppressionStore;
  events: EventStore;
  intervalMs: number;
  relayName: string;
  clock?: () => number;
  onSync?: (ok: boolean, error?: Error) => void;
  /** Rows applied from the fleet (other relays' entries). */
  onPulled?: (rows: number) => void;
}

/** Rows per push statement and per pull transaction; a pull applies synchronously (see IMPORT_BATCH). */
const BATCH = 1000;

export class FleetSync {
  private readonly o: FleetSyncOptions;
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private syncing: Promise<boolean> | undefined;
  private again = false;
  private connected = false;
  private lastSyncAt: number | undefined;
  private lastError: string | undefined;

  constructor(o: FleetSyncOptions) {
    this.o = o;
  }

  private clock(): number {
    return (this.o.clock ?? Date.now)();
  }

  start(): void {
    this.running = true;
    this.kick();
  }

  /** Something was recorded here, or another relay said so: sync soon. */
  kick(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), 0);
    this.timer.unref();
  }

  private scheduleNext(): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), this.o.intervalMs);
    this.timer.unref();
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: 5000, application_name: `mailfleet-relay ${this.o.relayName}`.slice(0, 63) });
      // A connection that dies is dropped; the next sync makes a new one.
      client.on('error', () => this.drop(client));
      client.on('end', () => this.drop(client));
      client.on('notification', () => this.kick());
      try {
        await client.connect();
        await client.query(FLEET_SCHEMA);
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (err) {
        client.end().catch(() => {});
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      this.connected = false;
      client.end().catch(() => {});
    }
  }

  /** One push + pull. Resolves true when PostgreSQL took everything and the copy is current. */
  sync(): Promise<boolean> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = (async () => {
      let ok = false;
      try {
        do {
          this.again = false;
          const client = await this.connect();
          await this.push(client);
          await this.pushEvents(client);
          await this.pull(client);
        } while (this.again);
        ok = true;
        this.connected = true;
        this.lastSyncAt = this.clock();
        this.lastError = undefined;
        this.o.onSync?.(true);
      } catch (err) {
        this.connected = false;
        this.lastError = (err as Error).message;
        if (this.client) this.drop(this.client);
        this.o.onSync?.(false, err as Error);
      } finally {
        this.syncing = undefined;
        this.scheduleNext();
      }
      return ok;
    })();
    return this.syncing;
  }

  private async push(client: pg.Client): Promise<void> {
    const store = this.o.suppressions;
    for (;;) {
      const ops = store.outbox(BATCH);
      if (ops.length === 0) return;
      // Consecutive ops of one kind go in one statement; order between kinds is kept.
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
        let i = 0;
        while (i < ops.length) {
          const kind = ops[i]!.op;
          let j = i;
          while (j < ops.length && ops[j]!.op === kind) j++;
          const run = ops.slice(i, j);
          if (kind === 'add') {
            // One row per (address, scope) per statement: ON CONFLICT cannot touch a row twice.
            const byKey = new Map<string, SuppressionEntry>();
            for (const o of run) byKey.set(`${o.entry.address}\0${o.entry.scope}`, o.entry as SuppressionEntry);
            const e = [...byKey.values()];
            await client.query(UPSERT, [
              e.map((x) => x.address), e.map((x) => x.scope), e.map((x) => x.reason), e.map((x) => x.detail),
              e.map((x) => x.sourceQueueId), e.map((x) => x.sourceEventId), e.map((x) => x.firstSeen), e.map((x) => x.lastSeen), e.map((x) => x.expiresAt),
            ]);
          } else {
            await client.query(REMOVE, [run.map((o) => o.entry.address), run.map((o) => o.entry.scope)]);
          }
          i = j;
        }
        await client.query(`NOTIFY ${CHANNEL}`);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
      // Committed in PostgreSQL: gone from the outbox. A crash between the two pushes them again
      // (the upsert is idempotent).
      store.outboxDone(ops[ops.length - 1]!.id);
    }
  }

  private async pushEvents(client: pg.Client): Promise<void> {
    const events = this.o.events;
    for (;;) {
      const batch = events.fleetOutbox(1000);
      if (batch.length === 0) return;
      await client.query(
        `INSERT INTO mailfleet_events (id, type, at, queue_id, message_id, recipient, sending_domain, tags, relay, body)
         SELECT x->>'id', x->>'type', (x->>'at')::timestamptz, x->>'queueId', x->>'messageId', x->>'recipient', x->>'sendingDomain',
                ARRAY(SELECT jsonb_array_elements_text(x->'tags')), x->>'relay', x
         FROM jsonb_array_elements($1::jsonb) AS x
         ON CONFLICT (id) DO NOTHING`,
        [JSON.stringify(batch.map(({ seq: _seq, ...e }) => e))],
      );
      events.fleetDone(batch[batch.length - 1]!.seq);
    }
  }

  private async pull(client: pg.Client): Promise<void> {
    const store = this.o.suppressions;
    for (;;) {
      const since = store.syncedSeq('suppressions');
      const res = await client.query(
        `SELECT address, scope, reason, detail, source_queue_id, source_event_id, first_seen, last_seen, expires_at, removed, seq
         FROM mailfleet_suppressions WHERE seq > $1 ORDER BY seq LIMIT ${BATCH}`,
        [since],
      );
      if (res.rows.length === 0) return;
      const rows = res.rows.map((r) => ({
        address: r.address, scope: r.scope, reason: r.reason, detail: r.detail, sourceQueueId: r.source_queue_id, sourceEventId: r.source_event_id,
        firstSeen: Number(r.first_seen), lastSeen: Number(r.last_seen), expiresAt: r.expires_at === null ? null : Number(r.expires_at), removed: r.removed as boolean,
      }));
      store.applyFleet(rows, Number(res.rows[res.rows.length - 1].seq));
      this.o.onPulled?.(rows.length);
      if (res.rows.length < BATCH) return;
      // A catch-up of many rows: SMTP sessions and deliveries get their turn between batches.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Events of the whole fleet for the tracking API (any relay answers for any message). */
  async queryEvents(q: { queueId?: string | undefined; messageId?: string | undefined; recipient?: string | undefined; tag?: string | undefined; limit?: number | undefined }): Promise<unknown[]> {
    const client = await this.connect();
    const parts: string[] = [];
    const params: unknown[] = [];
    if (q.queueId) (params.push(q.queueId), parts.push(`queue_id = $${params.length}`));
    if (q.messageId) (params.push(q.messageId.replace(/^<|>$/g, '')), parts.push(`message_id = $${params.length}`));
    if (q.recipient) (params.push(q.recipient.toLowerCase()), parts.push(`recipient = $${params.length}`));
    if (q.tag) (params.push([q.tag]), parts.push(`tags @> $${params.length}::text[]`));
    params.push(q.limit ?? 1000);
    const res = await client.query(`SELECT body FROM mailfleet_events ${parts.length ? `WHERE ${parts.join(' AND ')}` : ''} ORDER BY at, id LIMIT $${params.length}`, params);
    return res.rows.map((r) => r.body);
  }

  status(): FleetStatus {
    return {
      configured: true,
      connected: this.connected,
      lastSyncAt: this.lastSyncAt === undefined ? null : new Date(this.lastSyncAt).toISOString(),
      lastError: this.lastError ?? null,
      outbox: { suppressions: this.o.suppressions.outboxSize(), events: this.o.events.fleetOutboxSize() },
      seq: this.o.suppressions.syncedSeq('suppressions'),
    };
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.syncing;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}
