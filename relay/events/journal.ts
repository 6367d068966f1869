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
import { join } from 'node:path';
import { JournalFile, readJournalLines } from '../journal-file.ts';
import type { MailEvent } from './store.ts';

export function eventJournalPath(feedbackDir: string): string {
  return join(feedbackDir, 'events.log');
}

/** The events a journal holds, oldest first, each with its line (the body to store). A torn last line is skipped. */
export function readEventJournal(path: string): { events: MailEvent[]; bodies: string[] } {
  const events: MailEvent[] = [];
  const bodies: string[] = [];
  for (const line of readJournalLines(path)) {
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

/** Opened after readEventJournal's events are in feedback.db: it starts over. */
export class EventJournal extends JournalFile {
  /**
   * Events [from, end) as JSON lines, in one write(). false when it failed (disk full): the
   * caller writes them to feedback.db at once instead, as before the journal.
   */
  record(events: readonly MailEvent[], from = 0): boolean {
    let text = '';
    for (let i = from; i < events.length; i++) text += `${JSON.stringify(events[i])}\n`;
    return this.append(text);
  }
}
