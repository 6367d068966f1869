// A real Prometheus server (Debian's `prometheus`) for tests: private data dir and port, targets
// from a file (file-based service discovery, so the list can be changed while it runs and can
// point at processes today and at pods on a node later), rule files, and the HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freeTcpPort } from './sink.ts';

export const PROMETHEUS_BIN = ['/usr/bin/prometheus', '/usr/local/bin/prometheus'].find((p) => existsSync(p));

export interface ScrapeTarget {
  /** host:port serving /metrics. */
  address: string;
  /** Target labels (job, cluster, namespace, pod, pool, ip …), as a PodMonitor would set them. */
  labels: Record<string, string>;
}

export interface Sample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface PrometheusServer {
  url: string;
  dir: string;
  setTargets(targets: ScrapeTarget[]): void;
  query(expr: string, time?: number): Promise<Sample[]>;
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<Sample[]>;
  labelValues(label: string, match: string): Promise<string[]>;
  alerts(): Promise<Alert[]>;
  /** Polls `check` (each scrape/evaluation is 1 s) until it returns a value, or fails naming `what`. */
  until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

async function api<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`);
  return body.data;
}

export async function startPrometheus(opts: { targets: ScrapeTarget[]; ruleGroups?: unknown[]; scrapeInterval?: string }): Promise<PrometheusServer> {
  if (!PROMETHEUS_BIN) throw new Error('prometheus is not installed (apt-get install prometheus)');
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-prometheus-'));
  const targetsFile = join(dir, 'targets.json');
  const setTargets = (targets: ScrapeTarget[]) => {
    // Written whole then renamed would be atomic; Prometheus re-reads on change and tolerates a
    // partial read by keeping the previous list, so a plain write is enough here.
    writeFileSync(targetsFile, JSON.stringify(targets.map((t) => ({ targets: [t.address], labels: t.labels }))));
  };
  setTargets(opts.targets);
  const interval = opts.scrapeInterval ?? '1s';
  if (opts.ruleGroups) writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: opts.ruleGroups }));
  writeFileSync(join(dir, 'prometheus.yml'), stringify({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    ...(opts.ruleGroups ? { rule_files: [join(dir, 'rules.yaml')] } : {}),
    scrape_configs: [{ job_name: 'file-sd', file_sd_configs: [{ files: [targetsFile], refresh_interval: interval }] }],
  }));
  const port = await freeTcpPort('127.0.0.1');
  const child: ChildProcess = spawn(PROMETHEUS_BIN, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-lifecycle',
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;

  const until = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}) while waiting for ${what}:\n${stderr}`);
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const server: PrometheusServer = {
    url,
    dir,
    setTargets,
    query: async (expr, time) => (await api<{ result: Sample[] }>(`${url}/api/v1/query?${new URLSearchParams({ query: expr, ...(time ? { time: String(time) } : {}) })}`)).result,
    queryRange: async (expr, start, end, step) =>
      (await api<{ result: Sample[] }>(`${url}/api/v1/query_range?${new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) })}`)).result,
    labelValues: (label, match) => api<string[]>(`${url}/api/v1/label/${encodeURIComponent(label)}/values?${new URLSearchParams({ 'match[]': match })}`),
    alerts: async () => (await api<{ alerts: Alert[] }>(`${url}/api/v1/alerts`)).alerts,
    until,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until('prometheus /-/ready', async () => ((await fetch(`${url}/-/ready`).catch(() => undefined))?.ok ? true : undefined), 30_000);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Waits until Prometheus scrapes every target successfully. */
export function allTargetsUp(p: PrometheusServer, n: number): Promise<true> {
  return p.until(`${n} targets up`, async () => {
    const d = await api<{ activeTargets: { health: string }[] }>(`${p.url}/api/v1/targets?state=active`);
    return d.activeTargets.length === n && d.activeTargets.every((t) => t.health === 'up') ? true : undefined;
  });
}
