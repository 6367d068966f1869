// Ten thousand domains (issue 17): on the test control plane (test/cluster: etcd, kube-apiserver,
// kube-controller-manager on loopback) with the operator as its own process, create 10,000
// MailDomains across 200 SendingPools and measure, each phase on its own:
//   keygen    DKIM keys per second and CPU per key, RSA-2048 and Ed25519, on this machine (in
//             this process, on the libuv pool as the operator does: operator/controllers/maildomain/keys.ts);
//   converge  time until every pool has its children and status and every domain DKIMReady=True
//             with its Secret; the operator's CPU per object. The domains ask for Ed25519 keys
//             (`--algorithm`, default ed25519) so the convergence run measures the operator and
//             not OpenSSL's RSA prime search; keygen says what RSA-2048 adds (issue 17 asks for
//             keygen "measured separately");
//   restart   the settled operator stopped and started again: time until every object has been
//             reconciled and the work queues are empty, and its API requests by verb (the resync
//             must write nothing);
//   changes   one MailDomain's spec changed at a time (~50): patch → status.observedGeneration
//             seen by a watch, p50/p99; API requests and reconciles it cost;
//   and the operators' peak RSS (VmHWM) with the chart's NODE_OPTIONS.
// The operator's requests are counted in its process (bench/lib/kube-count.ts: every request the
// reconcilers make; the informers' list+watch go through client-node and are reads).
//   node bench/domains-10k.ts [--domains 10000] [--pools 200] [--changes 50] [--algorithm ed25519|rsa2048]
//                             [--timeout 1800] [--keygen-rsa 40] [--keygen-ed 400] [--out FILE] [--cpu-prof DIR] [--keep]
// Also run by `npm run bench -- --only domains-10k` (BENCH_DOMAINS / BENCH_POOLS size it).
import { mkdtempSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusterEnv, installCrds, createNamespace, samplePool, sampleDomain, DOMAIN_REF, type Env } from '../test/operator/harness.ts';
import type { KubeObject } from '../operator/runtime/kube.ts';
import { ResilientInformer } from '../operator/runtime/informer.ts';
import { generateDkimKey } from '../operator/controllers/maildomain/keys.ts';
import type { DkimAlgorithm } from '../operator/api/index.ts';
import { countDone, cpuSnapshot, finishOperatorBench, inParallel, metricSum, poolIps, startOperatorProcess, writesByCaller, type KubeCounts, type OperatorProcess } from './lib/operator-process.ts';
import { installInterruptHandler, onInterrupt, peakRssBytes, percentile, round, sleep } from './lib/util.ts';

export interface KeygenResult {
  algorithm: DkimAlgorithm;
  keys: number;
  /** Keys per second of wall time with the libuv pool's 4 threads on this machine's cores (shared: see loadAverage). */
  keysPerSecond: number;
  /** CPU ms per key (user + system, all threads): what the load does not disturb. */
  cpuMsPerKey: number;
  loadAverage: number;
}

export interface Domains10kResult {
  domains: number;
  pools: number;
  algorithm: DkimAlgorithm;
  cores: number;
  operatorNodeOptions: string;
  keygen: KeygenResult[];
  converge: {
    createSeconds: number;
    doneSeconds?: number;
    poolsDone: number;
    domainsDone: number;
    loadAverage: { start: number; end: number };
    cpuSeconds: Record<string, number>;
    /** Operator CPU ms per object (domains + pools), and per domain less its key generation (keygen cpuMsPerKey). */
    operatorCpuMsPerObject: number;
    operatorCpuMsPerDomainWithoutKeygen: number;
    reconciles: Record<string, number>;
    reconcileErrors: number;
    kubeRequests: KubeCounts;
    kubeRequestsPerReconcile: number;
    operatorPeakRssMB?: number;
    timeline: { t: number; pools: number; domains: number }[];
    /**
     * Converged until settled: the queues empty and a whole round of the stats loop started after
     * convergence (it writes each domain's first health verdict; a restart before that round
     * would count those first verdicts as the resync's writes).
     */
    settleSeconds?: number;
  };
  restart?: {
    /** From starting the new process until every object was reconciled and the queues were empty. */
    resyncSeconds?: number;
    loadAverage: number;
    reconciles: Record<string, number>;
    kubeRequests: KubeCounts;
    /** Requests other than GET (and LIST, counted as GET): must be 0. */
    writes: number;
    /** Those writes by "request by operator code" (bench/lib/kube-count.ts). */
    writesBy: Record<string, number>;
    /** Rounds of the stats loop the window covered (at least one whole round). */
    statsRounds: number;
    cpuSeconds: Record<string, number>;
    operatorPeakRssMB?: number;
  };
  changes?: {
    count: number;
    /** patch accepted → the domain's status.observedGeneration equals its new generation, seen by a watch. */
    latencyMs: { p50: number; p90: number; p99: number; max: number };
    reconciles: Record<string, number>;
    kubeRequests: KubeCounts;
    kubeRequestsPerChange: number;
    /** Writes during the changes by "request by operator code". */
    writesBy: Record<string, number>;
    loadAverage: number;
  };
}

const load1 = () => round(loadavg()[0]!, 2);

/** Keys per second and CPU per key, `n` keys with 4 in flight (the libuv pool's size, as in the operator). */
export async function measureKeygen(algorithm: DkimAlgorithm, n: number): Promise<KeygenResult> {
  await generateDkimKey(algorithm); // warm up OpenSSL
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await inParallel(Array.from({ length: n }), 4, () => generateDkimKey(algorithm));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { algorithm, keys: n, keysPerSecond: round(n / wall, 1), cpuMsPerKey: round((cpu.user + cpu.system) / 1000 / n, 3), loadAverage: load1() };
}

/** Waits until the operator has reconciled at least `want` of each kind and its work queues are empty. */
async function waitResynced(op: OperatorProcess, want: Record<string, number>, deadline: number, opts: { rounds?: number; everyMs?: number } = {}): Promise<Record<string, number> | undefined> {
  while (performance.now() < deadline) {
    const m = await op.scrape();
    const rec = metricSum(m, 'mailfleet_operator_reconciles_total');
    const depth = Object.values(metricSum(m, 'mailfleet_operator_workqueue_depth')).reduce((a, b) => a + b, 0);
    const rounds = metricSum(m, 'mailfleet_operator_stats_rounds_total')['all'] ?? 0;
    if (depth === 0 && rounds >= (opts.rounds ?? 0) && Object.entries(want).every(([k, n]) => (rec[k] ?? 0) >= n)) return rec;
    // A scrape of 10,000 domains' 60,000 series is ~6.7 MB of text and ~300 ms of the operator's
    // CPU: not every 250 ms. Long waits poll as Prometheus would rather than as a stopwatch.
    await sleep(opts.everyMs ?? 1000);
  }
  return undefined;
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(b).flatMap(([k, v]) => (a[k] !== undefined ? [[k, round((v - a[k]) / 1000, 1)]] : [])));
}

function countsDiff(a: KubeCounts, b: KubeCounts): KubeCounts {
  const by: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byRequest)) if (v - (a.byRequest[k] ?? 0) > 0) by[k] = v - (a.byRequest[k] ?? 0);
  return { total: b.total - a.total, byRequest: by };
}

function sub(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)]));
}

export async function runDomains10k(opts: {
  domains: number;
  pools: number;
  changes: number;
  algorithm: DkimAlgorithm;
  timeoutS: number;
  keygenRsa: number;
  keygenEd: number;
  log: (s: string) => void;
  keep?: boolean;
  /** Profile the first operator (node --cpu-prof) into this directory. */
  cpuProfDir?: string;
}): Promise<Domains10kResult | { skipped: string }> {
  const { log } = opts;
  log(`== domains-10k: DKIM keygen, then ${opts.pools} SendingPools + ${opts.domains} MailDomains (${opts.algorithm} keys), restart, ${opts.changes} changes`);
  const keygen: KeygenResult[] = [];
  for (const [alg, n] of [['rsa2048', opts.keygenRsa], ['ed25519', opts.keygenEd]] as const) {
    if (n <= 0) continue;
    const k = await measureKeygen(alg, n);
    keygen.push(k);
    log(`  keygen ${alg}: ${k.keysPerSecond} keys/s, ${k.cpuMsPerKey} CPU ms per key (${n} keys, load ${k.loadAverage})`);
  }
  // Each pool takes two ClusterIPs: the test cluster's default /24 holds 127 pools, not 200
  // (the first 10k run stopped at 126 pools: "failed to allocate a serviceIP: range is full").
  process.env.SERVICE_CIDR ??= '10.0.0.0/16';
  const env = await clusterEnv();
  if ('skipped' in env) return env;
  const e: Env = env;
  const unregisterCluster = onInterrupt(() => e.cluster.stop());
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-domains10k-'));
  const NS = 'domains';
  let op: OperatorProcess | undefined;
  const informers: ResilientInformer[] = [];
  try {
    await installCrds(e.kube);
    await createNamespace(e.kube, NS);
    op = await startOperatorProcess({ kubeconfig: e.kubeconfig, namespace: NS, dir, tag: '-1', ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}) });
    log(`  operator NODE_OPTIONS (chart): ${op.nodeOptions || '(none)'}`);

    // The bench's view: watches, and waiters for a domain's observedGeneration (the changes phase).
    const waiters = new Map<string, { gen: number; resolve: () => void }>();
    const onDomain = (_t: string, o: KubeObject) => {
      const w = waiters.get(o.metadata!.name!);
      const seen = (o['status'] as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0;
      if (w && seen >= w.gen) {
        waiters.delete(o.metadata!.name!);
        w.resolve();
      }
    };
    const kinds: Array<[string, string, string | undefined, ((t: string, o: KubeObject) => void) | undefined]> = [
      ['mailfleet.io/v1alpha1', 'SendingPool', undefined, undefined],
      ['mailfleet.io/v1alpha1', 'MailDomain', undefined, onDomain],
      ['v1', 'ConfigMap', 'mailfleet.io/pool', undefined],
      ['v1', 'Service', 'mailfleet.io/pool', undefined],
      ['apps/v1', 'StatefulSet', 'mailfleet.io/pool', undefined],
      ['v1', 'Secret', 'app.kubernetes.io/managed-by=mailfleet-operator', undefined],
    ];
    for (const [apiVersion, kind, labelSelector, on] of kinds) {
      informers.push(new ResilientInformer(e.kube, { apiVersion, kind, namespace: NS, labelSelector, onEvent: on ?? (() => {}) }));
    }
    await Promise.all(informers.map((i) => i.start()));
    while (!informers.every((i) => i.hasSynced())) await sleep(50);
    const [poolInf, domainInf, cmInf, svcInf, stsInf, secretInf] = informers as [ResilientInformer, ResilientInformer, ResilientInformer, ResilientInformer, ResilientInformer, ResilientInformer];

    // ---- converge
    const poolNames = Array.from({ length: opts.pools }, (_, i) => `pool-${i}`);
    const domainObj = (i: number) => {
      const d = sampleDomain(`d-${i}`, NS, `d${i}.scale.test`, poolNames[i % opts.pools]!);
      (d['spec'] as Record<string, unknown>)['dkim'] = { algorithm: opts.algorithm };
      return d;
    };
    const objects: KubeObject[] = [...poolNames.map((p, i) => samplePool(p, NS, { ips: poolIps(i) })), ...Array.from({ length: opts.domains }, (_, i) => domainObj(i))];
    const loadStart = load1();
    const cpuStart = cpuSnapshot(op.pid, e.cluster.dir);
    const t0 = performance.now();
    await inParallel(objects, 32, (o) => e.kube.create(o));
    const createSeconds = round((performance.now() - t0) / 1000, 1);
    log(`  created ${objects.length} objects in ${createSeconds} s`);
    const timeline: Domains10kResult['converge']['timeline'] = [];
    let doneSeconds: number | undefined;
    let poolsDone = 0;
    let domainsDone = 0;
    const deadline = t0 + opts.timeoutS * 1000;
    let lastLog = -Infinity;
    while (performance.now() < deadline) {
      ({ pools: poolsDone, domains: domainsDone } = countDone({ pools: poolInf.list(), domains: domainInf.list(), configMaps: cmInf.list(), services: svcInf.list(), statefulSets: stsInf.list(), secrets: secretInf.list() }));
      const t = round((performance.now() - t0) / 1000, 1);
      timeline.push({ t, pools: poolsDone, domains: domainsDone });
      if (t - lastLog >= 15) {
        lastLog = t;
        log(`  t=${t}s pools done ${poolsDone}/${opts.pools}, domains done ${domainsDone}/${opts.domains} (load ${load1()})`);
      }
      if (poolsDone === opts.pools && domainsDone === opts.domains) {
        doneSeconds = t;
        break;
      }
      await sleep(1000);
    }
    const cpuSeconds = diff(cpuStart, cpuSnapshot(op.pid, e.cluster.dir));
    const loadEnd = load1();
    log(`  ${doneSeconds !== undefined ? `converged in ${doneSeconds} s` : `NOT converged in ${opts.timeoutS} s`}; CPU s ${JSON.stringify(cpuSeconds)}; load ${loadStart} → ${loadEnd}`);
    // Settled: nothing queued (trailing reconciles of pools for their domains' keys are counted),
    // and a whole stats round since convergence (two more finished: the second began after it).
    const tSettle = performance.now();
    const rounds0 = metricSum(await op.scrape(), 'mailfleet_operator_stats_rounds_total')['all'] ?? 0;
    await waitResynced(op, {}, performance.now() + 600_000, { rounds: rounds0 + 2, everyMs: 15_000 });
    const settleSeconds = round((performance.now() - tSettle) / 1000, 1);
    log(`  settled ${settleSeconds} s after converging (queues empty, a whole stats round since; load ${load1()})`);
    const metrics1 = await op.scrape();
    const reconciles = metricSum(metrics1, 'mailfleet_operator_reconciles_total');
    const reconcileErrors = Object.values(metricSum(metrics1, 'mailfleet_operator_reconcile_errors_total')).reduce((a, b) => a + b, 0);
    const { writes: _w, ...kubeRequests } = await op.requestCounts();
    const totalRec = Object.values(reconciles).reduce((a, b) => a + b, 0);
    const keyCpu = keygen.find((k) => k.algorithm === opts.algorithm)?.cpuMsPerKey ?? 0;
    const opMs = (cpuSeconds['operator'] ?? 0) * 1000;
    const converge: Domains10kResult['converge'] = {
      createSeconds,
      ...(doneSeconds !== undefined ? { doneSeconds } : {}),
      poolsDone,
      domainsDone,
      loadAverage: { start: loadStart, end: loadEnd },
      cpuSeconds,
      operatorCpuMsPerObject: round(opMs / objects.length, 2),
      operatorCpuMsPerDomainWithoutKeygen: round((opMs - keyCpu * domainsDone) / Math.max(1, domainsDone + poolsDone), 2),
      reconciles,
      reconcileErrors,
      kubeRequests,
      kubeRequestsPerReconcile: round(kubeRequests.total / Math.max(1, totalRec), 2),
      operatorPeakRssMB: round((peakRssBytes(op.pid) ?? 0) / 2 ** 20, 1),
      timeline: timeline.filter((_, i) => i % 5 === 0 || i === timeline.length - 1),
      ...(doneSeconds !== undefined ? { settleSeconds } : {}),
    };
    log(`  reconciles ${JSON.stringify(reconciles)} (errors ${reconcileErrors}); API requests ${kubeRequests.total} (${converge.kubeRequestsPerReconcile} per reconcile); peak RSS ${converge.operatorPeakRssMB} MB`);
    // After the peak RSS is read: writing a snapshot takes a few hundred MB of its own.
    if (process.env.BENCH_HEAP_SNAPSHOT_DIR) {
      // operator-child.ts writes it synchronously on SIGUSR1: the next scrape answers once it is done.
      op.child.kill('SIGUSR1');
      await sleep(500);
      // The scrape's keep-alive socket may be reset while the process is busy writing.
      for (let k = 0; k < 5; k++) {
        if (await op.scrape().then(() => true, () => false)) break;
        await sleep(1000);
      }
      log(`  heap snapshot written to ${process.env.BENCH_HEAP_SNAPSHOT_DIR}`);
    }
    const result: Domains10kResult = { domains: opts.domains, pools: opts.pools, algorithm: opts.algorithm, cores: availableParallelism(), operatorNodeOptions: op.nodeOptions, keygen, converge };
    if (doneSeconds === undefined) return result;

    // ---- restart with everything settled
    await op.stop();
    const rLoad = load1();
    const rt0 = performance.now();
    op = await startOperatorProcess({ kubeconfig: e.kubeconfig, namespace: NS, dir, tag: '-2' });
    const rCpu0 = cpuSnapshot(op.pid, e.cluster.dir);
    const rec = await waitResynced(op, { MailDomain: opts.domains, SendingPool: opts.pools }, performance.now() + opts.timeoutS * 1000);
    const resyncSeconds = rec ? round((performance.now() - rt0) / 1000, 1) : undefined;
    const rCpu = diff(rCpu0, cpuSnapshot(op.pid, e.cluster.dir));
    // Anything trailing the resync is counted too, and the window holds a whole stats round (the
    // first starts with the operator; it writes nothing when every verdict is as the status says).
    await waitResynced(op, {}, performance.now() + 600_000, { rounds: 1, everyMs: 5000 });
    await sleep(3000);
    const { writes: rWrites, ...rCounts } = await op.requestCounts();
    const writes = Object.entries(rCounts.byRequest).filter(([k]) => !k.startsWith('GET ')).reduce((a, [, v]) => a + v, 0);
    const rMetrics = await op.scrape();
    result.restart = {
      ...(resyncSeconds !== undefined ? { resyncSeconds } : {}),
      loadAverage: rLoad,
      reconciles: metricSum(rMetrics, 'mailfleet_operator_reconciles_total'),
      kubeRequests: rCounts,
      writes,
      writesBy: writesByCaller({ ...rCounts, ...(rWrites ? { writes: rWrites } : {}) }),
      statsRounds: metricSum(rMetrics, 'mailfleet_operator_stats_rounds_total')['all'] ?? 0,
      cpuSeconds: rCpu,
      operatorPeakRssMB: round((peakRssBytes(op.pid) ?? 0) / 2 ** 20, 1),
    };
    log(`  restart: resynced in ${resyncSeconds ?? 'NOT'} s (load ${rLoad}); requests ${JSON.stringify(rCounts.byRequest)}; writes ${writes} ${JSON.stringify(result.restart.writesBy)}; CPU s ${JSON.stringify(rCpu)}; peak RSS ${result.restart.operatorPeakRssMB} MB`);

    // ---- one changed MailDomain at a time
    const c0 = await op.requestCounts();
    const rec0 = metricSum(await op.scrape(), 'mailfleet_operator_reconciles_total');
    const lat: number[] = [];
    for (let k = 0; k < opts.changes; k++) {
      const name = `d-${(k * 197) % opts.domains}`;
      let resolve!: () => void;
      const seen = new Promise<void>((r) => (resolve = r));
      const ts = performance.now();
      const patched = await e.kube.mergePatch({ ...DOMAIN_REF, namespace: NS, name }, { spec: { dmarc: { percent: 1 + (k % 99) } } });
      waiters.set(name, { gen: patched.metadata!.generation!, resolve });
      // The watch may have delivered the status before the waiter was set.
      const cur = domainInf.list().find((d) => d.metadata?.name === name);
      if (cur) onDomain('MODIFIED', cur);
      const timer = setTimeout(() => resolve(), 30_000);
      await seen;
      clearTimeout(timer);
      lat.push(performance.now() - ts);
    }
    await sleep(2000);
    const c1 = await op.requestCounts();
    const changeWrites = writesByCaller(c1, c0.writes?.length ?? 0);
    const rec1 = metricSum(await op.scrape(), 'mailfleet_operator_reconciles_total');
    const cd = countsDiff(c0, c1);
    const pct = (p: number) => round(percentile(lat, p), 1);
    result.changes = {
      count: lat.length,
      latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: round(Math.max(...lat), 1) },
      reconciles: sub(rec0, rec1),
      kubeRequests: cd,
      kubeRequestsPerChange: round(cd.total / Math.max(1, lat.length), 2),
      writesBy: changeWrites,
      loadAverage: load1(),
    };
    log(`  changes: ${lat.length}, patch → observedGeneration p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${result.changes.latencyMs.max} ms; requests ${JSON.stringify(cd.byRequest)}; writes ${JSON.stringify(changeWrites)}; reconciles ${JSON.stringify(result.changes.reconciles)}`);
    result.restart.operatorPeakRssMB = round((peakRssBytes(op.pid) ?? 0) / 2 ** 20, 1);
    return result;
  } finally {
    await Promise.all(informers.map((i) => i.stop()));
    await finishOperatorBench({ op, stopCluster: () => e.cluster.stop(), unregister: unregisterCluster, dir, keep: opts.keep ?? false, log });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      domains: { type: 'string' },
      pools: { type: 'string' },
      changes: { type: 'string' },
      algorithm: { type: 'string' },
      timeout: { type: 'string' },
      'keygen-rsa': { type: 'string' },
      'keygen-ed': { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'cpu-prof': { type: 'string' },
    },
  });
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  installInterruptHandler(() => {});
  const algorithm = (values.algorithm ?? 'ed25519') as DkimAlgorithm;
  if (algorithm !== 'ed25519' && algorithm !== 'rsa2048') throw new Error(`--algorithm: ed25519 or rsa2048, not ${algorithm}`);
  const r = await runDomains10k({
    domains: Number(values.domains ?? 10_000),
    pools: Number(values.pools ?? 200),
    changes: Number(values.changes ?? 50),
    algorithm,
    timeoutS: Number(values.timeout ?? 1800),
    keygenRsa: Number(values['keygen-rsa'] ?? 40),
    keygenEd: Number(values['keygen-ed'] ?? 400),
    log,
    keep: values.keep ?? false,
    ...(values['cpu-prof'] ? { cpuProfDir: values['cpu-prof'] } : {}),
  });
  const json = `${JSON.stringify(r, null, 2)}\n`;
  if (values.out) (await import('node:fs')).writeFileSync(values.out, json);
  else console.log(json);
}
