import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadRelayConfig } from '../../relay/config/load.ts';
import { openFeedbackDb } from '../../relay/feedback/db.ts';
import { EventStore } from '../../relay/events/store.ts';
import { devDataDir } from '../../relay/dev/paths.ts';
import { parseCommand, intOption, UsageError, untilSignal } from '../args.ts';

const HELP = `Usage: mailfleet events tail [options]

Prints a relay's events as JSON lines (accepted, delivered, deferred, bounced, complained,
suppressed, unsubscribed, expired), the last --lines first, then new ones as they happen.

Options:
  -c, --config FILE    the relay's config (its dataDir holds the events)
  -d, --data-dir DIR   the relay's dataDir instead (default: $MAILFLEET_DATA_DIR, else mailfleet dev's)
  --url URL            ask a relay's HTTP API instead (e.g. http://relay:8080); needs --token-file
  --token-file FILE    the API's bearer token
  --tag TAG            only events of messages with this X-Mailfleet-Tag
  --recipient ADDR     only events of this recipient
  -n, --lines N        how many past events first (default 20)
  --no-follow          print and exit
  -h, --help           show this help`;

/** The bearer token of --token-file; never echoed (a wrong file may hold other secrets). */
export function readToken(tokenFile: string | undefined): string {
  if (!tokenFile) throw new UsageError('--url needs --token-file (the bearer token of the relay API)');
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--token-file: cannot read ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!/^[\x21-\x7e]+$/.test(token)) throw new UsageError(`--token-file: ${tokenFile} must hold one token (printable characters, no spaces) on one line`);
  return token;
}

/** Fetches from the relay's API with the token; errors name what went wrong. */
export async function apiGet(url: string, tokenFile: string | undefined, path: string): Promise<unknown> {
  const token = readToken(tokenFile);
  const res = await fetch(new URL(path, url), { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(`${url}${path}: HTTP ${res.status}${body.error ? `: ${body.error}` : ''}`);
  return body;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, {
    config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string', short: 'd' }, url: { type: 'string' }, 'token-file': { type: 'string' },
    tag: { type: 'string' }, recipient: { type: 'string' }, lines: { type: 'string', short: 'n' }, 'no-follow': { type: 'boolean' },
  }, HELP, true);
  if (!args) return 0;
  const [sub, ...rest] = args.positionals;
  if (sub !== 'tail') throw new UsageError(sub ? `unknown events command "${sub}"\n\n${HELP}` : `a command is required\n\n${HELP}`);
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const v = args.values;
  const lines = intOption('lines', v.lines, 20);
  const filter = { tag: v.tag, recipient: v.recipient };
  let read: (after: number) => Promise<{ seq: number }[]>;
  let close = () => {};
  if (v.url) {
    const q = (after: number) => `/v1/events?${new URLSearchParams({ ...(filter.tag ? { tag: filter.tag } : {}), ...(filter.recipient ? { recipient: filter.recipient } : {}), after: String(after), limit: '10000' })}`;
    read = async (after) => ((await apiGet(v.url!, v['token-file'], q(after))) as { events: { seq: number }[] }).events;
  } else {
    const dataDir = v['data-dir'] ?? (v.config ? (await loadRelayConfig(v.config)).dataDir : process.env.MAILFLEET_DATA_DIR ?? devDataDir());
    if (!existsSync(join(dataDir, 'feedback', 'feedback.db'))) throw new UsageError(`no events at ${join(dataDir, 'feedback')} (is --data-dir or --config right?)`);
    const db = openFeedbackDb(dataDir);
    const events = new EventStore(db, { fleet: false });
    read = async (after) => events.query({ ...filter, afterSeq: after, limit: 10_000 });
    close = () => db.close();
  }
  try {
    // The last `lines` first: read all after 0 would be slow on a big store, so page to the end.
    let all = await read(0);
    let last = all.length ? all[all.length - 1]!.seq : 0;
    while (all.length === 10_000) {
      const more = await read(last);
      if (more.length === 0) break;
      all = all.slice(-lines).concat(more);
      last = more[more.length - 1]!.seq;
    }
    for (const e of all.slice(-lines)) console.log(JSON.stringify(e));
    if (v['no-follow']) return 0;
    const stop = untilSignal();
    let stopped = false;
    stop.then(() => (stopped = true));
    while (!stopped) {
      await Promise.race([new Promise((r) => setTimeout(r, 1000)), stop]);
      for (const e of await read(last)) {
        console.log(JSON.stringify(e));
        last = e.seq;
      }
    }
    return 0;
  } finally {
    close();
  }
}
