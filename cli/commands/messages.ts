import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadRelayConfig } from '../../relay/config/load.ts';
import { openFeedbackDb } from '../../relay/feedback/db.ts';
import { EventStore } from '../../relay/events/store.ts';
import { QueueStore } from '../../relay/queue/store.ts';
import { trackMessages } from '../../relay/feedback/api.ts';
import { devDataDir } from '../../relay/dev/paths.ts';
import { isQueueId } from '../../relay/queue/id.ts';
import { parseCommand, UsageError } from '../args.ts';
import { apiGet } from './events.ts';

const HELP = `Usage: mailfleet messages show QUEUE-ID | --message-id ID | --recipient ADDR | --tag TAG [options]

What became of a message: each recipient's state (delivered, bounced, suppressed, queued, …)
and its events. With --url, the relay's API answers (with PostgreSQL: for the whole fleet).

Options:
  -c, --config FILE    the relay's config (its dataDir holds the events)
  -d, --data-dir DIR   the relay's dataDir instead (default: $MAILFLEET_DATA_DIR, else mailfleet dev's)
  --url URL            ask a relay's HTTP API instead (e.g. http://relay:8080); needs --token-file
  --token-file FILE    the API's bearer token
  --message-id ID      by Message-ID (with or without <>)
  --recipient ADDR     by recipient
  --tag TAG            by X-Mailfleet-Tag (an invoice number, …)
  --json               machine-readable output
  -h, --help           show this help`;

interface Tracked { queueId: string; messageId: string | null; sendingDomain: string | null; tags: string[]; inQueue: boolean; recipients: { recipient: string; state: string; events: { type: string; at: string; reply: string | null }[] }[] }

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, {
    config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string', short: 'd' }, url: { type: 'string' }, 'token-file': { type: 'string' },
    'message-id': { type: 'string' }, recipient: { type: 'string' }, tag: { type: 'string' }, json: { type: 'boolean' },
  }, HELP, true);
  if (!args) return 0;
  const [sub, id, ...rest] = args.positionals;
  if (sub !== 'show') throw new UsageError(sub ? `unknown messages command "${sub}"\n\n${HELP}` : `a command is required\n\n${HELP}`);
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const v = args.values;
  if (id && !isQueueId(id)) throw new UsageError(`"${id}" is not a queue id (16 characters, like 01M8ME7JPV90PPR1)`);
  const filter = { queueId: id, messageId: v['message-id'], recipient: v.recipient, tag: v.tag };
  if (!filter.queueId && !filter.messageId && !filter.recipient && !filter.tag) throw new UsageError(`a queue id, --message-id, --recipient or --tag is required\n\n${HELP}`);
  let messages: Tracked[];
  if (v.url) {
    const q = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
    messages = ((await apiGet(v.url, v['token-file'], `/v1/messages?${q}`)) as { messages: Tracked[] }).messages;
  } else {
    const dataDir = v['data-dir'] ?? (v.config ? (await loadRelayConfig(v.config)).dataDir : process.env.MAILFLEET_DATA_DIR ?? devDataDir());
    if (!existsSync(join(dataDir, 'feedback', 'feedback.db'))) throw new UsageError(`no events at ${join(dataDir, 'feedback')} (is --data-dir or --config right?)`);
    const db = openFeedbackDb(dataDir);
    const store = new QueueStore(join(dataDir, 'queue'), { readOnlyRecovery: true });
    try {
      messages = trackMessages(new EventStore(db, { fleet: false }).query(filter) as unknown as Record<string, unknown>[], store) as unknown as Tracked[];
    } finally {
      db.close();
      await store.close();
    }
  }
  if (v.json) console.log(JSON.stringify(messages, null, 2));
  else {
    for (const m of messages) {
      console.log(`queue id:    ${m.queueId}\nmessage-id:  ${m.messageId ?? '-'}\ndomain:      ${m.sendingDomain ?? '-'}\ntags:        ${m.tags.join(', ') || '-'}\nin queue:    ${m.inQueue ? 'yes' : 'no'}`);
      for (const r of m.recipients) {
        console.log(`  <${r.recipient}>  ${r.state}`);
        for (const e of r.events) console.log(`    ${e.at}  ${e.type.padEnd(12)}  ${e.reply ?? ''}`);
      }
    }
  }
  if (messages.length === 0) {
    console.error('mailfleet messages: no message matches');
    return 1;
  }
  return 0;
}
