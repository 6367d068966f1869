// Large bodies in parts (issue 17): a body past PART_BYTES is stored as rows of PART_BYTES in
// body_parts (schema.ts, migration 9), written inside the intake's transaction part by part (from
// the intake's spool file, or slices of a Buffer) and read back part by part, so that neither the
// commit nor delivery holds a 25 MiB message whole. Before, one blob was bound whole (node:sqlite's
// copy), recorded whole by SQLite and read whole for each attempt: 341-458 MB peak for 50 x 25 MiB
// at once. Small mail keeps its one row and one read (messages.body, parts = 0).
//
// Durability is the commit's: every part is in the transaction whose WAL fsync comes before the
// 250 (commit.ts), so a kill -9 leaves either the message with all its parts or nothing.
import { readSync } from 'node:fs';

/** Rows of this size; a body up to this size stays one row of messages. */
export const PART_BYTES = 128 * 1024;

/**
 * A body the intake spooled to disk as it arrived: `head` first (the trace header and the header
 * section as the intake rewrote it), then `length` bytes of the spool file from `offset`. The
 * descriptor belongs to the intake, which keeps it open until enqueue() has answered; it may come
 * from a session thread (descriptors are the process's, not a thread's), so this is plain data.
 */
export interface SpooledBody {
  head: Uint8Array;
  fd: number;
  offset: number;
  length: number;
}

export type BodyInput = Buffer | SpooledBody;

export function isSpooled(body: BodyInput): body is SpooledBody {
  return !(body instanceof Uint8Array);
}

export function sizeOfBody(body: BodyInput): number {
  return body instanceof Uint8Array ? body.length : body.head.length + body.length;
}

/** Whether the body is stored in parts (and how many); 0: one row. */
export function partCount(size: number): number {
  return size > PART_BYTES ? Math.ceil(size / PART_BYTES) : 0;
}

/**
 * The body's parts in order, PART_BYTES each (the last shorter). A spooled body is read into
 * `scratch` (PART_BYTES, reused: node:sqlite copies what it binds), a Buffer is sliced. Synchronous
 * reads: the commit runs inside one transaction on the event loop, and the file was just written
 * (page cache).
 */
export function* partsOf(body: BodyInput, scratch: Buffer): Generator<Uint8Array> {
  if (body instanceof Uint8Array) {
    for (let at = 0; at < body.length; at += PART_BYTES) yield body.subarray(at, Math.min(body.length, at + PART_BYTES));
    return;
  }
  const head = body.head;
  const size = head.length + body.length;
  let done = 0; // bytes of the whole body yielded
  while (done < size) {
    const want = Math.min(PART_BYTES, size - done);
    let filled = 0;
    if (done < head.length) {
      const n = Math.min(want, head.length - done);
      scratch.set(head.subarray(done, done + n), 0);
      filled = n;
    }
    while (filled < want) {
      const fileAt = body.offset + done + filled - head.length;
      const n = readSync(body.fd, scratch, filled, want - filled, fileAt);
      if (n === 0) throw new Error(`spool file ended at ${fileAt - body.offset} of ${body.length} bytes`);
      filled += n;
    }
    yield scratch.subarray(0, want);
    done += want;
  }
}

/** A body stored in parts, read one part at a time (delivery), or whole (administration, tests). */
export class StoredBody {
  readonly size: number;
  readonly parts: number;
  private readonly readPart: (seq: number) => Uint8Array | undefined;

  constructor(size: number, parts: number, readPart: (seq: number) => Uint8Array | undefined) {
    this.size = size;
    this.parts = parts;
    this.readPart = readPart;
  }

  /** Part `seq`; throws when it is gone (the message was deleted meanwhile: the attempt fails locally). */
  part(seq: number): Buffer {
    const p = this.readPart(seq);
    if (!p) throw new Error(`body part ${seq} of ${this.parts} is missing (message deleted while being read?)`);
    return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  }

  /** The parts from `from` on, each read when the previous one is done with. */
  *chunks(from = 0): Generator<Buffer> {
    for (let seq = from; seq < this.parts; seq++) yield this.part(seq);
  }

  whole(): Buffer {
    return Buffer.concat([...this.chunks()], this.size);
  }
}
