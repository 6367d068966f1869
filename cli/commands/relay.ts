import { loadRelayConfig } from '../../relay/config/load.ts';
import { startRelay } from '../../relay/relay.ts';
import { parseCommand, untilSignal, UsageError } from '../args.ts';

const HELP = `Usage: mailfleet relay --config FILE

Runs one SMTP relay: the listeners, the durable queue, delivery and the HTTP endpoints
(/metrics, /healthz, /readyz) that the config file describes.

Options:
  -c, --config FILE   relay configuration (YAML); see docs/relay-config.md
  -h, --help          show this help`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, { config: { type: 'string', short: 'c' } }, HELP);
  if (!args) return 0;
  const file = args.values.config ?? process.env.MAILFLEET_CONFIG;
  if (!file) throw new UsageError(`--config is required\n\n${HELP}`);
  const config = await loadRelayConfig(file);
  const relay = await startRelay(config);
  const sig = await untilSignal();
  relay.logger.info({ signal: sig }, 'stopping');
  await relay.stop();
  return 0;
}
