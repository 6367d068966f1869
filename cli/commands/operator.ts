import { parseCommand, untilSignal, intOption } from '../args.ts';

const HELP = `Usage: mailfleet operator [options]

Runs the Kubernetes operator for SendingPool and MailDomain resources.

Options:
  --kubeconfig FILE     kubeconfig to use (default: in-cluster, then $KUBECONFIG)
  --namespace NS        watch only this namespace (default: all)
  --metrics-port PORT   port for /metrics, /healthz, /readyz (default 8080)
  --leader-elect        take part in Lease leader election (default on; --no-leader-elect to turn off)
  --lease-name NAME     Lease name (default mailfleet-operator)
  --dns-server ADDR     resolver for DNS verification (repeatable; default: the system's)
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
    },
    HELP,
  );
  if (!args) return 0;
  const v = args.values;
  const path = '../../operator/main.ts';
  const { runOperator } = (await import(path)) as { runOperator(o: Record<string, unknown>): Promise<{ stop(): Promise<void> }> };
  const op = await runOperator({
    ...(v.kubeconfig ? { kubeconfig: v.kubeconfig } : {}),
    ...(v.namespace ? { namespace: v.namespace } : {}),
    metricsPort: intOption('metrics-port', v['metrics-port'], 8080),
    leaderElection: !v['no-leader-elect'],
    ...(v['lease-name'] ? { leaseName: v['lease-name'] } : {}),
    ...(v['dns-server'] ? { dnsServers: v['dns-server'] } : {}),
  });
  await untilSignal();
  await op.stop();
  return 0;
}
