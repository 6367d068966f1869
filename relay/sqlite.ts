// The one way this relay writes a SQLite transaction: BEGIN IMMEDIATE (take the write lock now, so
// a busy file waits in the connection's busy timeout rather than failing at the first write), and
// a rollback on any error unless SQLite already rolled back itself (SQLITE_FULL, I/O errors).
import type { DatabaseSync } from 'node:sqlite';

export function immediateTransaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
