// The operator as its own process on the test control plane (bench/lib/operator-child.ts, with
// bench/lib/kube-count.ts preloaded so its API requests are counted), for the operator benches
// (operator-scale.ts, domains-10k.ts): started with the chart's NODE_OPTIONS so the RSS measured
// is the deployed one, its log kept in the bench's directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { KubeObject } from '../../operator/runtime/kube.ts';
import { REPO } from './mailfleet.ts';
import { cpuMs, onInterrupt, sleep } from './util.ts';

/** The NODE_OPTIONS the chart gives the operator (charts/mailfleet/values.yaml nodeOptions). */
export function chartNodeOptions(): string {
  const values = parseYaml(readFileSync(join(REPO, 'charts/mailfleet/values.yaml'), 'utf8')) as { nodeOptions?: string };
  return values.nodeOptions ?? '';
}

export interface KubeCounts {
  total: number;
  byRequest: Record<string, number>;
  /** The first 2,000 writes (not GET): request, path, and the operator code that made it. */
  writes?: Array<{ request: string; path: string; by: string }>;
}

/** Writes counted by "request ← operator code that made it" (KubeCounts.writes). */
export function writesByCaller(c: KubeCounts, from = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of (c.writes ?? []).slice(from)) out[`${w.request} by ${w.by}`] = (out[`${w.request} by ${w.by}`] ?? 0) + 1;
  return out;
}

export interface OperatorProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  nodeOptions: string;
  scrape(): Promise<string>;
  /** The operator's API requests so far, by "VERB resource[/sub]" (SIGUSR2 → the count file). */
  requestCounts(): Promise<KubeCounts>;
  /** SIGTERM, SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export async function startOperatorProcess(opts: {
  kubeconfig: string;
  namespace: string;
  /** Directory for operator-N.log and the request count file. */
  dir: string;
  /** Distinguishes the log and count files of a restarted operator. */
  tag?: string;
  cpuProfDir?: string;
}): Promise<OperatorProcess> {
  const tag = opts.tag ?? '';
  const countFile = join(opts.dir, `kube-requests${tag}.json`);
  const logStream = createWriteStream(join(opts.dir, `operator${tag}.log`));
  // BENCH_OPERATOR_NODE_OPTIONS: what a larger install would set in the chart's `nodeOptions`
  // (10,000 domains: docs/scaling.md); the chart's default otherwise.
  const nodeOptions = process.env.BENCH_OPERATOR_NODE_OPTIONS ?? chartNodeOptions();
  const prof = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [];
  const c = spawn(process.execPath, [...prof, '--import', join(REPO, 'bench/lib/kube-count.ts'), join(REPO, 'bench/lib/operator-child.ts')], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: nodeOptions, KUBECONFIG: opts.kubeconfig, BENCH_NAMESPACE: opts.namespace, BENCH_KUBE_COUNT_FILE: countFile, LOG_LEVEL: 'info' },
  });
  onInterrupt(() => void c.kill('SIGKILL'));
  c.stderr!.pipe(logStream);
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('operator not ready within 60 s')), 60_000);
    c.once('exit', (code) => reject(new Error(`operator exited ${code}; see ${opts.dir}/operator${tag}.log`)));
    c.stdout!.on('data', (d: Buffer) => {
      logStream.write(d);
      buf += d.toString();
      const m = /"bench operator ready","port":(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
        buf = '';
      } else if (buf.length > 1e6) buf = buf.slice(-1000);
    });
  });
  return {
    child: c,
    pid: c.pid!,
    port,
    nodeOptions,
    scrape: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    async requestCounts() {
      const before = fileMtime(countFile);
      c.kill('SIGUSR2');
      for (let i = 0; i < 100 && fileMtime(countFile) === before; i++) await sleep(50);
      try {
        return JSON.parse(readFileSync(countFile, 'utf8')) as KubeCounts;
      } catch {
        return { total: 0, byRequest: {} };
      }
    },
    async stop() {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((res) => c.once('exit', () => res()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function fileMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/** CPU seconds of the operator and the control plane's processes (the cluster's pids file), plus the bench's own. */
export function cpuSnapshot(operatorPid: number, clusterDir: string): Record<string, number> {
  const pids: Record<string, number> = { operator: operatorPid };
  try {
    for (const line of readFileSync(join(clusterDir, 'pids'), 'utf8').split('\n')) {
      const [name, pid] = line.trim().split(/\s+/);
      if (name && pid && name !== 'watchdog') pids[name] = Number(pid);
    }
  } catch {
    // no pids file: the operator alone
  }
  const own = process.cpuUsage();
  const out: Record<string, number> = { bench: (own.user + own.system) / 1000 };
  for (const [name, pid] of Object.entries(pids)) {
    const ms = cpuMs(pid);
    if (ms !== undefined) out[name] = ms;
  }
  return out;
}

/** Sum of a Prometheus counter's samples by its `kind` label. */
export function metricSum(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+?)(\{[^}]*\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const kind = /kind="([^"]+)"/.exec(m[2] ?? '')?.[1] ?? 'all';
    out[kind] = (out[kind] ?? 0) + Number(m[3]);
  }
  return out;
}

/** Runs fn over items with `parallel` in flight. */
export async function inParallel<T>(items: T[], parallel: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/**
 * Pool i's two IPs (198.18.0.0/15, the benchmarking range), distinct per pool: a pool listing an
 * address another pool claimed first gets no relay for it (operator/controllers/claims.ts), so
 * pools sharing test/operator/harness.ts samplePool's two addresses never converge.
 */
export function poolIps(i: number): { address: string; hostname: string }[] {
  return [0, 1].map((k) => ({ address: `198.18.${(2 * i + k) >> 8}.${(2 * i + k) & 255}`, hostname: `mta${k}.pool-${i}.test` }));
}

/**
 * Done, as the operator benches count it: a pool has status conditions (Ready among them), its
 * ConfigMap, Services and StatefulSets; a domain has its status, DKIMReady=True and its DKIM Secret.
 */
export function countDone(l: { pools: KubeObject[]; domains: KubeObject[]; configMaps: KubeObject[]; services: KubeObject[]; statefulSets: KubeObject[]; secrets: KubeObject[] }): { pools: number; domains: number } {
  const cond = (o: KubeObject, type: string) => ((o['status'] as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
  const statusWritten = (o: KubeObject) => cond(o, 'Ready') !== undefined;
  const byPool = (items: KubeObject[]) => new Set(items.map((o) => o.metadata?.labels?.['mailfleet.io/pool']).filter(Boolean));
  const [withCm, withSvc, withSts] = [byPool(l.configMaps), byPool(l.services), byPool(l.statefulSets)];
  const secretNames = new Set(l.secrets.map((s) => s.metadata?.name));
  return {
    pools: l.pools.filter((p) => statusWritten(p) && withCm.has(p.metadata!.name!) && withSvc.has(p.metadata!.name!) && withSts.has(p.metadata!.name!)).length,
    domains: l.domains.filter((d) => {
      const st = d['status'] as { dkimSecretName?: string } | undefined;
      return statusWritten(d) && cond(d, 'DKIMReady')?.status === 'True' && !!st?.dkimSecretName && secretNames.has(st.dkimSecretName);
    }).length,
  };
}

/** The end of an operator bench: the operator, then the control plane; the run's directory kept with BENCH_KEEP (or `keep`). */
export async function finishOperatorBench(r: { op: OperatorProcess | undefined; stopCluster: () => Promise<unknown>; unregister: () => void; dir: string; keep?: boolean; log: (s: string) => void }): Promise<void> {
  await r.op?.stop();
  await r.stopCluster();
  r.unregister();
  if (!r.keep && !process.env.BENCH_KEEP) rmSync(r.dir, { recursive: true, force: true });
  else r.log(`  kept ${r.dir}`);
}
