// `mailfleet relay` as a process, with the one test-only change the delivery tests make: remote
// MX hosts listen on the sinks' port instead of 25 (argv: CONFIG MX_PORT). Logs go to stdout as
// the CLI's do ("relay started" names the HTTP port).
import { loadRelayConfig } from '../../relay/config/load.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { startRelay } from '../../relay/relay.ts';

const [configFile, mxPort] = process.argv.slice(2);
const config = await loadRelayConfig(configFile!);
const relay = await startRelay(config, { delivery: (deps) => startDelivery({ ...deps, mxPort: Number(mxPort), mtaSts: false }) });
process.once('SIGTERM', () => {
  relay.stop().then(() => process.exit(0), () => process.exit(1));
});
