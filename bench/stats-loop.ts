// The stats loop at fleet size (issue 17): operator/observe's Observer reading 1,000 relays, as it
// does every 30 s, measured in CPU per round. The relays are real HTTP servers (a child process,
// bench/lib/stats-servers.ts) serving one stats document of the relay contract (each with its own `instance`)
// (relay/stats/contract.ts, validated before serving) that this bench builds: every non-empty hour
// of the default 25, for the pool's domains × providers × classes, the shape relay/stats/document.ts
// assembles; they are NOT recorded from a relay under traffic, but each server's current hour grows
// with every answer (every current-hour bucket changes between two reads: a relay busy on all its
// keys). The Observer's clock moves one interval per round (its 5-minute save of the merged counts
// falls inside the default 12 rounds), while the rounds themselves run back to back. The Kubernetes side is an in-memory
// stand-in (pools, MailDomains, EndpointSlices, the token Secret, status writes counted): the
// apiserver refuses loopback endpoint addresses, and this measures the reader, not the apiserver.
//   node bench/stats-loop.ts [--relays 1000] [--relays-per-pool 5] [--domains 10000] [--domains-per-relay 50]
//                            [--providers 3] [--classes 1] [--rounds 12] [--interval 30] [--out FILE]
// Also run by `npm run bench -- --only stats-loop`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Observer } from '../operator/observe/observer.ts';
import { ObservationTable } from '../operator/observe/observations.ts';
import { createOperatorMetrics } from '../operator/metrics.ts';
import { relayName, headlessServiceName } from '../operator/render/names.ts';
import { parseSendingPool } from '../operator/api/index.ts';
import type { Kube, KubeObject } from '../operator/runtime/kube.ts';
import type { EventRecorder } from '../operator/runtime/events.ts';
import { StatsDocumentV1Schema, COUNT_FIELDS, type StatsDocumentV1 } from '../relay/stats/contract.ts';
import { REPO } from './lib/mailfleet.ts';
import { median, round } from './lib/util.ts';

export interface StatsLoopResult {
  relays: number;
  pools: number;
  domains: number;
  bucketsPerDocument: number;
  documentBytes: number;
  rounds: { wallSeconds: number; cpuSeconds: number; reads: number; statusWrites: number }[];
  /**
   * Mean CPU seconds of the rounds after the first (which also writes every domain's first health
   * status): the save of the merged counts every 5 minutes of the Observer's clock is spread over them.
   */
  cpuSecondsPerRound: number;
  /** Median of the same rounds (a round without a save). */
  cpuSecondsMedianRound: number;
  /** The reader's RSS after the last round (its high-water mark is the first round's full reads). */
  rssMB: number;
  /** The reader's V8 heap in use after the last round (what the merged state and caches hold). */
  heapUsedMB: number;
  /** That CPU over the interval, as a share of one core (target ≤ 10 % at 1,000 relays every 30 s). */
  coreShare: number;
  cpuMsPerRelayRead: number;
  intervalSeconds: number;
  loadAverage: number;
}

const PROVIDERS = ['gmail', 'outlook', 'yahoo', 'icloud', 'gmx', 'other'];

/** One relay's document: `domains` × `providers` × `classes` buckets in each of the last 25 hours. */
export function statsDoc(now: number, domains: string[], providers: number, classes: number): StatsDocumentV1 {
  const hour0 = Math.floor(now / 3_600_000) * 3_600_000 - 24 * 3_600_000;
  const buckets: StatsDocumentV1['buckets'] = [];
  for (let h = 0; h < 25; h++) {
    for (const domain of domains) {
      for (const provider of PROVIDERS.slice(0, providers)) {
        for (const cls of (['bulk', 'transactional', 'otp'] as const).slice(0, Math.max(1, classes))) {
          const c = Object.fromEntries(COUNT_FIELDS.map((f) => [f, 0])) as Record<(typeof COUNT_FIELDS)[number], number>;
          c.attempted = 200 + h;
          c.delivered = 196 + h;
          c.deferred = 3;
          c.bouncedHard = 1;
          buckets.push({ hour: new Date(hour0 + h * 3_600_000).toISOString(), ip: 'default', provider, domain, class: cls, ...c });
        }
      }
    }
  }
  return {
    schemaVersion: 1,
    instance: 'bench-instance',
    instanceCreated: new Date(hour0).toISOString(),
    now: new Date(now).toISOString(),
    configVersion: 'bench',
    queued: 120,
    pausedDomains: [],
    bucketSeconds: 3600,
    hoursFrom: new Date(hour0).toISOString(),
    buckets,
  };
}

/** The Kubernetes objects the Observer reads, in memory; status writes and applies are counted. */
class MemoryKube {
  writes = 0;
  private readonly configMaps = new Map<string, KubeObject>();
  private readonly pools: KubeObject[];
  private readonly domains: KubeObject[];
  private readonly slices: Map<string, KubeObject[]>;
  private readonly token: string;
  constructor(pools: KubeObject[], domains: KubeObject[], slices: Map<string, KubeObject[]>, token: string) {
    this.pools = pools;
    this.domains = domains;
    this.slices = slices;
    this.token = token;
  }
  async list(_v: string, kind: string, _ns?: string, selector?: string): Promise<{ items: KubeObject[] }> {
    if (kind === 'SendingPool') return { items: this.pools };
    if (kind === 'MailDomain') return { items: this.domains };
    if (kind === 'EndpointSlice') return { items: this.slices.get(selector!.split('=')[1]!) ?? [] };
    return { items: [] };
  }
  async find(_v: string, kind: string, _ns: string | undefined, name: string): Promise<KubeObject | undefined> {
    if (kind === 'Secret') return { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: { token: Buffer.from(`${this.token}\n`).toString('base64') } } as KubeObject;
    if (kind === 'ConfigMap') return this.configMaps.get(name);
    return undefined;
  }
  async apply(obj: KubeObject): Promise<KubeObject> {
    this.writes++;
    this.configMaps.set(obj.metadata!.name!, obj);
    return obj;
  }
  async replace(obj: KubeObject): Promise<KubeObject> {
    this.writes++;
    // As the apiserver: the stored object is the one written (the list hands it out next round).
    // Found by name through an index, as the apiserver's keyed store does (a scan of the list per
    // write was 10,000 × 10,000 comparisons in a round that writes every domain's status).
    const list = obj.kind === 'SendingPool' ? this.pools : this.domains;
    const index = obj.kind === 'SendingPool' ? this.poolIndex : this.domainIndex;
    if (index.size !== list.length) {
      index.clear();
      list.forEach((o, i) => index.set(o.metadata?.name ?? '', i));
    }
    const i = index.get(obj.metadata?.name ?? '');
    if (i !== undefined) list[i] = obj;
    return obj;
  }
  private readonly poolIndex = new Map<string, number>();
  private readonly domainIndex = new Map<string, number>();
}

export async function runStatsLoop(opts: {
  relays: number;
  relaysPerPool: number;
  domains: number;
  domainsPerRelay: number;
  providers: number;
  classes: number;
  rounds: number;
  intervalS: number;
  log: (s: string) => void;
}): Promise<StatsLoopResult> {
  const { log } = opts;
  const poolsN = Math.ceil(opts.relays / opts.relaysPerPool);
  const domainsPerPool = Math.ceil(opts.domains / poolsN);
  const doc = statsDoc(Date.now(), Array.from({ length: Math.min(opts.domainsPerRelay, domainsPerPool) }, (_, i) => `d${i}.pool.test`), opts.providers, opts.classes);
  const parsed = StatsDocumentV1Schema.safeParse(doc);
  if (!parsed.success) throw new Error(`bench stats document does not satisfy the contract: ${parsed.error.message}`);
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-statsloop-'));
  const docFile = join(dir, 'stats.json');
  const text = JSON.stringify(doc);
  writeFileSync(docFile, text);
  log(`== stats loop: ${opts.relays} relays (${poolsN} pools × ${opts.relaysPerPool}), ${opts.domains} MailDomains, document ${doc.buckets.length} buckets = ${round(text.length / 1024, 0)} KiB`);
  const token = 'bench-token';
  const child = spawn(process.execPath, [join(REPO, 'bench/lib/stats-servers.ts'), String(opts.relays), docFile, token], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const ports = await new Promise<number[]>((resolve, reject) => {
      child.once('exit', (c) => reject(new Error(`stats servers exited ${c}`)));
      createInterface({ input: child.stdout! }).once('line', (l) => resolve((JSON.parse(l) as { ports: number[] }).ports));
    });
    const NS = 'stats';
    const pools: KubeObject[] = [];
    const slices = new Map<string, KubeObject[]>();
    const domains: KubeObject[] = [];
    for (let p = 0; p < poolsN; p++) {
      const ips = Array.from({ length: opts.relaysPerPool }, (_, i) => ({ address: `198.18.${p >> 4}.${((p & 15) << 4) + i + 1}`, hostname: `mta${i}.p${p}.test` }));
      const raw: KubeObject = {
        apiVersion: 'mailfleet.io/v1alpha1', kind: 'SendingPool',
        metadata: { name: `pool-${p}`, namespace: NS, uid: `uid-${p}`, generation: 1 },
        spec: { ips, submission: { ports: [{ name: 'submission', port: 587, tls: 'none' }] } },
      };
      const pool = parseSendingPool(raw);
      if (!pool.ok) throw new Error(`pool: ${JSON.stringify(pool.problems)}`);
      pools.push(raw);
      slices.set(headlessServiceName(pool.value), ips.flatMap((ip, i) => {
        const port = ports[p * opts.relaysPerPool + i];
        return port === undefined ? [] : [{
          apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `s-${p}-${i}` },
          ports: [{ name: 'http', port }],
          endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: `${relayName(pool.value, ip.address)}-0` } }],
        } as KubeObject];
      }));
      for (let d = 0; d < domainsPerPool && domains.length < opts.domains; d++) {
        domains.push({ apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', metadata: { name: `d-${p}-${d}`, namespace: NS, generation: 1 }, spec: { domain: `d${d}.pool.test`, poolRef: { name: `pool-${p}` } } });
      }
    }
    const kube = new MemoryKube(pools, domains, slices, token);
    const metrics = createOperatorMetrics({ defaultMetrics: false });
    const events = { emit() {} } as unknown as EventRecorder;
    // The Observer's clock: one interval per round (the rounds run back to back).
    const clock0 = Date.now();
    let roundNo = 0;
    const observer = new Observer({ kube: kube as unknown as Kube, log: pino({ level: 'error' }), metrics, events, table: new ObservationTable(), namespace: NS, intervalMs: opts.intervalS * 1000, now: () => clock0 + roundNo * opts.intervalS * 1000 });
    const rounds: StatsLoopResult['rounds'] = [];
    let reads = 0;
    for (let r = 0; r < opts.rounds; r++) {
      roundNo = r;
      const w0 = kube.writes;
      const readsBefore = (await metrics.relayReads.get()).values.reduce((a, v) => a + v.value, 0);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await observer.tick();
      const cpu = process.cpuUsage(c0);
      const readsNow = (await metrics.relayReads.get()).values.reduce((a, v) => a + v.value, 0);
      reads = readsNow - readsBefore;
      const okReads = (await metrics.relayReads.get()).values.filter((v) => v.labels['result'] === 'ok').reduce((a, v) => a + v.value, 0);
      rounds.push({ wallSeconds: round((performance.now() - t0) / 1000, 2), cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2), reads, statusWrites: kube.writes - w0 });
      log(`  round ${r + 1}: ${rounds.at(-1)!.cpuSeconds} CPU s, ${rounds.at(-1)!.wallSeconds} s wall, ${reads} reads (${okReads} ok so far), ${kube.writes - w0} writes; load ${round(loadavg()[0]!, 1)}`);
    }
    const steady = rounds.slice(1).map((r) => r.cpuSeconds);
    const counted = steady.length ? steady : rounds.map((r) => r.cpuSeconds);
    const cpuSecondsPerRound = round(counted.reduce((a, x) => a + x, 0) / counted.length, 2);
    const res: StatsLoopResult = {
      relays: opts.relays,
      pools: poolsN,
      domains: domains.length,
      bucketsPerDocument: doc.buckets.length,
      documentBytes: text.length,
      rounds,
      cpuSecondsPerRound,
      cpuSecondsMedianRound: round(median(counted), 2),
      rssMB: round(process.memoryUsage().rss / 1048576, 0),
      heapUsedMB: round(process.memoryUsage().heapUsed / 1048576, 0),
      coreShare: round(cpuSecondsPerRound / opts.intervalS, 3),
      cpuMsPerRelayRead: round((cpuSecondsPerRound * 1000) / Math.max(1, reads), 2),
      intervalSeconds: opts.intervalS,
      loadAverage: round(loadavg()[0]!, 2),
    };
    log(`  ${cpuSecondsPerRound} CPU s per round (mean; median ${res.cpuSecondsMedianRound}) = ${round(res.coreShare * 100, 1)} % of one core every ${opts.intervalS} s (target ≤ 10 %); ${res.cpuMsPerRelayRead} ms per relay read`);
    return res;
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      relays: { type: 'string' }, 'relays-per-pool': { type: 'string' }, domains: { type: 'string' }, 'domains-per-relay': { type: 'string' },
      providers: { type: 'string' }, classes: { type: 'string' }, rounds: { type: 'string' }, interval: { type: 'string' }, out: { type: 'string' },
    },
  });
  const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
  const r = await runStatsLoop({
    relays: Number(values.relays ?? 1000),
    relaysPerPool: Number(values['relays-per-pool'] ?? 5),
    domains: Number(values.domains ?? 10_000),
    domainsPerRelay: Number(values['domains-per-relay'] ?? 50),
    providers: Number(values.providers ?? 3),
    classes: Number(values.classes ?? 1),
    rounds: Number(values.rounds ?? 12),
    intervalS: Number(values.interval ?? 30),
    log,
  });
  const json = `${JSON.stringify(r, null, 2)}\n`;
  if (values.out) writeFileSync(values.out, json);
  else console.log(json);
}
