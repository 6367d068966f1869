// The events journal (feedback/events.log): each event-loop turn's events are appended here with
// one write(), one JSON line per event (the same JSON as the events table's body), the moment the
// turn ends; feedback.db gets them in batches every EVENT_WRITE_INTERVAL_MS or EVENT_WRITE_BATCH
// events (relay/feedback/feedback.ts). A write() is in the OS page cache when it returns, so it
// survives a kill -9 of the relay: the same durability class as feedback.db's synchronous=NORMAL
// commit, at a few µs a turn instead of a transaction (the queue's outcome journal,
// relay/queue/journal.ts, does the same for outcomes). At the next start every line is recorded
// into feedback.db before anything else runs; the table is unique by (queue id, id), so a line
// already there (the batch did commit) changes nothing. A power loss can take the tail back, as it
// can a synchronous=NORMAL commit. docs/events.md, "Durability".
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { MailEvent } from './store.ts';

/** Entries already in feedback.db are dropped once the file passes this size (replay cost at start). */
const TRUNCATE_AT_BYTES = 256 * 1024;

export function eventJournalPath(feedbackDir: string): string {
  return join(feedbackDir, 'events.log');
}

/** The events a journal holds, oldest first, each with its line (the body to store). A torn last line is skipped. */
export function readEventJournal(path: string): { events: MailEvent[]; bodies: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], bodies: [] };
    throw err;
  }
  const events: MailEvent[] = [];
  const bodies: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const e = JSON.parse(line) as MailEvent;
      if (e && typeof e.id === 'string' && typeof e.type === 'string' && typeof e.at === 'string') {
        events.push(e);
        bodies.push(line);
      }
    } catch {
      // torn tail (a kill -9 inside a write that spans pages, a power loss)
    }
  }
  return { events, bodies };
}

export class EventJournal {
  readonly path: string;
  private fd: number | undefined;
  private bytes: number;
  private torn = false;

  /** Opened after readEventJournal's events are in feedback.db: it starts over. */
  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'a');
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /**
   * Events [from, end) as JSON lines, in one write(). false when it failed (disk full): the
   * caller writes them to feedback.db at once instead, as before the journal.
   */
  append(events: readonly MailEvent[], from = 0): boolean {
    if (this.fd === undefined) return false;
    // After a short write the file ends inside a line: a newline first ends that torn line, which
    // replay skips, instead of gluing it to this turn's first event.
    let text = this.torn ? '\n' : '';
    for (let i = from; i < events.length; i++) text += `${JSON.stringify(events[i])}\n`;
    try {
      const n = writeSync(this.fd, text);
      this.bytes += n;
      this.torn = n < Buffer.byteLength(text);
      return !this.torn;
    } catch {
      return false;
    }
  }

  /** Every line so far is in feedback.db (committed): start the file over once it is big enough. */
  written(): void {
    if (this.fd === undefined || this.bytes < TRUNCATE_AT_BYTES) return;
    try {
      ftruncateSync(this.fd, 0);
      this.bytes = 0;
      this.torn = false;
    } catch {
      // tried again after the next batch; replaying old lines changes nothing
    }
  }

  /** After the last batch is in feedback.db (`empty`): nothing is left to replay. */
  close(empty: boolean): void {
    if (this.fd === undefined) return;
    if (empty) {
      try {
        ftruncateSync(this.fd, 0);
      } catch {
        // replayed at the next start: changes nothing
      }
    }
    closeSync(this.fd);
    this.fd = undefined;
  }
}
