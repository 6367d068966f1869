import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { MIGRATIONS, SCHEMA_VERSION, migrate, openQueueDb } from './schema.ts';
import { QueueStore } from './store.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-schema-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function tables(db: DatabaseSync): string[] {
  return (db.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
}

test('a new queue file gets every table of the relay and the latest schema version', (t) => {
  const db = openQueueDb(join(tempDir(t), 'queue.db'));
  t.after(() => db.close());
  assert.deepEqual(tables(db), ['body_parts', 'body_parts_gc', 'delay_notices', 'delay_notices_gc', 'delivery_stats', 'delivery_stats_meta', 'messages', 'recipients', 'recipients_gc', 'shaping_counters', 'shaping_restrictions', 'warmup_days']);
  assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, SCHEMA_VERSION);
  assert.deepEqual(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1), 'versions are 1, 2, 3, … with no gap');
});

test('a queue written before the file had a version (no lane column) keeps its mail and gets the lanes', (t) => {
  const dir = tempDir(t);
  const old = new DatabaseSync(join(dir, 'queue.db'));
  old.exec(`
    CREATE TABLE messages (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, mail_from TEXT NOT NULL, size INTEGER NOT NULL,
      class TEXT NOT NULL DEFAULT 'transactional', message_id TEXT, auth_user TEXT, client_address TEXT, listener TEXT, body BLOB NOT NULL) STRICT;
    CREATE TABLE recipients (message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE, recipient TEXT NOT NULL, domain TEXT NOT NULL,
      state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_reply TEXT,
      PRIMARY KEY (message_id, recipient)) STRICT;
    CREATE INDEX recipients_due ON recipients (state, next_attempt_at);
    INSERT INTO messages (id, created_at, mail_from, size, class, body) VALUES ('m1', 1, 'a@x.test', 1, 'otp', x'41');
    INSERT INTO recipients (message_id, recipient, domain, next_attempt_at) VALUES ('m1', 'b@y.test', 'y.test', 1);
  `);
  old.close();
  const store = new QueueStore(dir, { clock: () => 10 });
  t.after(() => store.close());
  assert.deepEqual(store.claimDue(10, 10, 'otp').map((d) => d.recipient), ['b@y.test'], 'the old otp recipient is found in the otp lane');
});

test('a queue file from a newer relay is refused, naming both versions', (t) => {
  const path = join(tempDir(t), 'queue.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => openQueueDb(path), new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this relay's \\(${SCHEMA_VERSION}\\)`));
});

test('the lane indexes hold queued recipients only: mail taken at birth (inflight) and delivered never enters them, and claims still use them', (t) => {
  const dir = tempDir(t);
  const store = new QueueStore(dir, { clock: () => 10 });
  t.after(() => store.close());
  const db = new DatabaseSync(join(dir, 'queue.db'));
  t.after(() => db.close());
  for (const name of ['recipients_lane_due', 'recipients_lane_domain']) {
    const sql = (db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).get(name) as { sql: string }).sql;
    assert.match(sql, /WHERE state = 'queued'$/, name);
  }
  const plan = (db.prepare(`EXPLAIN QUERY PLAN SELECT message_id, recipient FROM recipients WHERE state = 'queued' AND lane = 1 AND next_attempt_at <= 5 ORDER BY next_attempt_at, message_id, recipient`).all() as { detail: string }[])
    .map((r) => r.detail).join('\n');
  assert.match(plan, /USING (COVERING )?INDEX recipients_lane_due/);
  assert.doesNotMatch(plan, /TEMP B-TREE/, 'due order is index order: no sort');
  const entries = (name: string) => (db.prepare(`SELECT COUNT(*) AS n FROM recipients INDEXED BY ${name} WHERE state = 'queued'`).get() as { n: number }).n;
  db.exec(`INSERT INTO messages (id, created_at, mail_from, size, body) VALUES ('m1', 1, 'a@x.test', 1, x'41');
           INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane, state) VALUES ('m1', 'b@y.test', 'y.test', 1, 1, 'inflight'),
             ('m1', 'c@y.test', 'y.test', 1, 1, 'queued')`);
  assert.equal(entries('recipients_lane_due'), 1);
  assert.equal(entries('recipients_lane_domain'), 1);
});

test('migration 10: a version-9 queue keeps every recipient (queued, inflight, done) in one b-tree without rowid; claims keep arrival order and a deleted message takes its recipients', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'queue.db');
  const old = new DatabaseSync(path);
  migrate(old, MIGRATIONS.filter((m) => m.version <= 9));
  old.exec(`
    INSERT INTO messages (id, created_at, mail_from, size, class, body) VALUES ('01B', 1, 'a@x.test', 1, 'bulk', x'41'), ('01A', 1, 'a@x.test', 1, 'bulk', x'42'), ('01C', 1, 'a@x.test', 1, 'bulk', x'43');
    INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane, state, attempts, last_reply) VALUES
      ('01B', 'z@y.test', 'y.test', 5, 2, 'queued', 1, '451 later'), ('01B', 'a@y.test', 'y.test', 5, 2, 'queued', 0, NULL),
      ('01A', 'q@y.test', 'y.test', 5, 2, 'queued', 0, NULL), ('01A', 'd@w.test', 'w.test', 1, 2, 'delivered', 1, '250 ok'),
      ('01C', 'i@y.test', 'y.test', 1, 2, 'inflight', 0, NULL);
  `);
  const before = old.prepare(`SELECT * FROM recipients ORDER BY message_id, recipient`).all();
  old.close();
  const store = new QueueStore(dir, { clock: () => 10 });
  t.after(() => store.close());
  const db = new DatabaseSync(path);
  t.after(() => db.close());
  assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, SCHEMA_VERSION);
  assert.match((db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'recipients'`).get() as { sql: string }).sql, /WITHOUT ROWID$/);
  assert.deepEqual(tables(db).filter((n) => n.startsWith('recipients')), ['recipients', 'recipients_gc'], 'the copy took the old name (and version 11 its trigger)');
  // The start-up recovery queued the inflight one again; everything else is as it was.
  const after = db.prepare(`SELECT * FROM recipients ORDER BY message_id, recipient`).all().map((r) => ({ ...r }));
  assert.deepEqual(after, before.map((r) => ({ ...r, state: r.state === 'inflight' ? 'queued' : r.state })));
  // Oldest due first; the same due time by arrival (queue id), then recipient.
  assert.deepEqual(store.claimDue(10, 10, 'bulk').map((d) => `${d.messageId} ${d.recipient}`), ['01C i@y.test', '01A q@y.test', '01B a@y.test', '01B z@y.test']);
  assert.equal(store.delete('01B'), true);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM recipients WHERE message_id = '01B'`).get() as { n: number }).n, 0, 'a deleted message takes its recipients');
});

test('migration 11: a message takes its recipients with it by trigger, on the store (foreign keys off) and on a connection that enforces them', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'queue.db');
  const old = new DatabaseSync(path);
  migrate(old, MIGRATIONS.filter((m) => m.version <= 10));
  old.exec(`
    INSERT INTO messages (id, created_at, mail_from, size, class, body) VALUES ('01A', 1, 'a@x.test', 1, 'bulk', x'41'), ('01B', 1, 'a@x.test', 1, 'bulk', x'42');
    INSERT INTO recipients (message_id, recipient, domain, next_attempt_at, lane) VALUES ('01A', 'a@y.test', 'y.test', 1, 2), ('01A', 'b@y.test', 'y.test', 1, 2), ('01B', 'c@y.test', 'y.test', 1, 2);
  `);
  old.close();
  const store = new QueueStore(dir, { clock: () => 10 });
  const db = new DatabaseSync(path);
  t.after(() => db.close());
  const left = () => (db.prepare(`SELECT message_id || ' ' || recipient AS r FROM recipients ORDER BY 1`).all() as { r: string }[]).map((x) => x.r);
  assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 11);
  // The store's own paths: a final outcome for every recipient of a message, and a new message delivered.
  assert.equal(store.claimDue(10, 10, 'bulk').length, 3);
  store.recordAttempt('01A', ['a@y.test', 'b@y.test'], { state: 'delivered' }, '250 ok');
  assert.ok(store.flushOutcomes());
  const id = await store.enqueue({ mailFrom: 'a@x.test', recipients: ['d@z.test'], body: Buffer.from('x') });
  assert.deepEqual(left(), [`${id} d@z.test`, '01B c@y.test']);
  store.recordAttempt(id, ['d@z.test'], { state: 'bounced' }, '550 no');
  assert.ok(store.flushOutcomes());
  assert.deepEqual(left(), ['01B c@y.test']);
  await store.close();
  // Another connection with foreign keys on (ON DELETE CASCADE and the trigger both act) and one without.
  db.exec('PRAGMA foreign_keys=ON');
  db.exec(`DELETE FROM messages WHERE id = '01B'`);
  assert.deepEqual(left(), []);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM messages`).get() as { n: number }).n, 0);
});
