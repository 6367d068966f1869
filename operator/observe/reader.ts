// Reads one relay's GET /v1/stats with the pool's API token, and checks it against the relay's
// contract (relay/stats/contract.ts) before anything uses it: a relay of another schemaVersion is
// reported as such, never misread.
import { StatsDocumentV1Schema, STATS_SCHEMA_VERSION, type StatsDocumentV1 } from '../../relay/stats/contract.ts';

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
  const parsed = StatsDocumentV1Schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, reason: 'BadResponse', message: `${url}: schemaVersion 1 document with ${issue.path.join('.')}: ${issue.message}` };
  }
  return { ok: true, doc: parsed.data as unknown as StatsDocumentV1 };
}
