import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { QueueStore, type MessageSummary } from '../../relay/queue/store.ts';
import { isQueueId } from '../../relay/queue/id.ts';
import { loadRelayConfig } from '../../relay/config/load.ts';
import { parseCommand, intOption, UsageError } from '../args.ts';
import { devDataDir } from '../../relay/dev/paths.ts';
import { readRestrictions } from '../../relay/scheduler/ledger.ts';

const HELP = `Usage: mailfleet queue <ls|show ID|delete ID|retry ID|suspensions> [options]

Reads and edits a relay's queue; safe while the relay runs.

Commands:
  ls            one line per queued message (oldest first)
  show ID       envelope, recipients with their state, attempts and last reply
  delete ID     remove a message and all its recipients
  retry ID      make every waiting recipient of a message due now
  suspensions   source IPs the scheduler has suspended or throttled toward a provider, and until when

Options:
  -c, --config FILE    the relay's config (its dataDir holds the queue)
  -d, --data-dir DIR   the relay's dataDir instead (default: $MAILFLEET_DATA_DIR, else mailfleet dev's)
  --json               machine-readable output
  --limit N            ls: at most N messages (default 1000)
  -h, --help           show this help`;

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function stateSummary(m: MessageSummary): string {
  const counts = new Map<string, number>();
  for (const r of m.recipients) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string', short: 'd' }, json: { type: 'boolean' }, limit: { type: 'string' } },
    HELP,
    true,
  );
  if (!args) return 0;
  const [sub, id, ...extra] = args.positionals;
  if (!sub) throw new UsageError(`a command is required\n\n${HELP}`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const dataDir = args.values['data-dir'] ?? (args.values.config ? (await loadRelayConfig(args.values.config)).dataDir : process.env.MAILFLEET_DATA_DIR ?? devDataDir());
  const dir = join(dataDir, 'queue');
  if (!existsSync(join(dir, 'queue.db'))) throw new UsageError(`no queue at ${dir} (is --data-dir or --config right?)`);
  const store = new QueueStore(dir, { readOnlyRecovery: true });
  try {
    const needId = () => {
      if (!id) throw new UsageError(`"${sub}" needs a queue id`);
      if (!isQueueId(id)) throw new UsageError(`"${id}" is not a queue id (16 characters, like 01M8ME7JPV90PPR1)`);
      return id;
    };
    switch (sub) {
      case 'ls': {
        const list = store.list({ limit: intOption('limit', args.values.limit, 1000) });
        if (args.values.json) console.log(JSON.stringify(list.map(({ recipients, ...m }) => ({ ...m, recipients: recipients.map((r) => ({ recipient: r.recipient, state: r.state })) })), null, 2));
        else {
          const now = Date.now();
          console.log(['ID'.padEnd(16), 'AGE'.padStart(5), 'SIZE'.padStart(8), 'CLASS'.padEnd(13), 'FROM'.padEnd(30), 'RECIPIENTS'].join('  '));
          for (const m of list) {
            console.log([m.id, age(now - m.createdAt).padStart(5), String(m.size).padStart(8), m.class.padEnd(13), (m.mailFrom || '<>').padEnd(30), stateSummary(m)].join('  '));
          }
          console.log(`${list.length} message(s)`);
          const held = readRestrictions(store.path, now);
          if (held.length > 0) console.log(`${held.length} source IP → provider restriction(s) active (mailfleet queue suspensions)`);
        }
        return 0;
      }
      case 'suspensions': {
        const now = Date.now();
        const list = readRestrictions(store.path, now);
        if (args.values.json) console.log(JSON.stringify(list.map((r) => ({ ...r, until: new Date(r.until).toISOString() })), null, 2));
        else {
          console.log(['SOURCE IP'.padEnd(16), 'PROVIDER'.padEnd(24), 'ACTION'.padEnd(9), 'LEFT'.padStart(5), 'UNTIL'.padEnd(24), 'REPLY'].join('  '));
          for (const r of list) {
            const action = r.action === 'throttle' ? `throttle (${r.messagesPerMinute}/min, ${r.maxConnections} conn)` : r.action;
            console.log([r.ip.padEnd(16), r.provider.padEnd(24), action.padEnd(9), age(r.until - now).padStart(5), new Date(r.until).toISOString().padEnd(24), r.reason].join('  '));
          }
          console.log(`${list.length} restriction(s)`);
        }
        return 0;
      }
      case 'show': {
        const m = store.get(needId());
        if (!m) return notFound(id!);
        if (args.values.json) console.log(JSON.stringify(m, null, 2));
        else {
          console.log(`id:          ${m.id}\nqueued:      ${new Date(m.createdAt).toISOString()}\nfrom:        <${m.mailFrom}>\nsize:        ${m.size}\nclass:       ${m.class}\nmessage-id:  ${m.messageId ?? '-'}\nauth user:   ${m.authUser ?? '-'}\nclient:      ${m.clientAddress ?? '-'}\nrecipients:`);
          for (const r of m.recipients) {
            console.log(`  <${r.recipient}>  ${r.state}  attempts=${r.attempts}  next=${new Date(r.nextAttemptAt).toISOString()}${r.lastReply ? `  last="${r.lastReply}"` : ''}`);
          }
        }
        return 0;
      }
      case 'delete':
        if (!store.delete(needId())) return notFound(id!);
        console.log(`deleted ${id}`);
        return 0;
      case 'retry': {
        const n = store.retryNow(needId());
        if (n === 0 && !store.get(id!)) return notFound(id!);
        console.log(`${id}: ${n} recipient(s) due now`);
        return 0;
      }
      default:
        throw new UsageError(`unknown queue command "${sub}"\n\n${HELP}`);
    }
  } finally {
    await store.close();
  }
}

function notFound(id: string): number {
  console.error(`mailfleet queue: no message ${id} in the queue`);
  return 1;
}
