// The final-outcome journal (queue/outcomes.log): every final outcome (a receiver's 250, a bounce,
// a suppression) is appended here with one write() the moment the engine records it, before it
// waits for its batch's SQLite transaction. A write() is in the OS page cache when it returns, so
// it survives a kill -9 of the relay (the same durability class as a synchronous=NORMAL commit, at
// a few µs instead of a transaction: docs/queue-durability.md, "Outcomes"). At the next start the
// store applies the entries whose recipients are still inflight, so a receiver that said 250 just
// before the crash is not sent the message again. A power loss can take the tail back: those
// recipients are delivered again (at least once), as before.
// Deferrals are not journalled: losing one only means the next attempt comes at once.
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { immediateTransaction } from '../sqlite.ts';

export type FinalState = 'delivered' | 'bounced' | 'suppressed';

/** Entries already written to queue.db are dropped once the file passes this size (replay cost at start). */
const TRUNCATE_AT_BYTES = 256 * 1024;
/** A reply longer than this is cut in the journal (queue.db gets it whole in the batch). */
const REPLY_CHARS = 300;

export class OutcomeJournal {
  readonly path: string;
  private fd: number | undefined;
  private bytes: number;

  /** Opened after replayJournal: what was in the file is in queue.db now, so it starts over. */
  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'a');
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /**
   * One line, one write(): after a kill -9 it is there whole or not at all. A failed write (disk
   * full) is not the outcome's failure: it still goes to queue.db with its batch, only without the
   * head start.
   */
  append(state: FinalState, messageId: string, recipients: readonly string[], reply: string): void {
    if (this.fd === undefined) return;
    const line = `${JSON.stringify([state, messageId, recipients, reply.slice(0, REPLY_CHARS)])}\n`;
    try {
      this.bytes += writeSync(this.fd, line);
    } catch {
      // ENOSPC, EIO: the batch is the record
    }
  }

  /**
   * Every entry so far is in queue.db (committed; a kill -9 keeps that as it keeps this file):
   * start the file over once it is big enough to be worth a syscall.
   */
  written(): void {
    if (this.fd === undefined || this.bytes < TRUNCATE_AT_BYTES) return;
    try {
      ftruncateSync(this.fd, 0);
      this.bytes = 0;
    } catch {
      // tried again after the next batch; replaying old entries changes nothing
    }
  }

  /** After the last batch is in queue.db: nothing is left to replay. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      ftruncateSync(this.fd, 0);
    } catch {
      // replayed at the next start: changes nothing
    }
    closeSync(this.fd);
    this.fd = undefined;
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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const entries: [FinalState, string, string[], string][] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
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
