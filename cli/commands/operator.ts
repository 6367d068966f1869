import { parseCommand, untilSignal, intOption, UsageError } from '../args.ts';
import { testClock } from '../test-clock.ts';
import { parseScrapePeers, type NetworkPolicyPeer } from '../../operator/render/scrape-peers.ts';
import { DEFAULT_RELAY_IMAGE } from '../../operator/render/pool.ts';

const HELP = `Usage: mailfleet operator [options]

Runs the Kubernetes operator for SendingPool and MailDomain resources.

Options:
  --kubeconfig FILE     kubeconfig to use (default: in-cluster, then $KUBECONFIG)
  --namespace NS        watch only this namespace (default: all)
  --metrics-port PORT   port for /metrics, /healthz, /readyz (default 8080)
  --leader-elect        take part in Lease leader election (default on; --no-leader-elect to turn off)
  --lease-name NAME     Lease name (default mailfleet-operator)
  --dns-server ADDR     resolver for DNS verification (repeatable; default: the system's)
  --relay-image IMAGE   relay image for SendingPools without spec.image
                        (default: $RELAY_IMAGE, else ${DEFAULT_RELAY_IMAGE})
  --relay-metrics-from JSON
                        NetworkPolicyPeers (JSON array) each pool's NetworkPolicy admits to
                        the relays' metrics port besides the operator, e.g. Prometheus
  --stats-interval S    seconds between two reads of every relay's /v1/stats (default 30)
  --reputation-tick S   seconds between two rounds of the reputation loop, which checks the pool
                        IPs that are due on the DNSBLs and their PTR (default 30; each IP's own
                        interval is reputation.intervalSeconds)
  -h, --help            show this help`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'metrics-port': { type: 'string' },
      'leader-elect': { type: 'boolean' },
      'no-leader-elect': { type: 'boolean' },
      'lease-name': { type: 'string' },
      'dns-server': { type: 'string', multiple: true },
      'relay-image': { type: 'string' },
      'relay-metrics-from': { type: 'string' },
      'stats-interval': { type: 'string' },
      'reputation-tick': { type: 'string' },
    },
    HELP,
  );
  if (!args) return 0;
  const v = args.values;
  const relayImage = v['relay-image'] || process.env.RELAY_IMAGE || undefined;
  let relayMetricsFrom: NetworkPolicyPeer[] | undefined;
  try {
    relayMetricsFrom = v['relay-metrics-from'] ? parseScrapePeers(v['relay-metrics-from']) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const reputationTick = intOption('reputation-tick', v['reputation-tick'], 30);
  if (reputationTick < 1) throw new UsageError('--reputation-tick: at least 1 second');
  // Before anything loads client-node: its generated API stays unloaded (~50 MB of RSS).
  const { slimClientNode } = await import('../../operator/runtime/client-node-slim.ts');
  slimClientNode();
  // A missing kubeconfig or a silent API server is a sentence and an exit code here; once
  // running, the operator rides out an outage by itself.
  const { loadKubeconfig, checkApiserver } = await import('../../operator/runtime/preflight.ts');
  await checkApiserver(loadKubeconfig(v.kubeconfig));
  const { runOperator } = await import('../../operator/main.ts');
  const hook = testClock(process.env.MAILFLEET_TEST_CLOCK_OFFSET_FILE);
  const op = await runOperator({
    // This command owns the process's signals; the operator stops when it returns.
    handleSignals: false,
    ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}),
    ...(v.namespace ? { namespace: v.namespace } : {}),
    metricsPort: intOption('metrics-port', v['metrics-port'], 8080),
    leaderElection: !v['no-leader-elect'],
    ...(v['lease-name'] ? { leaseName: v['lease-name'] } : {}),
    ...(v['dns-server'] ? { dnsServers: v['dns-server'] } : {}),
    ...(relayImage ? { relayImage } : {}),
    ...(relayMetricsFrom ? { relayMetricsFrom } : {}),
    ...(v['stats-interval'] ? { statsIntervalMs: intOption('stats-interval', v['stats-interval'], 30) * 1000 } : {}),
    ...(v['reputation-tick'] ? { reputationTickSeconds: reputationTick } : {}),
    ...(hook.clock ? { now: () => new Date(hook.clock!()) } : {}),
  });
  await untilSignal();
  hook.close();
  await op.stop();
  return 0;
}
