import { loadRelayConfigFile } from '../../relay/config/load.ts';
import { startRelay } from '../../relay/relay.ts';
import { applyHeapGrowingPercent, heapGrowingPercent } from '../../relay/heap-growth.ts';
import { parseCommand, untilSignal, UsageError } from '../args.ts';
import { testClock } from '../test-clock.ts';

const HELP = `Usage: mailfleet relay --config FILE

Runs one SMTP relay: the listeners, the durable queue, delivery and the HTTP endpoints
(/metrics, /healthz, /readyz, /v1/stats) that the config file describes. The file is watched:
a new version is validated whole and applied without a restart (docs/live-config.md).

Options:
  -c, --config FILE   relay configuration (YAML); see docs/relay-config.md
  -h, --help          show this help

Environment:
  MAILFLEET_HEAP_GROWING_PERCENT   how far V8's old generation may grow past the live heap
                                   before a major GC (default 100; 0 = V8's own; docs/resources.md)`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, { config: { type: 'string', short: 'c' } }, HELP);
  if (!args) return 0;
  const file = args.values.config ?? process.env.MAILFLEET_CONFIG;
  if (!file) throw new UsageError(`--config is required\n\n${HELP}`);
  const growth = heapGrowingPercent(process.env);
  if ('error' in growth) throw new UsageError(growth.error);
  applyHeapGrowingPercent(growth.percent);
  const { config, version } = await loadRelayConfigFile(file);
  let wake = () => {};
  const hook = testClock(process.env.MAILFLEET_TEST_CLOCK_OFFSET_FILE, () => wake());
  const relay = await startRelay(config, { configFile: { path: file, version }, ...(hook.clock ? { clock: hook.clock } : {}) });
  wake = () => relay.wake();
  const sig = await untilSignal();
  relay.logger.info({ signal: sig }, 'stopping');
  hook.close();
  await relay.stop();
  return 0;
}
