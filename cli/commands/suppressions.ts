import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { loadRelayConfig } from '../../relay/config/load.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import type { RelayConfig } from '../../relay/config/schema.ts';
import { Feedback } from '../../relay/feedback/feedback.ts';
import { openFeedbackDb } from '../../relay/feedback/db.ts';
import { suppressionCsv, type CsvProblem } from '../../relay/suppression/csv.ts';
import { readToken } from './events.ts';
import { normaliseAddress, normaliseScope, SUPPRESSION_REASONS, AddressError, type SuppressionReason, type SuppressionEntry } from '../../relay/suppression/rules.ts';
import { devDataDir } from '../../relay/dev/paths.ts';
import { parseCommand, intOption, UsageError } from '../args.ts';

const HELP = `Usage: mailfleet suppressions <ls|add|rm|import|export> [options]

The suppression list of a relay (its own copy; with PostgreSQL configured, entries added or
removed here are pushed to the fleet by the running relay). Safe while the relay runs.

Commands:
  ls [ADDRESS]          entries (of one address), sorted by address
  add ADDRESS...        suppress addresses (default: reason manual, the whole fleet)
  rm ADDRESS            remove an address's entries (of one --scope only, when given)
  import FILE|-         add every row of a CSV file (header: address[,scope,reason,detail,
                        first_seen,last_seen,expires_at,source_queue_id])
  export [FILE|-]       write the list as CSV (default: standard output)

Options:
  -c, --config FILE    the relay's config (its dataDir holds the list)
  -d, --data-dir DIR   the relay's dataDir instead (default: $MAILFLEET_DATA_DIR, else mailfleet dev's)
  --url URL            use a relay's HTTP API instead (e.g. http://relay:8080); needs --token-file
  --token-file FILE    the API's bearer token
  --scope DOMAIN|*     a sending domain, or * for the whole fleet (add, import: default *)
  --reason REASON      ${SUPPRESSION_REASONS.join(' | ')} (add, import: default manual)
  --detail TEXT        add: why (kept with the entry)
  --expires TIME       add: ISO 8601 time after which the entry no longer applies
  --limit N            ls: at most N entries (default 1000)
  --json               ls: machine-readable output
  -h, --help           show this help`;

function reasonOption(v: string | undefined): SuppressionReason | undefined {
  if (v === undefined) return undefined;
  if (!SUPPRESSION_REASONS.includes(v as SuppressionReason)) throw new UsageError(`--reason: "${v}" is not one of ${SUPPRESSION_REASONS.join(', ')}`);
  return v as SuppressionReason;
}

function scopeOption(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return normaliseScope(v);
  } catch (err) {
    throw new UsageError(`--scope: ${(err as Error).message}`);
  }
}

function address(v: string): string {
  try {
    return normaliseAddress(v);
  } catch (err) {
    if (err instanceof AddressError) throw new UsageError(err.message);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string', short: 'd' }, scope: { type: 'string' }, reason: { type: 'string' },
      detail: { type: 'string' }, expires: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' },
      url: { type: 'string' }, 'token-file': { type: 'string' },
    },
    HELP,
    true,
  );
  if (!args) return 0;
  const [sub, ...rest] = args.positionals;
  if (!sub) throw new UsageError(`a command is required\n\n${HELP}`);
  const v = args.values;
  const scope = scopeOption(v.scope);
  const reason = reasonOption(v.reason);
  const backend = v.url ? remote(v.url, v['token-file']) : await local(v);
  const now = Date.now();
  try {
    switch (sub) {
      case 'ls': {
        if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`);
        const list = rest[0] ? await backend.get(address(rest[0]), scope) : await backend.list({ scope, reason, limit: intOption('limit', v.limit, 1000) });
        if (v.json) console.log(JSON.stringify(list, null, 2));
        else {
          console.log(['ADDRESS'.padEnd(36), 'SCOPE'.padEnd(24), 'REASON'.padEnd(12), 'LAST SEEN'.padEnd(20), 'EXPIRES'.padEnd(20), 'DETAIL'].join('  '));
          const t = (x: number | null) => (x === null ? 'never' : new Date(x).toISOString().slice(0, 19));
          for (const e of list) console.log([e.address.padEnd(36), e.scope.padEnd(24), e.reason.padEnd(12), t(e.lastSeen).padEnd(20), t(e.expiresAt).padEnd(20), e.detail].join('  '));
          console.log(`${list.length} entr${list.length === 1 ? 'y' : 'ies'}`);
        }
        return 0;
      }
      case 'add': {
        if (rest.length === 0) throw new UsageError('"add" needs at least one address');
        let expiresAt: number | null = null;
        if (v.expires !== undefined) {
          expiresAt = Date.parse(v.expires);
          if (!Number.isFinite(expiresAt)) throw new UsageError(`--expires: "${v.expires}" is not an ISO 8601 time`);
        }
        const entries = rest.map((a) => ({
          address: address(a), scope: scope ?? '*', reason: reason ?? 'manual' as SuppressionReason, detail: v.detail ?? 'added by mailfleet suppressions add',
          sourceQueueId: null, sourceEventId: null, firstSeen: now, lastSeen: now, expiresAt,
        }));
        await backend.add(entries);
        console.log(`suppressed ${entries.length} address(es) (${entries[0]!.reason}, scope ${entries[0]!.scope})`);
        return 0;
      }
      case 'rm': {
        if (rest.length !== 1) throw new UsageError('"rm" needs exactly one address');
        const n = await backend.remove(address(rest[0]!), scope);
        if (n === 0) {
          console.error(`mailfleet suppressions: ${rest[0]} is not on the list${scope ? ` for scope ${scope}` : ''}`);
          return 1;
        }
        console.log(`removed ${n} entr${n === 1 ? 'y' : 'ies'} for ${rest[0]}`);
        return 0;
      }
      case 'import': {
        if (rest.length !== 1) throw new UsageError('"import" needs a file (or - for standard input)');
        const input = rest[0] === '-' ? process.stdin : createReadStream(rest[0]!);
        const result = await backend.importCsv(input, { now, defaultReason: reason, defaultScope: scope });
        for (const p of result.problems.slice(0, 20)) console.error(`${rest[0]}:${p.line}: ${p.field}: ${p.message}`);
        if (result.problems.length > 20) console.error(`… and ${result.problems.length - 20} more problem(s)`);
        console.log(`imported ${result.imported} entr${result.imported === 1 ? 'y' : 'ies'} in ${(result.seconds).toFixed(1)} s; ${result.problems.length} row(s) skipped`);
        return result.problems.length > 0 ? 1 : 0;
      }
      case 'export': {
        if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}"`);
        const out = !rest[0] || rest[0] === '-' ? process.stdout : createWriteStream(rest[0]);
        await pipeline(await backend.exportCsv({ scope, reason }), out, { end: out !== process.stdout });
        return 0;
      }
      default:
        throw new UsageError(`unknown suppressions command "${sub}"\n\n${HELP}`);
    }
  } finally {
    backend.close();
  }
}

type Filter = { scope?: string | undefined; reason?: SuppressionReason | undefined; limit?: number | undefined };
interface Backend {
  list(f: Filter): Promise<SuppressionEntry[]>;
  get(address: string, scope: string | undefined): Promise<SuppressionEntry[]>;
  add(entries: SuppressionEntry[]): Promise<void>;
  remove(address: string, scope: string | undefined): Promise<number>;
  importCsv(input: Readable, o: { now: number; defaultReason?: SuppressionReason | undefined; defaultScope?: string | undefined }): Promise<{ imported: number; problems: CsvProblem[]; seconds: number }>;
  exportCsv(f: Filter): Promise<Readable>;
  close(): void;
}

/** The relay's data directory: safe while the relay runs (SQLite, WAL). */
async function local(v: { config?: string | undefined; 'data-dir'?: string | undefined }): Promise<Backend> {
  const config: RelayConfig = v.config
    ? await loadRelayConfig(v.config)
    : parseRelayConfig({ dataDir: v['data-dir'] ?? process.env.MAILFLEET_DATA_DIR ?? devDataDir(), listeners: [{ name: 'cli', port: 0, tls: 'none' }] }, 'command line');
  const feedback = new Feedback({ config, db: openFeedbackDb(config.dataDir), background: false });
  return {
    list: async (f) => feedback.suppressions.list(f),
    get: async (a, sc) => feedback.suppressions.get(a, sc),
    add: async (e) => feedback.addManual(e),
    remove: async (a, sc) => feedback.removeEntries(a, sc),
    importCsv: (input, o) => feedback.importCsv(input, o),
    exportCsv: async (f) => suppressionCsv(feedback.suppressions.iterate(f)),
    close: () => feedback.close(),
  };
}

/** A relay's authenticated HTTP API (relay/feedback/api.ts). */
function remote(url: string, tokenFile: string | undefined): Backend {
  const call = async (path: string, init: RequestInit = {}, okStatuses = [200, 201]): Promise<Response> => {
    const res = await fetch(new URL(path, url), { ...init, headers: { authorization: `Bearer ${readToken(tokenFile)}`, ...(init.headers as Record<string, string> | undefined) } });
    if (!okStatuses.includes(res.status)) {
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      throw new Error(`${url}${path.split('?')[0]}: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}`);
    }
    return res;
  };
  const q = (o: Record<string, string | number | undefined>) => new URLSearchParams(Object.entries(o).filter((e): e is [string, string | number] => e[1] !== undefined).map(([k, x]): [string, string] => [k, String(x)]));
  const entries = async (res: Response) => ((await res.json()) as { entries: SuppressionEntry[] }).entries;
  return {
    list: async (f) => entries(await call(`/v1/suppressions?${q({ scope: f.scope, reason: f.reason, limit: f.limit })}`)),
    get: async (a, sc) => entries(await call(`/v1/suppressions?${q({ address: a, scope: sc })}`)),
    add: async (e) => void (await call('/v1/suppressions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(e.map((x) => ({ ...x, expiresAt: x.expiresAt === null ? null : new Date(x.expiresAt).toISOString() }))) })),
    remove: async (a, sc) => ((await (await call(`/v1/suppressions?${q({ address: a, scope: sc })}`, { method: 'DELETE' }, [200, 404])).json()) as { removed: number }).removed,
    importCsv: async (input, o) => {
      const res = await call(`/v1/suppressions/import?${q({ reason: o.defaultReason, scope: o.defaultScope })}`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: Readable.toWeb(input) as ReadableStream, duplex: 'half' } as RequestInit, [200, 422]);
      const r = (await res.json()) as { imported: number; seconds: number; problems: CsvProblem[]; skipped: number };
      // The API lists the first 100 problems; the count says how many rows were skipped.
      return { imported: r.imported, seconds: r.seconds, problems: r.problems.concat(Array.from({ length: Math.max(0, r.skipped - r.problems.length) }, () => ({ line: 0, field: '-', message: 'not listed by the API' }))) };
    },
    exportCsv: async (f) => Readable.fromWeb((await call(`/v1/suppressions/export?${q({ scope: f.scope, reason: f.reason })}`)).body as import('node:stream/web').ReadableStream),
    close: () => {},
  };
}
