// The final-outcome journal (queue/outcomes.log): every final outcome (a receiver's 250, a bounce,
// a suppression) is appended here with one write() the moment the engine records it, before it
// waits for its batch's SQLite transaction. A write() is in the OS page cache when it returns, so
// it survives a kill -9 of the relay (the same durability class as a synchronous=NORMAL commit, at
// a few µs instead of a transaction: docs/queue-durability.md, "Outcomes"). At the next start the
// store applies the entries whose recipients are still inflight, so a receiver that said 250 just
// before the crash is not sent the message again. A power loss can take the tail back: those
// recipients are delivered again (at least once), as before.
// Deferrals are not journalled: losing one only means the next attempt comes at once.
import type { DatabaseSync } from 'node:sqlite';
import { JournalFile, readJournalLines } from '../journal-file.ts';
import { immediateTransaction } from '../sqlite.ts';

export type FinalState = 'delivered' | 'bounced' | 'suppressed';

/** A reply longer than this is cut in the journal (queue.db gets it whole in the batch). */
const REPLY_CHARS = 300;

export class OutcomeJournal extends JournalFile {
  /**
   * One line, one write(): after a kill -9 it is there whole or not at all. A failed write (disk
   * full) is not the outcome's failure: it still goes to queue.db with its batch, only without the
   * head start.
   */
  record(state: FinalState, messageId: string, recipients: readonly string[], reply: string): void {
    this.append(`${JSON.stringify([state, messageId, recipients, reply.slice(0, REPLY_CHARS)])}\n`);
  }
}

/**
 * At start, before inflight recipients are queued again: the journalled outcomes of recipients
 * still inflight (their batch never reached queue.db) are applied, and messages with nothing left
 * open are deleted. Only inflight rows are touched: an older entry whose outcome is in queue.db
 * already (or was retried by an administrator since) changes nothing. A torn last line (power
 * loss) is skipped. Returns how many recipients were settled from the journal.
 */
export function replayJournal(db: DatabaseSync, path: string): number {
  const entries: [FinalState, string, string[], string][] = [];
  for (const line of readJournalLines(path)) {
    try {
      const e = JSON.parse(line) as unknown;
      if (Array.isArray(e) && e.length === 4 && Array.isArray(e[2])) entries.push(e as [FinalState, string, string[], string]);
    } catch {
      // torn tail
    }
  }
  if (entries.length === 0) return 0;
  const settle = db.prepare(
    `UPDATE recipients SET state = ?, attempts = attempts + 1, last_reply = ?, next_attempt_at = ? WHERE message_id = ? AND recipient = ? AND state = 'inflight'`,
  );
  const open = db.prepare(`SELECT EXISTS (SELECT 1 FROM recipients WHERE message_id = ? AND state IN ('queued', 'inflight')) AS n`);
  const del = db.prepare(`DELETE FROM messages WHERE id = ?`);
  const now = Date.now();
  let settled = 0;
  immediateTransaction(db, () => {
    for (const [state, messageId, recipients, reply] of entries) {
      let changed = 0;
      for (const r of recipients) changed += Number(settle.run(state, reply, now, messageId, r).changes);
      if (changed > 0 && (open.get(messageId) as { n: number }).n === 0) del.run(messageId);
      settled += changed;
    }
  });
  return settled;
}
