// The operator as its own process for bench/operator-scale.ts (so its peak RSS is its own):
// one namespace, no leader election, metrics on 127.0.0.1, DNS checks against a closed port
// (verification fails fast; the records are still listed in status).
import { slimClientNode } from '../../operator/runtime/client-node-slim.ts';

// As `mailfleet operator` runs it (cli/commands/operator.ts): client-node without its generated API.
slimClientNode();
const { runOperator } = await import('../../operator/main.ts');

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

// BENCH_MEM_LOG=1: the process's memory split every 2 s on stderr (operator.log; BENCH_KEEP=1
// keeps it), to see whether a peak is heap, buffers or native.
if (process.env.BENCH_MEM_LOG) {
  setInterval(() => {
    const m = process.memoryUsage();
    const mb = (n: number) => Math.round(n / 2 ** 20);
    process.stderr.write(`${JSON.stringify({ msg: 'mem', rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) })}\n`);
  }, 2000).unref();
}

// BENCH_HEAP_SNAPSHOT_DIR: SIGUSR1 writes a heap snapshot there (v8.writeHeapSnapshot is
// synchronous: the next /metrics answer means the file is complete), to see where the memory goes.
if (process.env.BENCH_HEAP_SNAPSHOT_DIR) {
  const { writeHeapSnapshot } = await import('node:v8');
  const { join } = await import('node:path');
  let n = 0;
  process.on('SIGUSR1', () => {
    const file = writeHeapSnapshot(join(process.env.BENCH_HEAP_SNAPSHOT_DIR!, `operator-${process.pid}-${++n}.heapsnapshot`));
    process.stderr.write(`${JSON.stringify({ msg: 'heap snapshot written', file })}\n`);
  });
}
