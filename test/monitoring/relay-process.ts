// `mailfleet relay` as a process, with the one test-only change the delivery tests make: remote
// MX hosts listen on the sinks' port instead of 25 (argv: CONFIG MX_PORT). Loads and watches its
// config file as the CLI does (version, live reload); logs go to stdout ("relay started" names
// the HTTP port).
import { loadRelayConfigFile } from '../../relay/config/load.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { startRelay } from '../../relay/relay.ts';

const [configFile, mxPort] = process.argv.slice(2);
const { config, version } = await loadRelayConfigFile(configFile!);
const relay = await startRelay(config, {
  configFile: { path: configFile!, version },
  delivery: (deps) => startDelivery({ ...deps, mxPort: Number(mxPort), mtaSts: false }),
});
process.once('SIGTERM', () => {
  relay.stop().then(() => process.exit(0), () => process.exit(1));
});
