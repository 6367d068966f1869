// The suppression list as CSV, for `mailfleet suppressions import|export` and the HTTP API.
// Columns (a header row is required on import; only `address` must be present):
//   address,scope,reason,detail,first_seen,last_seen,expires_at,source_queue_id
// Times are ISO 8601 (empty expires_at: never). Parsing and quoting are csv-parse/csv-stringify's.
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';
import type { Readable } from 'node:stream';
import { normaliseAddress, normaliseScope, SUPPRESSION_REASONS, type SuppressionEntry, type SuppressionReason } from './rules.ts';

export const CSV_COLUMNS = ['address', 'scope', 'reason', 'detail', 'first_seen', 'last_seen', 'expires_at', 'source_queue_id'] as const;

export interface CsvProblem {
  line: number;
  field: string;
  message: string;
}

function time(v: string | undefined, field: string, line: number, problems: CsvProblem[]): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const t = /^\d+$/.test(v.trim()) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) {
    problems.push({ line, field, message: `"${v}" is not a time (ISO 8601 or epoch milliseconds)` });
    return undefined;
  }
  return t;
}

/**
 * Entries of a CSV stream, in batches (a million rows never sit in memory at once). A bad row is
 * reported with its line and field and skipped; the rest are imported.
 */
export async function* readSuppressionCsv(input: Readable, o: { now: number; defaultReason?: SuppressionReason; defaultScope?: string; batch?: number; problems: CsvProblem[] }): AsyncGenerator<SuppressionEntry[]> {
  const parser = input.pipe(parse({ columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, relax_column_count: true, bom: true }));
  let batch: SuppressionEntry[] = [];
  let line = 1;
  for await (const rec of parser as AsyncIterable<Record<string, string>>) {
    line++;
    if (line === 2 && !('address' in rec)) throw new Error('CSV header: no "address" column (expected address[,scope,reason,detail,first_seen,last_seen,expires_at,source_queue_id])');
    let address: string;
    let scope: string;
    try {
      address = normaliseAddress(rec.address ?? '');
    } catch (err) {
      o.problems.push({ line, field: 'address', message: (err as Error).message });
      continue;
    }
    try {
      scope = normaliseScope(rec.scope || o.defaultScope || '*');
    } catch (err) {
      o.problems.push({ line, field: 'scope', message: (err as Error).message });
      continue;
    }
    const reason = (rec.reason || o.defaultReason || 'manual') as SuppressionReason;
    if (!SUPPRESSION_REASONS.includes(reason)) {
      o.problems.push({ line, field: 'reason', message: `"${rec.reason}" is not one of ${SUPPRESSION_REASONS.join(', ')}` });
      continue;
    }
    const n = o.problems.length;
    const first = time(rec.first_seen, 'first_seen', line, o.problems) ?? o.now;
    const last = time(rec.last_seen, 'last_seen', line, o.problems) ?? first;
    const expires = time(rec.expires_at, 'expires_at', line, o.problems) ?? null;
    if (o.problems.length > n) continue;
    batch.push({ address, scope, reason, detail: rec.detail || 'imported', sourceQueueId: rec.source_queue_id || null, sourceEventId: null, firstSeen: first, lastSeen: last, expiresAt: expires });
    if (batch.length >= (o.batch ?? 10_000)) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** A CSV stream of the entries, header first. */
export function suppressionCsv(entries: Iterable<SuppressionEntry>): Readable {
  const out = stringify({ header: true, columns: [...CSV_COLUMNS] });
  const iso = (t: number | null) => (t === null ? '' : new Date(t).toISOString());
  // Written as the reader asks for more: an export of millions is never all in memory.
  const it = entries[Symbol.iterator]();
  const pump = () => {
    for (;;) {
      const n = it.next();
      if (n.done) return void out.end();
      const e = n.value;
      const more = out.write([e.address, e.scope, e.reason, e.detail, iso(e.firstSeen), iso(e.lastSeen), iso(e.expiresAt), e.sourceQueueId ?? '']);
      if (!more) return void out.once('drain', pump);
    }
  };
  pump();
  return out;
}
