// A message body as it arrives: in memory up to SPOOL_ABOVE_BYTES (128 KiB) (or while the intake memory
// budget has room), on disk past that, so what the sessions hold together stays bounded
// whatever the concurrent sizes (issue 17: 20 clients × 27 MB took the relay to 466 MB).
//
// The budget used to be taken chunk by chunk while bodies arrived, and a session whose next
// chunk did not fit was answered 451. With many large bodies at once that livelocked: 50
// clients × 25 MiB each took a slice of the 64 MiB budget, none could finish, all got 451 and
// retried the same way (0 accepted in 3 minutes, bench/README.md). Now a large body goes to a
// spool file as it arrives (no budget needed) and stays there: after the final "." only its
// header section is read back (spooled()), and the queue commit stores the rest in parts straight
// from the file (relay/queue/body-parts.ts). Only a body read whole (withPrefix(): in memory, or a
// header section past HEAD_LIMIT_BYTES) takes its copy from the budget, whole — waiting for room
// (another message's commit gives it back) rather than failing, so the waiters go one by one.
//
// The spool file is unlinked as soon as it is opened: it lives as long as the descriptor, a
// crash leaves nothing behind, and nothing in it was ever acknowledged (250 still means the
// queue's fsync, relay/queue/commit.ts). It lives under the data directory (the queue's
// volume), not /tmp, which may be small or memory-backed.
import { mkdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bulkBuffersDone } from '../bulk-garbage.ts';
import type { IntakeMemoryBudget } from './memory-budget.ts';

/**
 * A body past this many bytes is written to disk as it arrives: one session holds at most this
 * much (plus a write batch), 50 sessions receiving 25 MiB each hold ~13 MB. Typical application
 * mail (the bench's 1 and 50 KiB) never touches the disk.
 */
export const SPOOL_ABOVE_BYTES = 128 * 1024;
/** Spooled bytes are written in batches of about this size (fewer system calls than one per chunk). */
const WRITE_BATCH_BYTES = 128 * 1024;

/** A spooled body's header section must end within this many bytes to be stored from the file in parts. */
const HEAD_LIMIT_BYTES = 1024 * 1024;
const HEAD_STEP_BYTES = 16 * 1024;

export const spoolDirOf = (dataDir: string) => join(dataDir, 'intake-spool');

export class SpoolError extends Error {}

export class IncomingBody {
  private chunks: Buffer[] = [];
  private held = 0;
  private reserved = 0;
  private file: FileHandle | undefined;
  private fileBytes = 0;
  private pendingBytes = 0;
  private readonly budget: IntakeMemoryBudget;
  private readonly spoolDir: string;
  /** Bytes received (kept or not). */
  bytes = 0;
  dropped = false;

  constructor(budget: IntakeMemoryBudget, spoolDir: string) {
    this.budget = budget;
    this.spoolDir = spoolDir;
  }

  /**
   * Keeps a chunk. Returns a promise only when the body is (now) on disk and the caller should
   * wait for the write (backpressure on the client); the in-memory path stays synchronous.
   */
  add(chunk: Buffer): Promise<void> | undefined {
    this.bytes += chunk.length;
    if (this.dropped) {
      bulkBuffersDone(chunk.length);
      return undefined;
    }
    if (!this.file && this.held + chunk.length <= SPOOL_ABOVE_BYTES && this.budget.tryReserve(chunk.length)) {
      this.reserved += chunk.length;
      this.held += chunk.length;
      this.chunks.push(chunk);
      return undefined;
    }
    this.chunks.push(chunk);
    this.pendingBytes += chunk.length;
    bulkBuffersDone(chunk.length);
    if (!this.file) return this.spool();
    return this.pendingBytes >= WRITE_BATCH_BYTES ? this.write() : undefined;
  }

  /** Past the size limit: nothing more is kept, what was kept goes at once. */
  drop(): void {
    this.dropped = true;
    this.chunks = [];
    this.pendingBytes = 0;
    void this.release();
  }

  /** The body went to a spool file (spooled() then; otherwise it is in memory, inMemory()). */
  get onDisk(): boolean {
    return this.file !== undefined;
  }

  /**
   * The whole message, `prefix` (UTF-8) first, in one Buffer when the body is in memory, at once
   * (no promise, no tick: every message up to 128 KiB); undefined when it was spooled (withPrefix()).
   */
  inMemory(prefix: string): Buffer | undefined {
    if (this.file) return undefined;
    const prefixBytes = Buffer.byteLength(prefix);
    // May overshoot the budget by one message while the chunks are let go, never more.
    this.budget.take(prefixBytes + this.held);
    this.reserved += prefixBytes + this.held;
    // The prefix written in place and the chunks copied after it: no Buffer of the prefix, no array.
    const whole = Buffer.allocUnsafe(prefixBytes + this.held);
    whole.write(prefix, 0);
    let at = prefixBytes;
    for (const c of this.chunks) at += c.copy(whole, at);
    // What was held is in `whole` now: a second call must not size a copy for chunks it no longer has.
    this.chunks = [];
    this.held = 0;
    return whole;
  }

  /**
   * The whole message, `prefix` (UTF-8) first, in one Buffer: the copy the queue commit binds. Its
   * bytes are taken from the budget; a spooled body waits up to `waitMs` for them, and false means
   * they did not come (the caller answers 451 4.3.1).
   */
  async withPrefix(prefix: string, waitMs: number): Promise<Buffer | false> {
    const held = this.inMemory(prefix);
    if (held) return held;
    await this.write();
    const prefixBytes = Buffer.byteLength(prefix);
    const size = prefixBytes + this.fileBytes;
    if (!(await this.budget.reserveWithin(size, waitMs))) return false;
    this.reserved += size;
    const whole = Buffer.allocUnsafe(size);
    whole.write(prefix, 0);
    let at = prefixBytes;
    try {
      while (at < size) {
        const { bytesRead } = await this.file!.read(whole, at, size - at, at - prefixBytes);
        if (bytesRead === 0) throw new SpoolError(`spool file ended at ${at - prefixBytes} of ${this.fileBytes} bytes`);
        at += bytesRead;
      }
    } catch (err) {
      throw err instanceof SpoolError ? err : new SpoolError((err as Error).message);
    }
    return whole;
  }

  /**
   * A spooled body as the queue stores it, in parts straight from the spool file (relay/queue/
   * body-parts.ts): its header section (through the empty line) read back into memory, where the
   * intake rewrites it, and where the rest lies in the file. No budget is taken: the commit holds one
   * part at a time. undefined when the body is in memory, or when its header section does not end
   * within HEAD_LIMIT_BYTES (withPrefix() then, the whole copy).
   */
  async spooled(): Promise<{ head: Buffer; fd: number; offset: number; length: number } | undefined> {
    if (!this.file || this.dropped) return undefined;
    await this.write();
    const limit = Math.min(HEAD_LIMIT_BYTES, this.fileBytes);
    let read = Buffer.alloc(0);
    try {
      while (read.length < limit) {
        const step = Buffer.allocUnsafe(Math.min(HEAD_STEP_BYTES, limit - read.length));
        const { bytesRead } = await this.file.read(step, 0, step.length, read.length);
        if (bytesRead === 0) throw new SpoolError(`spool file ended at ${read.length} of ${this.fileBytes} bytes`);
        const from = Math.max(0, read.length - 3);
        read = Buffer.concat([read, step.subarray(0, bytesRead)]);
        const end = read.indexOf('\r\n\r\n', from);
        if (end >= 0) {
          const at = end + 4;
          return { head: Buffer.from(read.subarray(0, at)), fd: this.file.fd, offset: at, length: this.fileBytes - at };
        }
      }
    } catch (err) {
      throw err instanceof SpoolError ? err : new SpoolError((err as Error).message);
    }
    return undefined;
  }

  /**
   * Gives back every reserved byte and closes the spool file (always called, whatever happened).
   * A promise only when there is a file to close: a body held in memory is let go at once.
   */
  release(): Promise<void> | undefined {
    this.budget.release(this.reserved);
    this.reserved = 0;
    this.held = 0;
    const file = this.file;
    if (!file) return undefined;
    this.file = undefined;
    return file.close().catch(() => undefined);
  }

  /** Moves what is held to a new spool file; from now on every chunk goes there. */
  private async spool(): Promise<void> {
    const path = join(this.spoolDir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    try {
      mkdirSync(this.spoolDir, { recursive: true });
      this.file = await open(path, 'w+', 0o600);
      await unlink(path);
    } catch (err) {
      throw new SpoolError((err as Error).message);
    }
    // The held chunks now count as pending writes: their reservation goes back.
    this.budget.release(this.reserved);
    this.reserved = 0;
    this.pendingBytes += this.held;
    this.held = 0;
    await this.write();
  }

  private async write(): Promise<void> {
    if (!this.file || this.chunks.length === 0) return;
    const batch = this.chunks;
    this.chunks = [];
    this.pendingBytes = 0;
    try {
      let at = 0;
      const total = batch.reduce((n, c) => n + c.length, 0);
      // writev may write less than asked (a full disk, a signal): the rest is written again.
      while (at < total) {
        const { bytesWritten } = await this.file.writev(at === 0 ? batch : [Buffer.concat(batch).subarray(at)], this.fileBytes);
        if (bytesWritten === 0) throw new SpoolError('spool file write made no progress');
        at += bytesWritten;
        this.fileBytes += bytesWritten;
      }
    } catch (err) {
      throw err instanceof SpoolError ? err : new SpoolError((err as Error).message);
    }
  }
}
