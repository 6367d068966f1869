// The one way this relay writes a SQLite transaction: BEGIN IMMEDIATE (take the write lock now, so
// a busy file waits in the connection's busy timeout rather than failing at the first write), and
// a rollback on any error unless SQLite already rolled back itself (SQLITE_FULL, I/O errors).
//
// BEGIN, COMMIT and ROLLBACK are prepared once per connection: db.exec() parses its SQL every
// time, 6-7 µs for a BEGIN + COMMIT pair against under 1 µs prepared (issue 13; the queue and the
// event store run one to three of these per message).
import type { DatabaseSync, StatementSync } from 'node:sqlite';

interface Verbs {
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
}

const verbs = new WeakMap<DatabaseSync, Verbs>();

function verbsOf(db: DatabaseSync): Verbs {
  let v = verbs.get(db);
  if (!v) {
    v = { begin: db.prepare('BEGIN IMMEDIATE'), commit: db.prepare('COMMIT'), rollback: db.prepare('ROLLBACK') };
    verbs.set(db, v);
  }
  return v;
}

/** BEGIN IMMEDIATE, for a transaction whose end the caller writes (commitTransaction / rollbackTransaction). */
export function beginImmediate(db: DatabaseSync): void {
  verbsOf(db).begin.run();
}

export function commitTransaction(db: DatabaseSync): void {
  verbsOf(db).commit.run();
}

/** Rolls back the open transaction, if SQLite has not already (SQLITE_FULL, I/O errors roll back by themselves). */
export function rollbackTransaction(db: DatabaseSync): void {
  if (db.isTransaction) verbsOf(db).rollback.run();
}

export function immediateTransaction<T>(db: DatabaseSync, fn: () => T): T {
  // The verbs looked up once: this runs once or more a message.
  const verbs = verbsOf(db);
  verbs.begin.run();
  try {
    const out = fn();
    verbs.commit.run();
    return out;
  } catch (err) {
    if (db.isTransaction) verbs.rollback.run();
    throw err;
  }
}
