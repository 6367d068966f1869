// The one owner of the queue database's schema: every table in queue.db (the queue itself, the
// shaping ledger, the delay-notice ledger, and what comes next) is created here, by numbered
// migrations recorded in PRAGMA user_version. Every connection to the file opens it through
// openQueueDb(), so no module creates a table of its own.
//
// (The suppression list and the event outbox live in feedback.db, relay/feedback/db.ts, on purpose:
// their bulk writes must not hold the queue's write lock that every 250 waits on.)
//
// Adding a table to queue.db: append one migration at the end
// of MIGRATIONS with the next version number and its CREATE TABLE / CREATE INDEX statements, and
// give the table one module that reads and writes it (like relay/scheduler/ledger.ts). Never edit
// or reorder a migration that has shipped: a relay's file already ran it.
import { DatabaseSync } from 'node:sqlite';
import { immediateTransaction } from '../sqlite.ts';
import { deliveryStatsSchema } from '../stats/counters.ts';

export interface Migration {
  version: number;
  /** What it adds, for the error message when it fails. */
  name: string;
  up(db: DatabaseSync): void;
}

/**
 * Migrations 1-5 describe the tables as they were before the file carried a version: they use
 * IF NOT EXISTS (and check for the lane column) so a queue written by an older relay (version 0,
 * tables present) is brought to version 5 without losing a row.
 */
/**
 * The recipients table's columns as version 1 made them (lane came in a later migration). Version 10
 * rebuilds the table and must say them again: one text for both, so the two cannot drift.
 */
const RECIPIENT_COLUMNS = `        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        recipient TEXT NOT NULL,
        domain TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_reply TEXT,`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'messages and recipients',
    up: (db) => db.exec(`
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
${RECIPIENT_COLUMNS}
        PRIMARY KEY (message_id, recipient)
      ) STRICT;
    `),
  },
  {
    // Each recipient carries its message's lane (0 otp, 1 transactional, 2 bulk) so a claim is an
    // index range scan: (state, lane, next_attempt_at) finds the few due otp recipients under a
    // bulk backlog of any size without reading or sorting the backlog (bench/README.md).
    version: 2,
    name: 'recipient lanes',
    up: (db) => {
      const cols = db.prepare(`PRAGMA table_info(recipients)`).all() as unknown as { name: string }[];
      if (!cols.some((c) => c.name === 'lane')) {
        db.exec(`ALTER TABLE recipients ADD COLUMN lane INTEGER NOT NULL DEFAULT 1`);
        db.exec(`UPDATE recipients SET lane = (SELECT CASE m.class WHEN 'otp' THEN 0 WHEN 'bulk' THEN 2 ELSE 1 END FROM messages m WHERE m.id = recipients.message_id)`);
      }
      db.exec(`CREATE INDEX IF NOT EXISTS recipients_lane_due ON recipients (state, lane, next_attempt_at)`);
      // Superseded by recipients_lane_due (claims and due times go per lane); each index costs every
      // insert and delete of the intake and of delivered mail.
      db.exec(`DROP INDEX IF EXISTS recipients_due`);
      db.exec(`DROP INDEX IF EXISTS messages_class`);
    },
  },
  {
    // relay/scheduler/ledger.ts: warm-up counters (a restart must not hand an IP a fresh quota) and
    // suspensions/throttles (a restart must not resume sending to Yahoo an hour into a TS04 pause).
    version: 3,
    name: 'shaping ledger',
    up: (db) => db.exec(`
      CREATE TABLE IF NOT EXISTS shaping_counters (
        ip TEXT NOT NULL,
        provider TEXT NOT NULL,
        window TEXT NOT NULL,
        start INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (ip, provider, window)
      ) STRICT;
      CREATE TABLE IF NOT EXISTS shaping_restrictions (
        ip TEXT NOT NULL,
        provider TEXT NOT NULL,
        action TEXT NOT NULL,
        until INTEGER NOT NULL,
        messages_per_minute REAL NOT NULL,
        max_connections INTEGER NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (ip, provider)
      ) STRICT;
    `),
  },
  {
    // relay/delivery/delay-notices.ts: which recipients had their one delay notice; forgotten with
    // the message (the trigger), so the queue code never has to know about notices.
    version: 4,
    name: 'delay notices',
    up: (db) => db.exec(`
      CREATE TABLE IF NOT EXISTS delay_notices (
        message_id TEXT NOT NULL,
        recipient TEXT NOT NULL,
        PRIMARY KEY (message_id, recipient)
      ) STRICT;
      CREATE TRIGGER IF NOT EXISTS delay_notices_gc AFTER DELETE ON messages
      BEGIN DELETE FROM delay_notices WHERE message_id = old.id; END;
    `),
  },
  {
    // relay/scheduler/ledger.ts: recipients each warmed-up IP sent per UTC day (day = whole UTC days
    // since the epoch), the history relay/warmup/plan.ts counts warm-up days from. One row per IP
    // and day: tiny.
    version: 5,
    name: 'warm-up days',
    up: (db) => db.exec(`
      CREATE TABLE IF NOT EXISTS warmup_days (
        ip TEXT NOT NULL,
        day INTEGER NOT NULL,
        sent INTEGER NOT NULL,
        PRIMARY KEY (ip, day)
      ) STRICT;
    `),
  },
  {
    // relay/stats/counters.ts: delivery counters per UTC hour × source IP × provider × sending
    // domain × class (GET /v1/stats, docs/control-loop.md), and the store's identity (`instance`).
    version: 6,
    name: 'delivery counters',
    up: (db) => db.exec(deliveryStatsSchema()),
  },
  {
    // relay/queue/claims.ts: a claim that must skip domains whose lanes are full (a deep backlog
    // at one receiver) walks the lane's domains instead of reading past that backlog: 155 ms per
    // claim at 1,000,000 queued before, every 250 ms, stalling the intake (bench/README.md,
    // backlog). Building it on a queue that already holds a million recipients takes a few seconds
    // at the first start.
    version: 7,
    name: 'recipients by domain',
    up: (db) => db.exec(`CREATE INDEX IF NOT EXISTS recipients_lane_domain ON recipients (state, lane, domain, next_attempt_at)`),
  },
  {
    // Only queued recipients are ever looked up by lane (claims.ts, every query says
    // state = 'queued'); fresh mail the engine takes at birth is written inflight and, once
    // delivered, deleted with its message without ever being queued. As partial indexes, the lane
    // indexes are not written at all on that path: two b-trees fewer in each of the intake's and
    // the outcomes' commits (about 4 WAL frames less per 1 KiB message, bench/README.md). The
    // start-up requeue of inflight recipients reads the table instead (once per start).
    version: 8,
    name: 'lane indexes of queued recipients only',
    up: (db) => db.exec(`
      DROP INDEX IF EXISTS recipients_lane_due;
      DROP INDEX IF EXISTS recipients_lane_domain;
      CREATE INDEX recipients_lane_due ON recipients (state, lane, next_attempt_at) WHERE state = 'queued';
      CREATE INDEX recipients_lane_domain ON recipients (state, lane, domain, next_attempt_at) WHERE state = 'queued';
    `),
  },
  {
    // relay/queue/body-parts.ts: a body past PART_BYTES is stored as rows of PART_BYTES, written from
    // the intake's spool file part by part and read part by part by delivery, so that no stage
    // holds a large message whole (issue 17: one 25 MiB blob was bound, recorded and read whole,
    // several copies at once). messages.parts says how many (0: the body is messages.body, the
    // one-row path small mail keeps). The trigger forgets the parts with their message, whoever
    // deletes it (outcomes, journal replay, the CLI), and costs small mail nothing (WHEN).
    version: 9,
    name: 'body parts',
    up: (db) => db.exec(`
      ALTER TABLE messages ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE body_parts (
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (message_id, seq)
      ) STRICT;
      CREATE TRIGGER body_parts_gc AFTER DELETE ON messages WHEN old.parts > 0
      BEGIN DELETE FROM body_parts WHERE message_id = old.id; END;
    `),
  },
  {
    // A recipient row is found by its message (the primary key: outcomes, the cascade of a deleted
    // message, the CLI) or by the lane indexes (claims), never by rowid: as a rowid table with a
    // primary key it was two b-trees (the table and its key's index), each written by the intake's
    // insert and again by the outcome's delete. WITHOUT ROWID it is one (issue 13, WAL frames per
    // message: bench/queue-pages.ts). The lane indexes now hold (message_id, recipient) after
    // next_attempt_at instead of the rowid: ties in next_attempt_at go by queue id, which is
    // arrival order too (relay/queue/id.ts). The copy takes about 2 s per 200,000 queued recipients
    // (loaded 2-core machine) at the first start of this version; the CLI waits meanwhile.
    version: 10,
    name: 'recipients without rowid',
    up: (db) => db.exec(`
      CREATE TABLE recipients_by_message (
${RECIPIENT_COLUMNS}
        lane INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (message_id, recipient)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO recipients_by_message (message_id, recipient, domain, state, attempts, next_attempt_at, last_reply, lane)
        SELECT message_id, recipient, domain, state, attempts, next_attempt_at, last_reply, lane FROM recipients;
      DROP TABLE recipients;
      ALTER TABLE recipients_by_message RENAME TO recipients;
      CREATE INDEX recipients_lane_due ON recipients (state, lane, next_attempt_at) WHERE state = 'queued';
      CREATE INDEX recipients_lane_domain ON recipients (state, lane, domain, next_attempt_at) WHERE state = 'queued';
    `),
  },
  {
    // A message's recipients go with it by this trigger, whoever deletes it (outcomes, the journal
    // replay, the CLI), like delay_notices_gc and body_parts_gc. It replaces ON DELETE CASCADE for
    // the connections that open the store, which now run with foreign_keys off (relay/queue/store.ts):
    // with them on, each delete of a delivered message first counted the message's recipients for
    // the constraint, then built a temporary b-tree of them to cascade over, and each recipient
    // insert looked its message up again. The trigger is one seek and delete: the queue's SQLite
    // work per 1 KiB message 9.4 -> 7.6 µs (issue 13, bench/README.md). The REFERENCES clause stays
    // (a table rebuild to drop it buys nothing): a connection with foreign_keys on cascades as well,
    // and the trigger then finds nothing left to delete.
    version: 11,
    name: 'recipients deleted with their message by a trigger',
    up: (db) => db.exec(`
      CREATE TRIGGER recipients_gc AFTER DELETE ON messages
      BEGIN DELETE FROM recipients WHERE message_id = old.id; END;
    `),
  },
  // Next: version 12.
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

function versionOf(db: DatabaseSync): number {
  return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
}

/**
 * Brings the file to SCHEMA_VERSION. One transaction for all pending migrations, re-checked inside
 * it: several connections (the relay's, the CLI's) may open the file at once, and only the first
 * one migrates.
 */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): void {
  const latest = migrations[migrations.length - 1]!.version;
  if (versionOf(db) === latest) return;
  immediateTransaction(db, () => {
    const from = versionOf(db);
    if (from > latest) {
      throw new Error(`queue database schema version ${from} is newer than this relay's (${latest}): run the newer relay, or restore the queue it was copied from`);
    }
    for (const m of migrations) {
      if (m.version <= from) continue;
      try {
        m.up(db);
      } catch (err) {
        throw new Error(`queue database migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
      }
    }
    db.exec(`PRAGMA user_version = ${latest}`);
  });
}

/**
 * A connection to queue.db with the schema in place. `pragmas` are set first (per connection);
 * `readOnly`: no migration (a reader of a relay's queue must not change it; tables it asks for may
 * be missing).
 */
export function openQueueDb(path: string, options: { readOnly?: boolean; pragmas?: readonly string[] } = {}): DatabaseSync {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    for (const p of options.pragmas ?? []) db.exec(`PRAGMA ${p}`);
    if (!options.readOnly) migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
