// The feedback database: the suppression list and the event outbox, in a SQLite file of their own
// beside the queue (dataDir/feedback/feedback.db). Why not queue.db: a million-address import or a
// fleet catch-up of 100,000 entries would hold the queue's write lock for seconds, and every SMTP
// session's 250 waits on that lock (docs/suppression.md). synchronous=NORMAL as for the queue's outcomes:
// survives a killed process; a power cut may take the last few events back (docs/events.md, "Durability").
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createSuppressionTables } from '../suppression/store.ts';
import { createEventTables } from '../events/store.ts';

export function feedbackDbPath(dataDir: string): string {
  return join(dataDir, 'feedback', 'feedback.db');
}

export function openFeedbackDb(dataDir: string, options: { mustExist?: boolean } = {}): DatabaseSync {
  const path = feedbackDbPath(dataDir);
  if (options.mustExist && !existsSync(path)) throw new Error(`no feedback database at ${path} (is --data-dir or --config right?)`);
  mkdirSync(join(dataDir, 'feedback'), { recursive: true });
  const db = new DatabaseSync(path, { timeout: 10_000 });
  db.exec('PRAGMA journal_mode=WAL');
  db.exec('PRAGMA synchronous=NORMAL');
  createSuppressionTables(db);
  createEventTables(db);
  return db;
}
