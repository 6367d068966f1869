// Reads one relay's GET /v1/stats with the pool's API token, and checks it against the relay's
// contract (relay/stats/contract.ts) before anything uses it: a relay of another schemaVersion is
// reported as such, never misread.
import { z } from 'zod';
import { StatsDocumentV1Schema, StatsBucketSchema, STATS_SCHEMA_VERSION, type StatsDocumentV1 } from '../../relay/stats/contract.ts';

// The contract's schema, with each bucket's `hour` checked once per distinct value rather than per
// bucket: a read holds a few dozen hours over hundreds of buckets, and the ISO check was most of
// the validation's time at 1,000 relays every 30 s (issue 17). Accepts exactly what the contract does.
const HourSchema = StatsBucketSchema.shape.hour;
const DocumentWithHoursUnchecked = StatsDocumentV1Schema.extend({ buckets: z.array(StatsBucketSchema.extend({ hour: z.string() })) });

/** The document checked against the contract, or the first problem (path: message). */
function checkDocument(body: unknown): { ok: true; doc: StatsDocumentV1 } | { ok: false; problem: string } {
  const parsed = DocumentWithHoursUnchecked.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, problem: `${issue.path.join('.')}: ${issue.message}` };
  }
  const seen = new Set<string>();
  const buckets = parsed.data.buckets;
  for (let i = 0; i < buckets.length; i++) {
    const h = buckets[i]!.hour;
    if (seen.has(h)) continue;
    const r = HourSchema.safeParse(h);
    if (!r.success) return { ok: false, problem: `buckets.${i}.hour: ${r.error.issues[0]!.message}` };
    seen.add(h);
  }
  return { ok: true, doc: parsed.data as unknown as StatsDocumentV1 };
}

export type RelayRead =
  | { ok: true; doc: StatsDocumentV1 }
  | { ok: false; reason: 'Unreachable' | 'Unauthorized' | 'UnsupportedSchema' | 'BadResponse'; message: string };

export type FetchLike = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<{ status: number; json(): Promise<unknown> }>;

export async function readRelayStats(url: string, token: string | undefined, opts: { timeoutMs?: number; fetch?: FetchLike } = {}): Promise<RelayRead> {
  const doFetch = opts.fetch ?? (globalThis.fetch as unknown as FetchLike);
  let res: Awaited<ReturnType<FetchLike>>;
  try {
    res = await doFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, reason: 'Unreachable', message: `${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}` };
  }
  if (res.status === 401 || res.status === 403) return { ok: false, reason: 'Unauthorized', message: `${url}: HTTP ${res.status} (the relay does not accept the pool's API token)` };
  if (res.status !== 200) return { ok: false, reason: 'BadResponse', message: `${url}: HTTP ${res.status}` };
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    return { ok: false, reason: 'BadResponse', message: `${url}: not JSON (${(err as Error).message})` };
  }
  const version = (body as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (version !== STATS_SCHEMA_VERSION) {
    return { ok: false, reason: 'UnsupportedSchema', message: `${url}: stats schemaVersion ${JSON.stringify(version ?? null)}, this operator reads ${STATS_SCHEMA_VERSION} (upgrade the operator or the relay image)` };
  }
  const checked = checkDocument(body);
  if (!checked.ok) return { ok: false, reason: 'BadResponse', message: `${url}: schemaVersion 1 document with ${checked.problem}` };
  return { ok: true, doc: checked.doc };
}
