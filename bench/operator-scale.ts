// Operator scale (issue 6): on the test control plane (test/cluster: etcd, kube-apiserver,
// kube-controller-manager on loopback), create 1,000 MailDomains and 100 SendingPools at once and
// measure the time until every object's children exist and its status is written, the operator's
// peak RSS, and its API requests per reconcile.
//   node bench/operator-scale.ts [--domains 1000] [--pools 100] [--timeout 300] [--out FILE] [--cpu-prof DIR] [--observe watch|poll]
// Also run by `npm run bench -- --only operator`.
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusterEnv, installCrds, createNamespace, samplePool, sampleDomain, type Env } from '../test/operator/harness.ts';
import type { KubeObject } from '../operator/runtime/kube.ts';
import { ResilientInformer } from '../operator/runtime/informer.ts';
import { countDone, cpuSnapshot, finishOperatorBench, inParallel, metricSum, poolIps, startOperatorProcess, type OperatorProcess } from './lib/operator-process.ts';
import { installInterruptHandler, onInterrupt, peakRssBytes, round, sleep } from './lib/util.ts';

export interface OperatorScaleResult {
  domains: number;
  pools: number;
  createSeconds: number;
  /** From the first create until every object is done; undefined when the timeout hit. */
  doneSeconds?: number;
  poolsDone: number;
  domainsDone: number;
  operatorPeakRssMB?: number;
  reconciles: Record<string, number>;
  reconcileErrors: number;
  kubeRequests: number;
  kubeRequestsPerReconcile: number;
  kubeRequestsByType: Record<string, number>;
  childrenPerPool: Record<string, number>;
  timeline: { t: number; pools: number; domains: number }[];
  /** How progress was observed (see runOperatorScale's `observe`). */
  observe: 'watch' | 'poll';
  /** NODE_OPTIONS the operator ran with: the chart's default `nodeOptions`. */
  operatorNodeOptions: string;
  /** 1-minute load average when the objects were created and when all were done (2 cores here, shared). */
  loadAverage: { start: number; end: number };
  /**
   * CPU seconds (user + system, all threads) each process used from the first create until done:
   * the operator and the control plane share the machine's cores, so this says whose work the
   * time went to (the operator's includes DKIM key generation on its thread pool).
   */
  cpuSeconds: Record<string, number>;
  /** Events in the namespace by "source reason", with their counts, shortly after done. */
  events: Record<string, number>;
}

export { chartNodeOptions } from './lib/operator-process.ts';

export async function runOperatorScale(opts: {
  domains: number;
  pools: number;
  timeoutS: number;
  log: (s: string) => void;
  /** Run the operator under node --cpu-prof, writing the profile here. */
  cpuProfDir?: string;
  /**
   * How the bench sees progress. 'watch' (default): its own informers, checked every 250 ms.
   * 'poll': lists of every pool, domain, child and Secret each second, as until 22:30 on
   * 2026-11-29; listing 1,000 MailDomains and their Secrets each second cost the apiserver about
   * as much CPU as the operator's own requests, on the cores the run is measuring.
   */
  observe?: 'watch' | 'poll';
}): Promise<OperatorScaleResult | { skipped: string }> {
  const { log } = opts;
  log(`== operator scale: ${opts.pools} SendingPools + ${opts.domains} MailDomains created at once`);
  const env = await clusterEnv();
  if ('skipped' in env) return env;
  const e: Env = env;
  const unregisterCluster = onInterrupt(() => e.cluster.stop());
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-opscale-'));
  const NS = 'scale';
  let child: OperatorProcess | undefined;
  let stopObservers = async (): Promise<unknown> => undefined;
  try {
    await installCrds(e.kube);
    await createNamespace(e.kube, NS);
    const op = await startOperatorProcess({ kubeconfig: e.kubeconfig, namespace: NS, dir, ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}) });
    const c = op.child;
    child = op;
    const nodeOptions = op.nodeOptions;
    log(`  operator NODE_OPTIONS (charts/mailfleet/values.yaml nodeOptions): ${nodeOptions || '(none)'}`);
    const scrape = op.scrape;

    const observe = opts.observe ?? 'watch';
    type Kinds = [KubeObject[], KubeObject[], KubeObject[], KubeObject[], KubeObject[], KubeObject[]];
    const kinds: Array<[string, string, string | undefined]> = [
      ['mailfleet.io/v1alpha1', 'SendingPool', undefined],
      ['mailfleet.io/v1alpha1', 'MailDomain', undefined],
      ['v1', 'ConfigMap', 'mailfleet.io/pool'],
      ['v1', 'Service', 'mailfleet.io/pool'],
      ['apps/v1', 'StatefulSet', 'mailfleet.io/pool'],
      ['v1', 'Secret', observe === 'watch' ? 'app.kubernetes.io/managed-by=mailfleet-operator' : undefined],
    ];
    const informers =
      observe === 'watch'
        ? kinds.map(([apiVersion, kind, labelSelector]) => new ResilientInformer(e.kube, { apiVersion, kind, namespace: NS, labelSelector, onEvent: () => {} }))
        : [];
    stopObservers = () => Promise.all(informers.map((i) => i.stop()));
    await Promise.all(informers.map((i) => i.start()));
    while (!informers.every((i) => i.hasSynced())) await sleep(50);
    const look = async (): Promise<Kinds> =>
      observe === 'watch'
        ? (informers.map((i) => i.list()) as Kinds)
        : ((await Promise.all(kinds.map(async ([v, k, sel]) => (await e.kube.list(v, k, NS, sel)).items))) as Kinds);

    const poolNames = Array.from({ length: opts.pools }, (_, i) => `pool-${i}`);
    const objects: KubeObject[] = [
      ...poolNames.map((p, i) => samplePool(p, NS, { ips: poolIps(i) })),
      ...Array.from({ length: opts.domains }, (_, i) => sampleDomain(`d-${i}`, NS, `d${i}.scale.test`, poolNames[i % opts.pools]!)),
    ];
    const loadStart = round(loadavg()[0]!, 2);
    const cpuStart = cpuSnapshot(c.pid!, e.cluster.dir);
    const t0 = performance.now();
    await inParallel(objects, 32, (o) => e.kube.create(o));
    const createSeconds = round((performance.now() - t0) / 1000, 1);
    log(`  created ${objects.length} objects in ${createSeconds} s`);

    const timeline: OperatorScaleResult['timeline'] = [];
    let doneSeconds: number | undefined;
    let poolsDone = 0;
    let domainsDone = 0;
    let childrenPerPool: Record<string, number> = {};
    const deadline = t0 + opts.timeoutS * 1000;
    let lastLog = -Infinity;
    while (performance.now() < deadline) {
      const [pools, domains, cms, svcs, stss, secrets] = await look();
      ({ pools: poolsDone, domains: domainsDone } = countDone({ pools, domains, configMaps: cms, services: svcs, statefulSets: stss, secrets }));
      const t = round((performance.now() - t0) / 1000, 1);
      timeline.push({ t, pools: poolsDone, domains: domainsDone });
      if (t - lastLog >= 5) lastLog = t;
      if (lastLog === t) log(`  t=${t}s pools done ${poolsDone}/${opts.pools}, domains done ${domainsDone}/${opts.domains}`);
      if (poolsDone === opts.pools && domainsDone === opts.domains) {
        doneSeconds = t;
        childrenPerPool = {
          ConfigMap: round(cms.length / opts.pools, 2),
          Service: round(svcs.length / opts.pools, 2),
          StatefulSet: round(stss.length / opts.pools, 2),
        };
        break;
      }
      await sleep(observe === 'watch' ? 250 : 1000);
    }
    const loadEnd = round(loadavg()[0]!, 2);
    const cpuEnd = cpuSnapshot(c.pid!, e.cluster.dir);
    const cpuSeconds = Object.fromEntries(
      Object.entries(cpuEnd).flatMap(([k, v]) => (cpuStart[k] !== undefined ? [[k, round((v - cpuStart[k]) / 1000, 1)]] : [])),
    );
    // Let the queue settle a moment so trailing reconciles are counted too.
    await sleep(2000);
    const rss = peakRssBytes(c.pid!);
    // Events by source and reason (after the clock stopped): the controller-manager's share of the
    // apiserver's work (pods and claims of every StatefulSet) next to the operator's.
    const eventCounts: Record<string, number> = {};
    for (const ev of (await e.kube.list('v1', 'Event', NS)).items) {
      const src = (ev['source'] as { component?: string } | undefined)?.component ?? (ev['reportingComponent'] as string | undefined) ?? '?';
      const k = `${src} ${String(ev['reason'])}`;
      eventCounts[k] = (eventCounts[k] ?? 0) + Number(ev['count'] ?? 1);
    }
    const metrics = await scrape();
    const reconciles = metricSum(metrics, 'mailfleet_operator_reconciles_total');
    const errors = Object.values(metricSum(metrics, 'mailfleet_operator_reconcile_errors_total')).reduce((a, b) => a + b, 0);
    const kube = await op.requestCounts();
    if (kube.total === 0) log('  (no request counts written by the operator)');
    const totalReconciles = Object.values(reconciles).reduce((a, b) => a + b, 0);
    const r: OperatorScaleResult = {
      domains: opts.domains,
      pools: opts.pools,
      createSeconds,
      ...(doneSeconds !== undefined ? { doneSeconds } : {}),
      poolsDone,
      domainsDone,
      ...(rss !== undefined ? { operatorPeakRssMB: round(rss / 2 ** 20, 1) } : {}),
      reconciles,
      reconcileErrors: errors,
      kubeRequests: kube.total,
      kubeRequestsPerReconcile: round(kube.total / Math.max(1, totalReconciles), 2),
      kubeRequestsByType: kube.byRequest,
      childrenPerPool,
      timeline,
      observe,
      operatorNodeOptions: nodeOptions,
      loadAverage: { start: loadStart, end: loadEnd },
      cpuSeconds,
      events: Object.fromEntries(Object.entries(eventCounts).sort((a, b) => b[1] - a[1])),
    };
    log(
      `  ${doneSeconds !== undefined ? `all done in ${doneSeconds} s` : `NOT done within ${opts.timeoutS} s (pools ${poolsDone}, domains ${domainsDone})`}; ` +
        `operator peak RSS ${r.operatorPeakRssMB} MB; reconciles ${JSON.stringify(reconciles)} (errors ${errors}); ` +
        `API requests ${kube.total} = ${r.kubeRequestsPerReconcile} per reconcile; load average ${loadStart} → ${loadEnd}; ` +
        `CPU s until done ${JSON.stringify(cpuSeconds)}`,
    );
    return r;
  } finally {
    await stopObservers();
    await finishOperatorBench({ op: child, stopCluster: () => e.cluster.stop(), unregister: unregisterCluster, dir, log });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      domains: { type: 'string' },
      pools: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      observe: { type: 'string' },
    },
  });
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  installInterruptHandler(() => {});
  const r = await runOperatorScale({
    domains: Number(values.domains ?? 1000),
    pools: Number(values.pools ?? 100),
    timeoutS: Number(values.timeout ?? 300),
    log,
    ...(values['cpu-prof'] ? { cpuProfDir: values['cpu-prof'] } : {}),
    ...(values.observe === 'poll' || values.observe === 'watch' ? { observe: values.observe } : {}),
  });
  if (values.out) (await import('node:fs')).writeFileSync(values.out, `${JSON.stringify(r, null, 2)}\n`);
  else console.log(JSON.stringify({ ...r, timeline: undefined }, null, 2));
}
