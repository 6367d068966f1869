// Remembers which recipients have had their one delay notice. Kept in the queue's own SQLite file
// (a table of its own, created by relay/queue/schema.ts, migration 4, and cleaned by a trigger when
// the message leaves the queue) so the memory survives restarts without the queue store knowing
// about notices.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openQueueDb } from '../queue/schema.ts';
import { immediateTransaction } from '../sqlite.ts';

export class DelayNoticeLedger {
  private readonly db: DatabaseSync;
  private readonly insert: StatementSync;

  constructor(queueDbPath: string) {
    this.db = openQueueDb(queueDbPath);
    this.insert = this.db.prepare(`INSERT OR IGNORE INTO delay_notices (message_id, recipient) VALUES (?, ?)`);
  }

  /**
   * Marks recipients as notified and returns those that were not yet: a notice is sent at most once
   * (marked before it is queued; a crash in between loses a courtesy notice, never repeats it).
   */
  claimFirst(messageId: string, recipients: string[]): string[] {
    const fresh: string[] = [];
    immediateTransaction(this.db, () => {
      for (const r of recipients) if (Number(this.insert.run(messageId, r).changes) > 0) fresh.push(r);
    });
    return fresh;
  }

  close(): void {
    this.db.close();
  }
}
