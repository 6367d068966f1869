// The operator as its own process for bench/operator-scale.ts (so its peak RSS is its own):
// one namespace, no leader election, metrics on 127.0.0.1, DNS checks against a closed port
// (verification fails fast; the records are still listed in status).
import { runOperator } from '../../operator/main.ts';

const op = await runOperator({
  kubeconfig: process.env.KUBECONFIG!,
  namespace: process.env.BENCH_NAMESPACE!,
  metricsPort: 0,
  metricsHost: '127.0.0.1',
  leaderElection: false,
  logLevel: process.env.LOG_LEVEL ?? 'info',
  dnsServers: ['127.0.0.1:9'],
});
process.stdout.write(`${JSON.stringify({ msg: 'bench operator ready', port: op.port })}\n`);
