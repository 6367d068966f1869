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
 * JSON logs on stdout (or a given stream); one line per event, fields not prose.
 * stdout is written asynchronously: a synchronous write per line was 6.5 % of the relay's busy time
 * under load (two lines per message, 22:37 profile). Lines written while a write is in flight go
 * out together with the next one, so an idle relay logs at once and a busy one in batches; pino
 * flushes what is left when the process exits (a kill -9 can lose the lines of that instant, never
 * mail: the queue, not the log, is the record).
 */
export function createLogger(level: string, component: string, destination?: DestinationStream): Logger {
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { log: boundFields } };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
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
