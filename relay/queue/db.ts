// One connection to queue.db as the store's parts share it: prepared statements cached by their
// SQL, and the light transaction that claims and outcomes use.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { immediateTransaction } from '../sqlite.ts';

export class QueueDb {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  /** Set once close() ran: writes after that are dropped (their recipients stay inflight). */
  closed = false;

  constructor(db: DatabaseSync) {
    this.db = db;
  }

  stmt(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * A transaction that needs no fsync of its own: claims and attempt outcomes. WAL with
   * synchronous=NORMAL still survives a killed process (the frames are in the OS page cache);
   * only a power loss can take the last few back, and then the message is delivered again
   * (at least once) — never lost, since everything acknowledged was fsynced by the commit path
   * (relay/queue/commit.ts), which covers these frames too. See docs/queue-durability.md.
   */
  lightTransaction<T>(fn: () => T): T {
    return immediateTransaction(this.db, fn);
  }

  close(): void {
    this.db.close();
    this.closed = true;
  }
}
