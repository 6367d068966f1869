import { loadRelayConfig } from '../../relay/config/load.ts';
import { parseCommand, UsageError } from '../args.ts';

const HELP = `Usage: mailfleet config check FILE

Validates a relay configuration file and prints it with every default filled in.
Exit code 2 and the path of each bad field when it is invalid.`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, { quiet: { type: 'boolean', short: 'q' } }, HELP, true);
  if (!args) return 0;
  const [sub, file] = args.positionals;
  if (sub !== 'check' || !file) throw new UsageError(`expected "check FILE"\n\n${HELP}`);
  const config = await loadRelayConfig(file);
  if (!args.values.quiet) console.log(JSON.stringify(config, null, 2));
  return 0;
}
