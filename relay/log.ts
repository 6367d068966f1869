import { fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Longest string a log field keeps. Clients choose much of what is logged (AUTH user names,
 * envelope addresses, HELO names, remote servers' replies); whole, a 10 KB user name made a
 * 10,391-character line per attempt. Longer values keep their start and say how much was cut.
 */
export const LOG_FIELD_MAX = 256;
/** Most items of a logged array (recipient lists) kept. */
export const LOG_ARRAY_MAX = 20;

/** A string bounded for a log line: truncated with the count of what was cut. */
export function boundLogString(s: string): string {
  if (s.length <= LOG_FIELD_MAX) return s;
  return `${s.slice(0, LOG_FIELD_MAX)}…(+${s.length - LOG_FIELD_MAX} chars)`;
}

function boundValue(v: unknown): unknown {
  if (typeof v === 'string') return boundLogString(v);
  if (Array.isArray(v)) {
    const kept = v.slice(0, LOG_ARRAY_MAX).map((x) => (typeof x === 'string' ? boundLogString(x) : x));
    if (v.length > LOG_ARRAY_MAX) kept.push(`…(+${v.length - LOG_ARRAY_MAX} items)`);
    return kept;
  }
  return v;
}

const tooLong = (v: unknown): boolean =>
  (typeof v === 'string' && v.length > LOG_FIELD_MAX) ||
  (Array.isArray(v) && (v.length > LOG_ARRAY_MAX || v.some((x) => typeof x === 'string' && x.length > LOG_FIELD_MAX)));

/**
 * pino's log formatter: every top-level string (and array of strings) of a line bounded. JSON
 * encoding already escapes quotes and control characters, and invalid UTF-8 from a client was
 * decoded to U+FFFD before it got here, so a line always parses; this keeps it short too. The
 * common line has nothing to cut and is passed through without a copy.
 */
function boundFields(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in obj) {
    if (!tooLong(obj[k])) continue;
    out ??= { ...obj };
    out[k] = boundValue(obj[k]);
  }
  return out ?? obj;
}

/**
 * pino's `time` field, the same text as pino.stdTimeFunctions.isoTime (`,"time":"<ISO 8601>"`,
 * docs/observability.md promises ISO), without a Date and its toISOString per line: the part up
 * to the second is built once a second and the milliseconds appended.
 */
let isoSecond = Number.NaN;
let isoPrefix = '';
export function isoTime(): string {
  const now = Date.now();
  const ms = now % 1000;
  const second = now - ms;
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

/** What the batcher writes a turn's lines to (stdoutLines: a file, a pipe, SonicBoom). */
interface LinesOut {
  /** Lines as text; bytes only for the rest of a write that came up short. */
  write(lines: string | Buffer): unknown;
  flushSync(): void;
  flush(cb?: (err?: Error) => void): void;
}

/** Batchers with lines not yet handed on, written out by the exit handler below. */
const unhanded = new Set<TurnBatchedLines>();
let exitHandler = false;

/**
 * The lines of one event-loop turn handed to the stream in one write, at the end of the turn
 * (setImmediate): SonicBoom measures the UTF-8 length of the whole string it is accumulating on
 * every write, so one line at a time while a write was in flight cost it more per line the more
 * lines were waiting (where the lines go: stdoutLines). An idle relay still logs at once (in the
 * same turn); lines not yet handed on when the process exits are written synchronously then, in
 * order (pino's own exit flush does the same for the stream).
 */
export class TurnBatchedLines implements DestinationStream {
  private pending = '';
  private readonly out: LinesOut;
  private readonly handOn = () => {
    unhanded.delete(this);
    const lines = this.pending;
    this.pending = '';
    this.out.write(lines);
  };

  constructor(out: LinesOut) {
    this.out = out;
    if (!exitHandler) {
      exitHandler = true;
      process.once('exit', () => {
        for (const b of unhanded) {
          try {
            b.flushSync();
          } catch {
            // The stream is gone (ended at beforeExit, or a closed pipe): nothing left to write to.
          }
        }
      });
    }
  }

  write(line: string): void {
    if (this.pending === '') {
      unhanded.add(this);
      setImmediate(this.handOn);
    }
    this.pending += line;
  }

  /** pino's logger.flush(): what is held, then the stream's own flush. */
  flush(cb?: (err?: Error) => void): void {
    if (this.pending !== '') this.handOn();
    this.out.flush(cb);
  }

  flushSync(): void {
    if (this.pending !== '') this.handOn();
    this.out.flushSync();
  }
}

/**
 * JSON logs on stdout (or a given stream); one line per event, fields not prose.
 * stdout is written asynchronously: a synchronous write per line was 6.5 % of the relay's busy time
 * under load (two lines per message, 22:37 profile). A turn's lines go to the stream together
 * (TurnBatchedLines); lines handed on while a write is in flight go out together with the next
 * one, so an idle relay logs at once and a busy one in batches; what is left is flushed when the
 * process exits (a kill -9 can lose the lines of that instant, never mail: the queue, not the log,
 * is the record).
 */
export function createLogger(level: string, component: string, destination?: DestinationStream): Logger {
  const options = { level, base: { component }, timestamp: isoTime, formatters: { log: boundFields } };
  const logger = pino(options, destination ?? new TurnBatchedLines(stdoutLines()));
  const internals = logger as unknown as PinoInternals;
  pinoAsJson ??= internals[asJsonSym] as AsJson;
  // Children (Object.create of their parent) inherit both. What lineOf's text is right for: these
  // serializers (pino's err only) and no redaction; a child given its own goes to pino's asJson.
  internals[asJsonSym] = lineOf;
  internals[plainSym] = [internals[serializersSym], internals[stringifiersSym]];
  return logger;
}

const { asJsonSym, lsCacheSym, chindingsSym, endSym, serializersSym, stringifiersSym, formattersSym } = pino.symbols as unknown as Record<
  'asJsonSym' | 'lsCacheSym' | 'chindingsSym' | 'endSym' | 'serializersSym' | 'stringifiersSym' | 'formattersSym',
  symbol
>;
const plainSym = Symbol('mailfleet.log.plain');
type PinoInternals = Record<symbol, unknown>;
type AsJson = (this: PinoInternals, obj: Record<string, unknown>, msg: unknown, num: number, time: string) => string;
/** pino's own asJson, for the lines lineOf leaves to it. */
let pinoAsJson: AsJson | undefined;

/**
 * pino's asJson (the line's text) for the relay's lines, the same text made cheaper: the fields
 * by one JSON.stringify of the whole object instead of one per field and three concatenations
 * each (the per-message 'queued' and 'delivered' lines: 0.95 -> 0.58 us a line; pino's _asJson
 * was the relay's largest allocation site, 3.4 KiB a message, bench/README.md 2026-12-07). It is the same text because pino writes each own enumerable field
 * with JSON.stringify's rules in the same order (for...in = JSON.stringify's key order), skips
 * undefined and functions as JSON.stringify does, and writes a non-finite number as null; its
 * quicker escaping of short strings differs only for a lone UTF-16 surrogate (here escaped as
 * \udXXX, there written raw, which UTF-8 turns into U+FFFD). Anything else goes to pino's own:
 * an `err` field (its serializer), a top-level object that is not plain (an array, a Date, a class
 * instance), a message that is not a string, a value JSON.stringify throws on (a BigInt, a cycle),
 * a child logger given serializers, redaction or a log formatter of its own.
 */
function lineOf(this: PinoInternals, obj: Record<string, unknown>, msg: unknown, num: number, time: string): string {
  const plain = this[plainSym] as [unknown, unknown];
  if (
    obj.err !== undefined || Object.getPrototypeOf(obj) !== Object.prototype || (msg !== undefined && typeof msg !== 'string') ||
    this[serializersSym] !== plain[0] || this[stringifiersSym] !== plain[1] || (this[formattersSym] as { log?: unknown }).log !== boundFields
  ) {
    return pinoAsJson!.call(this, obj, msg, num, time);
  }
  let fields: string;
  try {
    fields = JSON.stringify(boundFields(obj));
  } catch {
    return pinoAsJson!.call(this, obj, msg, num, time);
  }
  const head = (this[lsCacheSym] as Record<number, string>)[num]! + time + (this[chindingsSym] as string);
  const body = fields.length > 2 ? `,${fields.slice(1, -1)}` : '';
  return `${head}${body}${msg === undefined ? '' : `,"msg":${JSON.stringify(msg)}`}${this[endSym] as string}`;
}

/**
 * Where a turn's lines go. SonicBoom's asynchronous fs.write goes through libuv's thread pool,
 * whose hand-off (a futex wake, the worker's syscall, an eventfd and a callback back on the loop)
 * cost more than the write itself: 12-14 % of the relay's CPU per message at 1 KiB, one message
 * per connection or many (cpu.ts, 2026-12-07, bench/README.md). So, by what stdout is:
 * - a regular file (a redirect: the bench, a systemd file): one write() from the loop, as the
 *   queue's and the events' journals do;
 * - a pipe or a socket (the container runtime's): a libuv stream, which writes at once when the
 *   pipe has room (as an SMTP reply is written) and queues in memory when it has not, so a slow
 *   reader never blocks the loop;
 * - anything else (a terminal): SonicBoom, as before.
 * A file write that fails hands the rest, and everything after it, to SonicBoom; a broken pipe
 * ends logging quietly, as pino's SonicBoom does. At exit what a full pipe still holds is lost (a
 * kill -9 loses it anyway): SonicBoom would retry until the reader took it.
 */
function stdoutLines(): LinesOut {
  // SonicBoom in buffer content mode, handed bytes encoded once: a string it encodes twice
  // (fs.write, then again to count what was written).
  const sonic = (): LinesOut => {
    const boom = pino.destination({ dest: 1, sync: false, contentMode: 'buffer' }) as unknown as { write(b: Buffer): unknown; flushSync(): void; flush(cb?: (err?: Error) => void): void };
    return { write: (lines) => boom.write(typeof lines === 'string' ? Buffer.from(lines) : lines), flushSync: () => boom.flushSync(), flush: (cb) => boom.flush(cb) };
  };
  let kind: 'file' | 'stream' | 'other' = 'other';
  try {
    const st = fstatSync(1);
    kind = st.isFile() ? 'file' : st.isFIFO() || st.isSocket() ? 'stream' : 'other';
  } catch {
    // no stdout to look at: SonicBoom reports what it finds
  }
  if (kind === 'other') return sonic();
  if (kind === 'stream') return streamLines(sonic);
  let fallback: LinesOut | undefined;
  return {
    write(lines: string | Buffer) {
      if (fallback) return fallback.write(lines);
      // Text as it is: node encodes it on its way to write() (no Buffer made here).
      let done = 0;
      try {
        done = typeof lines === 'string' ? writeSync(1, lines) : 0;
        if (typeof lines !== 'string' || done !== Buffer.byteLength(lines)) {
          // Came up short (rare on a file): the rest by bytes.
          const bytes = typeof lines === 'string' ? Buffer.from(lines) : lines;
          while (done < bytes.length) {
            const n = writeSync(1, bytes, done);
            if (n <= 0) throw new Error('stdout took no bytes');
            done += n;
          }
        }
      } catch {
        fallback = sonic();
        fallback.write(done === 0 ? lines : Buffer.from(lines).subarray(done));
      }
      return true;
    },
    flushSync() {
      fallback?.flushSync();
    },
    flush(cb) {
      if (fallback) fallback.flush(cb);
      else cb?.();
    },
  };
}

/** stdout a pipe or socket: a libuv stream on fd 1 (see stdoutLines). */
function streamLines(sonic: () => LinesOut): LinesOut {
  let socket: Socket | undefined;
  try {
    socket = new Socket({ fd: 1, readable: false, writable: true });
  } catch {
    return sonic();
  }
  let broken = false;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    // EPIPE: the reader is gone; pino's SonicBoom stops logging then too. Anything else is thrown
    // as SonicBoom's error would be.
    if (err.code === 'EPIPE') broken = true;
    else throw err;
  });
  const s = socket;
  return {
    write(lines: string | Buffer) {
      if (!broken) s.write(lines);
      return true;
    },
    flushSync() {},
    flush(cb) {
      if (broken || s.writableLength === 0) cb?.();
      else s.write(Buffer.alloc(0), () => cb?.());
    },
  };
}

/**
 * A child logger whose fields are new: pino would write a key bound twice twice on each line
 * (`{"component":"relay",…,"component":"delivery"}`), and log pipelines disagree on which one wins.
 * So the program is `component`, a part of it `subsystem`, a listener `listener`.
 */
export function childLogger(parent: Logger, bindings: Record<string, string>): Logger {
  const bound = parent.bindings();
  for (const key of Object.keys(bindings)) {
    if (key in bound) throw new Error(`logger field "${key}" is already bound (${JSON.stringify(bound[key])}); give the child a field of its own`);
  }
  return parent.child(bindings);
}
