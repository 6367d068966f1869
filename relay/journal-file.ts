// An append-only file of JSON lines, the relay's cheap record between a fact and its SQLite
// batch: a write() is in the OS page cache when it returns, so a line survives a kill -9 of the
// relay (the durability class of a synchronous=NORMAL commit, at a few µs instead of a
// transaction). Two journals use it: final outcomes (relay/queue/journal.ts) and events
// (relay/events/journal.ts). Each replays its file at start, then opens it here, empty.
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

/** Lines already in the database are dropped once the file passes this size (replay cost at start). */
const TRUNCATE_AT_BYTES = 256 * 1024;

/** The file's lines, without empty ones; none when there is no file. A torn last line is the reader's to skip. */
export function readJournalLines(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text.split('\n').filter((line) => line !== '');
}

export class JournalFile {
  readonly path: string;
  private fd: number | undefined;
  private bytes = 0;
  private torn = false;

  /** Opened after the file's lines were replayed into the database: it starts over. */
  constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'a');
    ftruncateSync(this.fd, 0);
  }

  /**
   * Whole lines (each ending "\n") in one write(). false when it failed (ENOSPC, EIO) or was
   * short: the database batch is then the only record, as before the journal.
   */
  append(lines: string): boolean {
    if (this.fd === undefined) return false;
    // After a short write the file ends inside a line: a newline first ends that torn line, which
    // replay skips, instead of gluing it to the next one.
    const text = this.torn ? `\n${lines}` : lines;
    try {
      const n = writeSync(this.fd, text);
      this.bytes += n;
      this.torn = n < Buffer.byteLength(text);
      return !this.torn;
    } catch {
      return false;
    }
  }

  /** Every line so far is in the database (committed): start the file over once it is big enough to be worth a syscall. */
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

  /** `empty`: the last batch is in the database, nothing is left to replay. */
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
