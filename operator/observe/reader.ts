// Reads one relay's GET /v1/stats with the pool's API token, and checks it against the relay's
// contract (relay/stats/contract.ts) before anything uses it: a relay of another schemaVersion is
// reported as such, never misread.
import { z } from 'zod';
import { request, Agent } from 'undici';
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

export type FetchLike = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<{ status: number; json(): Promise<unknown>; dump?(): Promise<unknown> }>;

// Reads go through undici's request() on a keep-alive agent of their own, not fetch(): fetch's
// WHATWG Request/Response and streams were a fifth of the reader's CPU per read at 1,000 relays
// (issue 17). Same semantics for the reader: status, JSON body, abort on the timeout.
const agent = new Agent({ keepAliveTimeout: 60_000 });
const requestFetch: FetchLike = async (url, init) => {
  const res = await request(url, { headers: init.headers, signal: init.signal, dispatcher: agent });
  return { status: res.statusCode, json: () => res.body.json(), dump: () => res.body.dump() };
};

export async function readRelayStats(url: string, token: string | undefined, opts: { timeoutMs?: number; fetch?: FetchLike } = {}): Promise<RelayRead> {
  const doFetch = opts.fetch ?? requestFetch;
  let res: Awaited<ReturnType<FetchLike>>;
  try {
    res = await doFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(opts.timeoutMs ?? 5000) });
  } catch (err) {
    // fetch() wraps the socket error in `cause`; request() throws it (its `code`), or a timeout.
    const e = err as { cause?: { code?: string; message?: string }; code?: string; name?: string; message: string };
    const what = e.cause?.code ?? e.cause?.message ?? (e.name === 'TimeoutError' || e.code === 'UND_ERR_ABORTED' ? `no answer within ${opts.timeoutMs ?? 5000} ms` : e.code ?? e.message);
    return { ok: false, reason: 'Unreachable', message: `${url}: ${what}` };
  }
  // An answer not read is drained, so its connection serves the next read.
  if (res.status !== 200) await res.dump?.().catch(() => undefined);
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
