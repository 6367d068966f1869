import { readFile } from 'node:fs/promises';
import { loadRelayConfig } from '../../relay/config/load.ts';
import { loadReturnPathKeys } from '../../relay/returnpath/keys.ts';
import { parseReport, DEFAULT_VALIDITY_MS, type ParseOptions } from '../../relay/bounce/parse.ts';
import { parseLine } from '../../relay/bounce/feedback-record.ts';
import { parseCommand, UsageError } from '../args.ts';

const HELP = `Usage: mailfleet bounces parse [--config relay.yaml | --keys keys.json] [--rcpt ADDRESS] FILE…

Reads each bounce or complaint message FILE (as received, headers and body) and prints one JSON
line per file with what the relay would record:
  {"file", "kind" (dsn | arf | autoreply | delivery-report | unknown),
   "recipients": [{"address", "status", "replyCode", "category", "hard"}] in the message's order,
   "feedbackType" (ARF, else null), "token" (the return-path token's verdict, else null)}

  --config FILE   verify tokens with the return-path keys, pool and validity of this relay config
  --keys FILE     verify tokens with this return-path keys file (JSON, see docs/bounces.md)
  --rcpt ADDRESS  the envelope recipient the message arrived for (where a token usually is)
Without keys a token is decoded but not trusted (reason "unknown-key").
Exit code 1 when a file cannot be read (the other files are still parsed).`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, { config: { type: 'string' }, keys: { type: 'string' }, rcpt: { type: 'string' } }, HELP, true);
  if (!args) return 0;
  const [sub, ...files] = args.positionals;
  if (sub !== 'parse') throw new UsageError(`expected "parse FILE…"\n\n${HELP}`);
  if (files.length === 0) throw new UsageError(`parse: name at least one message file\n\n${HELP}`);
  if (args.values.config && args.values.keys) throw new UsageError('--config and --keys: give one of them');
  const opts: ParseOptions = { now: Date.now(), validityMs: DEFAULT_VALIDITY_MS };
  if (args.values.config) {
    const config = await loadRelayConfig(args.values.config);
    if (!config.returnPath) throw new UsageError(`--config ${args.values.config}: the config has no returnPath (no keys to verify tokens with)`);
    opts.keys = loadReturnPathKeys(config.returnPath.keysFile);
    opts.pool = config.returnPath.pool;
    opts.validityMs = config.returnPath.validityDays * 86_400_000;
    opts.rules = config.delivery.bounceRules;
  } else if (args.values.keys) {
    opts.keys = loadReturnPathKeys(args.values.keys);
  }
  if (args.values.rcpt) opts.envelopeRecipient = args.values.rcpt;
  let failed = 0;
  for (const file of files) {
    let raw: Buffer;
    try {
      raw = await readFile(file);
    } catch (err) {
      console.error(`mailfleet bounces parse: ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      failed++;
      continue;
    }
    console.log(JSON.stringify(parseLine(file, parseReport(raw, opts))));
  }
  return failed > 0 ? 1 : 0;
}
