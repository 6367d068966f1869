// The message data after DATA: smtp-server's SMTPStream._feedDataStream (3.21.6) replaced by one
// that finds line-start dots with Buffer.indexOf instead of a JavaScript step per byte, and that
// does not copy each chunk. The original prepends the last 4 bytes of the previous chunk to every
// chunk with Buffer.concat (a copy of the whole body, chunk by chunk, each a fresh buffer for the
// garbage collector) and tests every byte for "\n." in a loop (83 µs per 50 KiB message, the
// largest JavaScript cost per KiB; bench/README.md, "Per KiB of body"). This one keeps the last
// two bytes of the data as state instead of bytes, emits slices of the socket's chunks, and holds
// back only a line-start "." or ".\r" whose meaning the next chunk decides.
//
// Same results as the original for every input and every chunking (relay/intake/data-stream.
// test.ts runs both on random data and random splits): the same content, the same end of data
// (<CR><LF>.<CR><LF>, or ".\r\n" as the very first line), the same escape dots removed (a line
// starting with ".." loses one dot; other line-start dots are content, as in smtp-server), the same
// bytes after the end handed back to the command parser, the same byte count and sizeExceeded.
// Including the original's quirks: the dot kept after a removed escape dot is never special, and
// neither is a dot that is the data's second byte (after a bare LF, which relay/intake/
// data-scanner.ts refuses anyway). Smuggling protection is unchanged: data ends only at
// <CR><LF>.<CR><LF> however the client splits its writes.
import { createRequire } from 'node:module';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

const require = createRequire(import.meta.url);
const PINNED = '3.21.6';
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.', 'latin1');

interface DataStream {
  writable: boolean;
  destroyed: boolean;
  write(chunk: Buffer): boolean;
  once(event: string, fn: () => void): void;
  removeListener(event: string, fn: () => void): void;
}

type Done = (err?: Error) => void;

/** SMTPStream's own fields used here, and this module's state (prefixed _mf) for the current DATA. */
interface Stream {
  _dataStream: DataStream;
  _atDataStart: boolean;
  _lastBytes: Buffer | false;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void;
  /** The two raw bytes (escape dots included) before the next unprocessed one (before what is held). */
  _mfPrev1: number;
  _mfPrev2: number;
  /** Raw bytes before the next unprocessed one, capped at 3 (only "first, second, later" matters). */
  _mfSeen: number;
  /** Whether the held line-start dot ends the data when followed by CR LF (a CR LF before it, or the data's start). */
  _mfHeldMayEnd: boolean;
}

type Feed = (this: Stream, chunk: Buffer, done: Done) => void;

let original: Feed | undefined;

/** Replaces SMTPStream._feedDataStream once; throws when smtp-server is not the code this was checked against. */
export function applyDataStreamPatch(): void {
  if (original) return;
  const version = (require('smtp-server/package.json') as { version: string }).version;
  const proto = SMTPStream.prototype as unknown as { _feedDataStream: Feed; startDataMode(this: Stream, maxBytes?: number): unknown };
  const feed = proto._feedDataStream.toString();
  const start = proto.startDataMode.toString();
  if (
    version !== PINNED ||
    !feed.includes('Buffer.concat([this._lastBytes, chunk]') ||
    !feed.includes('setImmediate(() => this._feedDataStream(rest, done))') ||
    !start.includes('this._atDataStart = true')
  ) {
    throw new Error(`smtp-server ${version}: SMTPStream._feedDataStream is not the code relay/intake/data-stream.ts replaces; review the patch`);
  }
  original = proto._feedDataStream;
  const originalStart = proto.startDataMode;
  proto.startDataMode = function startDataMode(this: Stream, maxBytes?: number) {
    this._mfPrev1 = -1;
    this._mfPrev2 = -1;
    this._mfSeen = 0;
    this._mfHeldMayEnd = false;
    return originalStart.call(this, maxBytes);
  };
  proto._feedDataStream = feedDataStream;
}

/** smtp-server's own implementation, kept for the differential test. */
export function originalFeedDataStream(): Feed {
  if (!original) throw new Error('applyDataStreamPatch() first');
  return original;
}

function feedDataStream(this: Stream, chunk: Buffer, done: Done): void {
  const held = this._lastBytes && this._lastBytes.length ? this._lastBytes : undefined;
  this._lastBytes = false;
  if (!held) return scan(this, chunk, done);
  // A held line-start dot: its next two bytes decide (at most 3 bytes joined, never a chunk).
  const need = 3 - held.length;
  const joined = Buffer.concat([held, chunk.subarray(0, need)]);
  const verdict = dotVerdict(joined, 0, this._mfHeldMayEnd);
  if (verdict === 'more') {
    // Only ".\r" so far, with nothing after it in this chunk (which was its "\r").
    this._lastBytes = joined;
    return done();
  }
  if (verdict === 'end') {
    this._endDataMode(false, chunk.subarray(need), done);
    return;
  }
  if (verdict === 'escape') {
    // The held dot goes; the chunk's first byte is the kept dot: content, never special (its
    // raw predecessor is the removed dot).
    this._atDataStart = false;
    step(this, DOT);
    return scan(this, chunk, done);
  }
  // Plain content after all.
  this._countDataBytes(held.length);
  if (this._dataStream.writable) this._dataStream.write(held);
  for (const b of held) step(this, b);
  scan(this, chunk, done);
}

/** Records one raw byte as consumed. */
function step(s: Stream, b: number): void {
  s._mfPrev2 = s._mfPrev1;
  s._mfPrev1 = b;
  if (s._mfSeen < 3) s._mfSeen++;
}

/**
 * What a line-start dot at `at` means, from the bytes after it: the end of data ("." CR LF where
 * `mayEnd`), an escape (".."), plain content, or "more" when a CR is its last byte and the next
 * chunk decides.
 */
function dotVerdict(buf: Buffer, at: number, mayEnd: boolean): 'end' | 'escape' | 'content' | 'more' {
  const b1 = buf[at + 1];
  if (b1 === DOT) return 'escape';
  if (b1 === CR && mayEnd) {
    if (at + 2 >= buf.length) return 'more';
    return buf[at + 2] === LF ? 'end' : 'content';
  }
  return 'content';
}

function scan(s: Stream, chunk: Buffer, done: Done): void {
  const ds = s._dataStream;
  const n = chunk.length;
  let start = 0; // first byte not yet emitted
  let at = 0; // where the next candidate may be
  // A dot at the chunk's first byte is at a line start when the data starts there, or after an LF
  // (not as the data's second byte: smtp-server never looked there).
  let cand = chunk[0] === DOT && (s._mfSeen === 0 || (s._mfSeen >= 2 && s._mfPrev1 === LF)) ? 0 : next(chunk, 0, s._mfSeen);
  while (cand >= 0) {
    const mayEnd = s._mfSeen + cand === 0 || (cand >= 2 ? chunk[cand - 2] : cand === 1 ? s._mfPrev1 : s._mfPrev2) === CR;
    if (cand + 1 >= n) {
      // Its next byte is in the next chunk: hold the dot.
      emit(s, chunk, start, cand);
      remember(s, chunk, cand);
      s._mfHeldMayEnd = mayEnd;
      s._lastBytes = chunk.subarray(cand);
      return done();
    }
    const verdict = dotVerdict(chunk, cand, mayEnd);
    if (verdict === 'more') {
      emit(s, chunk, start, cand);
      remember(s, chunk, cand);
      s._mfHeldMayEnd = true;
      s._lastBytes = chunk.subarray(cand);
      return done();
    }
    if (verdict === 'end') {
      const content = chunk.subarray(start, cand);
      s._countDataBytes(content.length);
      s._endDataMode(content, chunk.subarray(cand + 3), done);
      return;
    }
    if (verdict === 'escape') {
      emit(s, chunk, start, cand);
      if (cand === 0 && s._mfSeen === 0) s._atDataStart = false;
      start = cand + 1;
    }
    at = cand + 1;
    cand = next(chunk, at, s._mfSeen);
  }
  remember(s, chunk, n);
  const rest = chunk.subarray(start);
  if (rest.length === 0) return done();
  s._countDataBytes(rest.length);
  if (!ds.writable) return done();
  if (ds.write(rest) || ds.destroyed) return done();
  // Backpressure: the socket is read again once the consumer drains (a destroyed stream only closes).
  const onDrain = () => {
    ds.removeListener('drain', onDrain);
    ds.removeListener('close', onDrain);
    done();
  };
  ds.once('drain', onDrain);
  ds.once('close', onDrain);
}

/**
 * The next line-start dot at or after `from` ("\n." in the chunk; the byte before `from` is never an
 * LF here: it is a dot or there is none): its index, or -1. A dot that is the data's second byte
 * does not count.
 */
function next(chunk: Buffer, from: number, seen: number): number {
  let i = chunk.indexOf(LF_DOT, from);
  if (i === 0 && seen === 0) i = chunk.indexOf(LF_DOT, 1);
  return i < 0 ? -1 : i + 1;
}

/** Writes chunk[from, to) to the data stream (no backpressure: the chunk's last write waits for it). */
function emit(s: Stream, chunk: Buffer, from: number, to: number): void {
  if (to <= from) return;
  s._countDataBytes(to - from);
  if (s._dataStream.writable) s._dataStream.write(chunk.subarray(from, to));
}

/** The raw history up to (not including) chunk[to]. */
function remember(s: Stream, chunk: Buffer, to: number): void {
  if (to >= 2) {
    s._mfPrev2 = chunk[to - 2]!;
    s._mfPrev1 = chunk[to - 1]!;
  } else if (to === 1) {
    s._mfPrev2 = s._mfPrev1;
    s._mfPrev1 = chunk[0]!;
  }
  s._mfSeen = Math.min(3, s._mfSeen + to);
}
