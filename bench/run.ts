// `npm run bench`: the mailfleet relay against a private Postfix, on loopback, in one run.
// Both relay to a sink; load comes from Postfix's smtp-source (20 sessions) or, for latency, from
// a paced client of our own. Runs are interleaved Postfix, mailfleet, Postfix, mailfleet ... and
// the per-pair ratio mailfleet/Postfix is what to read: absolute numbers drift with the machine.
// Options: `npm run bench -- --help`. Results: bench/results/<date>.json.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { ensurePostfix, startPostfix } from './lib/postfix.ts';
import { startPostfixSink, startTimestampSink } from './lib/sinks.ts';
import { ACCEPT_DOMAIN, REPO, startMailfleet, type RelayTuning, imageNodeOptions, warmCompileCache } from './lib/mailfleet.ts';
import { runPaced, runSmtpSource, type PacedSample } from './lib/load.ts';
import { freePort, installInterruptHandler, percentile, round, sleep, summarize, type Summary } from './lib/util.ts';
import { formatProfile, summarizeProfile, type ProfileSummary } from './lib/profile.ts';
import { writeFlameGraph } from './lib/flamegraph.ts';
import { runLargeIntake } from './large-intake.ts';
import { runOtp, type OtpResult } from './otp.ts';
import { runBacklog, type BacklogResult } from './backlog.ts';
import { runCrashDuplicates } from './crash-duplicates.ts';
import { runOperatorScale } from './operator-scale.ts';
import { createCpuGroup, createCpuQuotaGroup, type CpuQuotaGroup } from './lib/cgroup.ts';
import { RELAY_RSS_TARGET_MB, renderHeadline, replaceHeadline, type BenchResults, type ThroughputResult, type ThreadsResult } from './lib/headline.ts';
import { cpuCount, cpuCountOf } from '../relay/cpu-quota.ts';
import { workerThreadCount } from '../relay/intake/threads.ts';
import { WORKER_THREADS_DEFAULT } from '../relay/config/schema.ts';
import { runDomains10k } from './domains-10k.ts';
import { runStatsLoop } from './stats-loop.ts';

const HELP = `Usage: npm run bench -- [options]

Runs Postfix and the mailfleet relay side by side on loopback and prints the ratios.

  --reps N            repetitions of each A/B pair (default 3, env BENCH_REPS)
  --only LIST         scenarios, comma separated: 1k,50k,reuse,latency,otp,profile,profile-otp,operator,
                      large-intake (peak relay RSS with 50 x 25 MiB, 100 x 1 MiB, 20 oversized at once),
                      threads (the relay alone at each --threads value, interleaved; e2e, CPU/msg, RSS),
                      backlog (1,000,000 bulk queued and held by warm-up caps: intake, idle CPU, RSS,
                      restarts, OTP while draining, fill-and-drain cycles; ~8 min),
                      crash-duplicates (kill -9 while delivering, 20 rounds: messages delivered twice; ~4 min),
                      domains-10k (test cluster: 10,000 MailDomains + 200 pools; BENCH_DOMAINS/BENCH_POOLS size it),
                      stats-loop (the operator's stats reader against 1,000 HTTP servers; BENCH_RELAYS)
                      (default: 1k,50k,reuse,latency,otp)
  --threads LIST      intake.workerThreads values for the threads scenario (default 0,1,2; 0 = SMTP
                      sessions on the main thread), or one value for every relay run of the other scenarios
                      when given without --only threads
  --threads-load L    the threads scenario's load: reuse (default: smtp-source -d, a cheap load generator) or 1k
  --relay-cpus N      run every relay under a cgroup CPU quota of N CPUs (a pod's resources.limits.cpu; root):
                      intake.workerThreads auto then resolves as in such a pod
  --readme / --no-readme  rewrite bench/README.md's headline from this run's JSON (default: only after a
                      full comparison run: 1k, 50k, reuse and latency)
  --operator          also run operator scale (test cluster; 1000 MailDomains + 100 SendingPools)
  --sessions N        smtp-source sessions (default 20)
  --n1k N             messages, 1 KiB one per connection (default 20000, env BENCH_N1K)
  --n50k N            messages, 50 KiB one per connection (default 6000, env BENCH_N50K)
  --nreuse N          messages, 1 KiB many per connection (default 30000, env BENCH_NREUSE)
  --latency-count N   paced messages per latency run (default 1500) at --latency-rate (default 100/s)
  --otp-bulk N        bulk messages queued before the OTP run (default 100000, env BENCH_OTP_BULK)
  --otp-seconds S     how long OTP messages arrive, at 10/s (default 30)
  --otp-sink-delay MS the slow sink waits this long before each 250 (default 100)
  --profile           also profile the relay (node --cpu-prof) under the 1 KiB one-per-connection load
  --profile-size B    message size for --profile (default 1024; 51200 profiles the 50 KiB load)
  --profile-reuse     --profile with many messages per connection (smtp-source -d)
  --profile-otp       also profile the relay during an OTP-under-load run (bulk backlog)
  --otp-fifo          also run OTP under load with the backlog as 'transactional' (what SMTP intake stores)
  --backlog-queued N  recipients queued for the backlog scenario (default 1000000, env BENCH_BACKLOG)
  --backlog-idle S    length of each CPU window while capped (default 60)
  --log-level LEVEL   relay log level (default info, as deployed)
  --relay-node-options=OPTS  NODE_OPTIONS for the relay process (env BENCH_RELAY_NODE_OPTIONS; default: the
                      image's, ENV NODE_OPTIONS in the Dockerfile), e.g. --relay-node-options= for none
  --out FILE          results JSON (default bench/results/<date>.json)
  --keep              keep the temporary directories (logs, queues)
`;

const { values: flags } = parseArgs({
  options: {
    reps: { type: 'string' },
    only: { type: 'string' },
    sessions: { type: 'string' },
    n1k: { type: 'string' },
    n50k: { type: 'string' },
    nreuse: { type: 'string' },
    'latency-count': { type: 'string' },
    'latency-rate': { type: 'string' },
    'otp-bulk': { type: 'string' },
    'otp-seconds': { type: 'string' },
    'otp-sink-delay': { type: 'string' },
    'otp-fifo': { type: 'boolean' },
    profile: { type: 'boolean' },
    'profile-otp': { type: 'boolean' },
    'profile-size': { type: 'string' },
    'profile-reuse': { type: 'boolean' },
    operator: { type: 'boolean' },
    'backlog-queued': { type: 'string' },
    'backlog-idle': { type: 'string' },
    'log-level': { type: 'string' },
    'relay-node-options': { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean' },
    threads: { type: 'string' },
    'relay-cpus': { type: 'string' },
    'threads-load': { type: 'string' },
    readme: { type: 'boolean' },
    'no-readme': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  allowPositionals: false,
});
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (v: string | undefined, env: string, def: number) => Number(v ?? process.env[env] ?? def);
const opts = {
  reps: num(flags.reps, 'BENCH_REPS', 3),
  sessions: num(flags.sessions, 'BENCH_SESSIONS', 20),
  // Long enough that start-up (the relay's JIT compilation, Postfix's process spawns) weighs on CPU
  // per message about as little as it does on a relay that runs for days: at 4,000 / 6,000 messages
  // the relay's first seconds were 14–24 % of its CPU per message (bench/README.md "Run length").
  n1k: num(flags.n1k, 'BENCH_N1K', 20_000),
  n50k: num(flags.n50k, 'BENCH_N50K', 6000),
  nreuse: num(flags.nreuse, 'BENCH_NREUSE', 30_000),
  latencyCount: num(flags['latency-count'], 'BENCH_LATENCY_COUNT', 1500),
  latencyRate: num(flags['latency-rate'], 'BENCH_LATENCY_RATE', 100),
  otpBulk: num(flags['otp-bulk'], 'BENCH_OTP_BULK', 100_000),
  otpSeconds: num(flags['otp-seconds'], 'BENCH_OTP_SECONDS', 30),
  otpSinkDelayMs: num(flags['otp-sink-delay'], 'BENCH_OTP_SINK_DELAY', 100),
  scenarios: new Set((flags.only ?? process.env.BENCH_ONLY ?? '1k,50k,reuse,latency,otp').split(',').map((s) => s.trim())),
  backlogQueued: num(flags['backlog-queued'], 'BENCH_BACKLOG', 1_000_000),
  backlogIdleSeconds: num(flags['backlog-idle'], 'BENCH_BACKLOG_IDLE', 60),
  keep: Boolean(flags.keep),
  threads: (flags.threads ?? '0,1,2').split(',').map((t) => (t.trim() === 'auto' ? ('auto' as const) : Number(t))),
  relayCpus: flags['relay-cpus'] === undefined ? undefined : Number(flags['relay-cpus']),
};
if (opts.relayCpus !== undefined && !(opts.relayCpus > 0 && opts.relayCpus <= 64)) {
  console.error(`--relay-cpus: a number of CPUs above 0 (0.5, 1, 2), got "${flags['relay-cpus']}"`);
  process.exit(2);
}
if (opts.threads.some((t) => t !== 'auto' && !(Number.isInteger(t) && t >= 0))) {
  console.error(`--threads: a comma-separated list of worker thread counts (0, 1, 2, ... or auto), got "${flags.threads}"`);
  process.exit(2);
}
if (flags.profile) opts.scenarios.add('profile');
if (flags['profile-otp']) opts.scenarios.add('profile-otp');
if (flags.operator) opts.scenarios.add('operator');
const tuning: RelayTuning = {
  logLevel: flags['log-level'] ?? 'info',
  nodeOptions: flags['relay-node-options'] ?? process.env.BENCH_RELAY_NODE_OPTIONS ?? imageNodeOptions(),
  // Postfix's smtp_destination_concurrency_limit is 20: the same number of connections to the sink.
  maxConnectionsPerHost: 20,
  maxMessagesPerConnection: 100,
  concurrency: 50,
  // --threads with one value and without the threads scenario: every relay run uses it.
  ...(flags.threads && opts.threads.length === 1 && !opts.scenarios.has('threads') ? { intakeThreads: opts.threads[0]! } : {}),
};

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

type System = 'postfix' | 'mailfleet';
const FROM = `sender@source.${ACCEPT_DOMAIN}`;
const TO = `rcpt@${ACCEPT_DOMAIN}`;

warmCompileCache();
const base = mkdtempSync(join(tmpdir(), 'mailfleet-bench-'));
// Postfix's daemons run as the postfix user and must reach their queue directory.
chmodSync(base, 0o755);
installInterruptHandler(() => {
  if (!opts.keep) rmSync(base, { recursive: true, force: true });
});
let runNo = 0;
const runDir = (label: string) => {
  const d = join(base, `${String(++runNo).padStart(2, '0')}-${label}`);
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o755);
  return d;
};

interface Started {
  port: number;
  pid?: number;
  peakRss(): number | undefined;
  /** The relay process's CPU from /proc (all threads), ms; undefined for Postfix (many processes). */
  cpuMs(): number | undefined;
  /** CPU of everything the system started (its cgroup, bench/lib/cgroup.ts), ms; undefined without cgroups. */
  groupCpuMs(): number | undefined;
  stop(): Promise<void>;
}

let cgroupWarned = false;
async function startSystem(system: System, dir: string, sinkPort: number, cpuProfDir?: string, runTuning: RelayTuning = tuning): Promise<Started> {
  const port = await freePort();
  const g = createCpuGroup(system);
  const group = 'unavailable' in g ? undefined : g;
  if (!group && !cgroupWarned) {
    cgroupWarned = true;
    log(`no cgroup CPU accounting (${(g as { unavailable: string }).unavailable}): Postfix's CPU per message is not measured, the relay's comes from /proc`);
  }
  const groupCpuMs = () => (group ? group.usageMs() : undefined);
  if (system === 'postfix') {
    const pf = await startPostfix({ dir, port, relayPort: sinkPort, ...(group ? { cpuGroup: group } : {}) });
    return { port, peakRss: () => undefined, cpuMs: () => undefined, groupCpuMs, stop: async () => { await pf.stop(); await group?.remove(); } };
  }
  const quota = relayQuotaGroup();
  const mf = await startMailfleet({ dir, port, sinkPort, tuning: runTuning, ...(cpuProfDir ? { cpuProfDir } : {}), ...(group ? { cpuGroup: group } : {}), ...(quota ? { quotaGroup: quota } : {}) });
  return { port, pid: mf.pid, peakRss: () => mf.peakRss(), cpuMs: () => mf.cpuMs(), groupCpuMs, stop: async () => { await mf.stop(); await group?.remove(); await quota?.remove(); } };
}

/** The CPU-quota group for a relay run under --relay-cpus (none without it); the bench stops when it cannot make one. */
function relayQuotaGroup(): CpuQuotaGroup | undefined {
  if (opts.relayCpus === undefined) return undefined;
  const q = createCpuQuotaGroup('relay', opts.relayCpus);
  if ('unavailable' in q) {
    console.error(`--relay-cpus ${opts.relayCpus}: ${q.unavailable}`);
    process.exit(2);
  }
  return q;
}

/** 1-minute load average now; a run that starts above LOADED_AT is marked (its numbers are suspect). */
const LOADED_AT = 1.5;
const load1 = () => round(loadavg()[0] ?? Number.NaN, 2);

interface ThroughputRun {
  system: System;
  rep: number;
  messages: number;
  /** Messages/s arriving at the sink, from the start of the load. */
  e2e: number;
  /** Messages/s accepted (smtp-source start to exit). */
  accept: number;
  peakRssMB?: number;
  /**
   * CPU time per message of everything the system runs (its cgroup: Postfix's master and all its
   * daemons; the relay process), from the start of the load until the sink has every message.
   * Without cgroups: the relay's /proc figure, and nothing for Postfix.
   */
  cpuMsPerMsg?: number;
  /** The relay's own /proc figure (all threads), beside the cgroup's. */
  procCpuMsPerMsg?: number;
  /** 1-minute load average when the run started and ended; `loaded` when it started above LOADED_AT. */
  loadStart: number;
  loadEnd: number;
  loaded?: boolean;
  /** intake.workerThreads the relay ran with (threads scenario). */
  workerThreads?: number | 'auto';
}

interface ThroughputScenario {
  name: string;
  label: string;
  size: number;
  reuse: boolean;
  messages: number;
}

async function throughputRun(sc: ThroughputScenario, system: System, rep: number, cpuProfDir?: string, runTuning: RelayTuning = tuning): Promise<ThroughputRun> {
  const dir = runDir(`${sc.name}-${system}-${rep}`);
  const sink = await startPostfixSink(await freePort());
  const sys = await startSystem(system, dir, sink.port, cpuProfDir, runTuning);
  try {
    const timeoutMs = Math.max(120_000, sc.messages * 50);
    const loadStart = load1();
    const cpuBefore = sys.cpuMs();
    const groupBefore = sys.groupCpuMs();
    const src = await runSmtpSource({ port: sys.port, sessions: opts.sessions, messages: sc.messages, size: sc.size, reuse: sc.reuse, from: FROM, to: TO, timeoutMs });
    const doneAt = await sink.reached(sc.messages, timeoutMs);
    const cpuAfter = sys.cpuMs();
    const groupAfter = sys.groupCpuMs();
    const rss = sys.peakRss();
    const procCpu = cpuBefore !== undefined && cpuAfter !== undefined ? round((cpuAfter - cpuBefore) / sc.messages, 3) : undefined;
    const groupCpu = groupBefore !== undefined && groupAfter !== undefined ? round((groupAfter - groupBefore) / sc.messages, 3) : undefined;
    const cpu = groupCpu ?? procCpu;
    const r: ThroughputRun = {
      system,
      rep,
      messages: sc.messages,
      e2e: round(sc.messages / ((doneAt - src.startedAt) / 1000), 1),
      accept: round(sc.messages / ((src.endedAt - src.startedAt) / 1000), 1),
      ...(rss !== undefined ? { peakRssMB: round(rss / 2 ** 20, 1) } : {}),
      ...(cpu !== undefined ? { cpuMsPerMsg: cpu } : {}),
      ...(procCpu !== undefined ? { procCpuMsPerMsg: procCpu } : {}),
      loadStart,
      loadEnd: load1(),
      ...(loadStart > LOADED_AT ? { loaded: true } : {}),
      ...(system === 'mailfleet' && runTuning.intakeThreads !== undefined ? { workerThreads: runTuning.intakeThreads } : {}),
    };
    log(
      `${sc.label} ${system} #${rep}: e2e ${r.e2e} msg/s, accept ${r.accept} msg/s${r.peakRssMB !== undefined ? `, peak RSS ${r.peakRssMB} MB` : ''}` +
        `${r.cpuMsPerMsg !== undefined ? `, CPU ${r.cpuMsPerMsg} ms/msg${groupCpu !== undefined ? ' (cgroup)' : ' (/proc)'}` : ''}` +
        `, load ${r.loadStart}→${r.loadEnd}${r.loaded ? ' LOADED' : ''}`,
    );
    return r;
  } finally {
    await sys.stop();
    await sink.stop();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

interface LatencyRun {
  system: System;
  rep: number;
  sent: number;
  errors: number;
  lost: number;
  /** ms: connect → 250 after DATA. */
  acceptP50: number;
  acceptP99: number;
  /** ms: "." → 250 (the durable commit as the client sees it). */
  commitP50: number;
  commitP99: number;
  /** ms: 250 → arrival at the sink. */
  e2eP50: number;
  e2eP99: number;
  peakRssMB?: number;
  loadStart: number;
  loadEnd: number;
  loaded?: boolean;
  /** Its "." → 250 p99 is more than STALL_FACTOR × the median run's of the same system (stall detector). */
  stalled?: boolean;
}

/** A latency run whose "." → 250 p99 exceeds this multiple of the median run's fails the bench (issue 13). */
const STALL_FACTOR = 2;

async function latencyRun(system: System, rep: number): Promise<LatencyRun> {
  const dir = runDir(`latency-${system}-${rep}`);
  const sink = await startTimestampSink(await freePort());
  const sys = await startSystem(system, dir, sink.port);
  try {
    const loadStart = load1();
    // One second of warm-up (process spawning in Postfix, JIT in node), not counted.
    await runPaced({ port: sys.port, ratePerSec: opts.latencyRate, count: opts.latencyRate, size: 1024, from: FROM, to: TO, idPrefix: `warm.${system}.${rep}` });
    const samples = await runPaced({ port: sys.port, ratePerSec: opts.latencyRate, count: opts.latencyCount, size: 1024, from: FROM, to: TO, idPrefix: `lat.${system}.${rep}` });
    const ok = samples.filter((s) => !s.error);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && ok.some((s) => !sink.arrivals.has(s.messageId))) await sleep(50);
    const e2e: number[] = [];
    let lost = 0;
    for (const s of ok) {
      const at = sink.arrivals.get(s.messageId);
      if (at === undefined) lost++;
      else e2e.push(at - s.accepted);
    }
    const rss = sys.peakRss();
    const acc = ok.map((s: PacedSample) => s.accepted - s.start);
    const com = ok.map((s: PacedSample) => s.accepted - s.dot);
    const r: LatencyRun = {
      system,
      rep,
      sent: samples.length,
      errors: samples.length - ok.length,
      lost,
      acceptP50: round(percentile(acc, 50)),
      acceptP99: round(percentile(acc, 99)),
      commitP50: round(percentile(com, 50)),
      commitP99: round(percentile(com, 99)),
      e2eP50: round(percentile(e2e, 50)),
      e2eP99: round(percentile(e2e, 99)),
      ...(rss !== undefined ? { peakRssMB: round(rss / 2 ** 20, 1) } : {}),
      loadStart,
      loadEnd: load1(),
      ...(loadStart > LOADED_AT ? { loaded: true } : {}),
    };
    if (r.errors) log(`  first error: ${samples.find((s) => s.error)?.error}`);
    log(
      `latency ${system} #${rep}: accept p50/p99 ${r.acceptP50}/${r.acceptP99} ms (commit ${r.commitP50}/${r.commitP99}), ` +
        `250→sink p50/p99 ${r.e2eP50}/${r.e2eP99} ms, errors ${r.errors}, lost ${r.lost}, load ${r.loadStart}→${r.loadEnd}${r.loaded ? ' LOADED' : ''}`,
    );
    return r;
  } finally {
    await sys.stop();
    await sink.stop();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

type Comparison = ThroughputResult['e2e'];

function compare(pf: number[], mf: number[]): Comparison {
  const ratios = pf.map((p, i) => round((mf[i] ?? Number.NaN) / p, 2));
  return { postfix: summarize(pf), mailfleet: summarize(mf), ratio: summarize(ratios) };
}

const fmt = (s: Summary, unit = '') => `${round(s.median, 1)}${unit} [${round(s.min, 1)}–${round(s.max, 1)}]`;
const fmt2 = (s: Summary, unit = '') => `${round(s.median, 2)}${unit} [${round(s.min, 2)}–${round(s.max, 2)}]`;

/** What the comparison's relays run: the tuning's intake.workerThreads or the relay's default, resolved here as the relay resolves it. */
function sessionThreadsOfRuns(): { setting: number | 'auto'; threads: number; cpuQuota?: number } {
  const setting = tuning.intakeThreads ?? WORKER_THREADS_DEFAULT;
  if (opts.relayCpus === undefined) return { setting, threads: workerThreadCount(setting, cpuCount()) };
  return { setting, threads: workerThreadCount(setting, cpuCountOf(opts.relayCpus)), cpuQuota: opts.relayCpus };
}

async function main(): Promise<void> {
  const started = new Date();
  log(`bench: node ${process.version}, reps ${opts.reps}, scenarios ${[...opts.scenarios].join(',')}, tmp ${base}, relay NODE_OPTIONS ${tuning.nodeOptions || "(none)"}`);
  ensurePostfix(log);
  const results: Record<string, unknown> = {
    date: started.toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    options: { ...opts, scenarios: [...opts.scenarios] },
    relayTuning: tuning,
    relaySessionThreads: sessionThreadsOfRuns(),
    tree: gitState(),
    loadAverage: (await import('node:os')).loadavg().map((x) => round(x, 2)),
  };
  const throughput: Record<string, ThroughputResult> = {};
  // Issue 13's targets: throughput ≥ target× Postfix's, CPU per message ≤ cpuTarget× Postfix's, same run.
  const scenarios: (ThroughputScenario & { target: number; cpuTarget: number })[] = [
    { name: '1k', label: '1 KiB, one msg/conn', size: 1024, reuse: false, messages: opts.n1k, target: 2, cpuTarget: 0.35 },
    { name: '50k', label: '50 KiB, one msg/conn', size: 50 * 1024, reuse: false, messages: opts.n50k, target: 1.5, cpuTarget: 0.45 },
    { name: 'reuse', label: '1 KiB, many msg/conn', size: 1024, reuse: true, messages: opts.nreuse, target: 4, cpuTarget: 0.2 },
  ];
  let peakRss = 0;
  for (const sc of scenarios) {
    if (!opts.scenarios.has(sc.name)) continue;
    log(`== ${sc.label}: ${sc.messages} messages, ${opts.sessions} sessions, ${opts.reps} A/B pairs`);
    const runs: ThroughputRun[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const system of ['postfix', 'mailfleet'] as const) runs.push(await throughputRun(sc, system, rep));
    }
    const pf = runs.filter((r) => r.system === 'postfix');
    const mf = runs.filter((r) => r.system === 'mailfleet');
    for (const r of mf) peakRss = Math.max(peakRss, r.peakRssMB ?? 0);
    const e2e = compare(pf.map((r) => r.e2e), mf.map((r) => r.e2e));
    const hasCpu = pf.every((r) => r.cpuMsPerMsg !== undefined) && mf.every((r) => r.cpuMsPerMsg !== undefined);
    const cpu = hasCpu ? compare(pf.map((r) => r.cpuMsPerMsg!), mf.map((r) => r.cpuMsPerMsg!)) : undefined;
    throughput[sc.name] = {
      label: sc.label, runs, e2e, accept: compare(pf.map((r) => r.accept), mf.map((r) => r.accept)), target: sc.target, met: e2e.ratio.median >= sc.target,
      ...(cpu ? { cpu, cpuTarget: sc.cpuTarget, cpuMet: cpu.ratio.median <= sc.cpuTarget } : {}),
    };
  }
  results.throughput = throughput;

  // Session threads (issue 13): the relay alone at each intake.workerThreads, runs interleaved.
  if (opts.scenarios.has('threads')) {
    const sc = threadsScenario();
    log(`== threads: ${sc.label}, ${sc.messages} messages, intake.workerThreads ${opts.threads.join(', ')}, ${opts.reps} rounds`);
    const runs: ThroughputRun[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const t of opts.threads) runs.push(await throughputRun(sc, 'mailfleet', rep, undefined, { ...tuning, intakeThreads: t }));
    }
    results.threads = {
      scenario: sc.name, label: sc.label, messages: sc.messages,
      byThreads: opts.threads.map((t) => {
        const mine = runs.filter((r) => r.workerThreads === t);
        return {
          workerThreads: t,
          e2e: summarize(mine.map((r) => r.e2e)),
          accept: summarize(mine.map((r) => r.accept)),
          cpuMsPerMsg: summarize(mine.flatMap((r) => (r.cpuMsPerMsg !== undefined ? [r.cpuMsPerMsg] : []))),
          peakRssMB: summarize(mine.flatMap((r) => (r.peakRssMB !== undefined ? [r.peakRssMB] : []))),
        };
      }),
      runs,
    };
  }

  let latency: { runs: LatencyRun[]; e2eP99: Comparison; e2eP50: Comparison; acceptP99: Comparison; acceptP50: Comparison; commitP99: Comparison; met: boolean; stalls: string[] } | undefined;
  if (opts.scenarios.has('latency')) {
    log(`== latency at ${opts.latencyRate} msg/s, 1 KiB, one msg/conn, ${opts.latencyCount} messages, ${opts.reps} A/B pairs`);
    const runs: LatencyRun[] = [];
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const system of ['postfix', 'mailfleet'] as const) runs.push(await latencyRun(system, rep));
    }
    const pf = runs.filter((r) => r.system === 'postfix');
    const mf = runs.filter((r) => r.system === 'mailfleet');
    for (const r of mf) peakRss = Math.max(peakRss, r.peakRssMB ?? 0);
    const c = (k: keyof LatencyRun) => compare(pf.map((r) => r[k] as number), mf.map((r) => r[k] as number));
    latency = { runs, e2eP99: c('e2eP99'), e2eP50: c('e2eP50'), acceptP99: c('acceptP99'), acceptP50: c('acceptP50'), commitP99: c('commitP99'), met: false, stalls: [] };
    // Issue 13: the relay's 250 → sink p99 at or below Postfix's in every A/B pair, not only the medians.
    latency.met = latency.e2eP99.ratio.values.length > 0 && latency.e2eP99.ratio.values.every((r) => r <= 1);
    // Stall detector: each system's runs against that system's median "." → 250 p99.
    for (const sys of [pf, mf]) {
      const med = summarize(sys.map((r) => r.commitP99)).median;
      for (const r of sys) {
        if (r.commitP99 > STALL_FACTOR * med) {
          r.stalled = true;
          latency.stalls.push(`${r.system} #${r.rep}: "." → 250 p99 ${r.commitP99} ms > ${STALL_FACTOR} × the median run's ${round(med, 2)} ms`);
        }
      }
    }
    for (const st of latency.stalls) log(`STALL ${st}`);
    results.latency = latency;
  }

  let otp: OtpResult[] | undefined;
  if (opts.scenarios.has('otp')) {
    otp = [];
    const variants: ('bulk' | 'transactional')[] = flags['otp-fifo'] ? ['bulk', 'transactional'] : ['bulk'];
    for (const backlogClass of variants) {
      const dir = runDir(`otp-${backlogClass}`);
      try {
        const r = await runOtp({ dir, bulk: opts.otpBulk, seconds: opts.otpSeconds, ratePerSec: 10, sinkDelayMs: opts.otpSinkDelayMs, backlogClass, tuning, log });
        otp.push(r);
        peakRss = Math.max(peakRss, r.peakRssMB ?? 0);
      } finally {
        if (!opts.keep) rmSync(dir, { recursive: true, force: true });
      }
    }
    results.otp = otp;
  }

  if (opts.scenarios.has('large-intake')) {
    const dir = runDir('large-intake');
    try {
      results.largeIntake = await runLargeIntake({ dir, tuning, log });
    } finally {
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    }
  }

  if (opts.scenarios.has('backlog')) {
    const dir = runDir('backlog');
    try {
      const r = await runBacklog({
        dir, queued: opts.backlogQueued, tuning, log, intakeMessages: flags.n1k !== undefined ? opts.n1k : 4000, idleSeconds: opts.backlogIdleSeconds,
        otpSeconds: opts.otpSeconds, sinkDelayMs: opts.otpSinkDelayMs, cycles: 3, cycleSize: Math.min(200_000, opts.backlogQueued),
      });
      results.backlog = { ...r, loadAverageAfter: (await import('node:os')).loadavg().map((x) => round(x, 2)) };
      peakRss = Math.max(peakRss, r.peakRssMB ?? 0);
    } finally {
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    }
  }

  if (opts.scenarios.has('crash-duplicates')) {
    const dir = runDir('crash-duplicates');
    try {
      results.crashDuplicates = await runCrashDuplicates({ dir, rounds: 20, messages: 60_000, tuning, log });
    } finally {
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    }
  }

  const profDir = join(REPO, 'bench/results/profiles', started.toISOString().slice(0, 10));
  const profiled = async (what: string, run: (dir: string) => Promise<unknown>): Promise<ProfileSummary | undefined> => {
    mkdirSync(profDir, { recursive: true });
    const before = new Set(readdirSync(profDir));
    log(`== profile: relay under node --cpu-prof, ${what}`);
    await run(profDir);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile') && !before.has(f));
    if (!file) {
      log('no .cpuprofile was written');
      return undefined;
    }
    const s = summarizeProfile(join(profDir, file));
    console.log(formatProfile(s));
    const flame = writeFlameGraph(join(profDir, file));
    log(`flame graph: ${relative(REPO, flame.svg)} (folded stacks for flamegraph.pl, inferno or speedscope: ${relative(REPO, flame.folded)})`);
    return s;
  };
  if (opts.scenarios.has('profile')) {
    const size = Number(flags['profile-size'] ?? 1024);
    const reuse = Boolean(flags['profile-reuse']);
    const messages = reuse ? opts.nreuse : size > 10_000 ? opts.n50k : opts.n1k;
    const label = `profile ${size} B ${reuse ? 'many msg/conn' : 'one msg/conn'}`;
    results.profile = await profiled(`${label}, ${messages} messages`, (dir) =>
      throughputRun({ name: 'profile', label, size, reuse, messages }, 'mailfleet', 1, dir),
    );
  }
  if (opts.scenarios.has('profile-otp')) {
    const dir = runDir('otp-profile');
    try {
      results.profileOtp = await profiled(`OTP under load, ${opts.otpBulk} bulk queued`, (pd) =>
        runOtp({ dir, bulk: opts.otpBulk, seconds: opts.otpSeconds, ratePerSec: 10, sinkDelayMs: opts.otpSinkDelayMs, backlogClass: 'bulk', tuning, log, cpuProfDir: pd }),
      );
    } finally {
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    }
  }

  if (opts.scenarios.has('operator')) {
    const r = await runOperatorScale({ domains: Number(process.env.BENCH_DOMAINS ?? 1000), pools: Number(process.env.BENCH_POOLS ?? 100), timeoutS: 300, log });
    results.operatorScale = r;
    if ('skipped' in r) log(`operator scale skipped: ${r.skipped}`);
  }

  if (opts.scenarios.has('domains-10k')) {
    const r = await runDomains10k({
      domains: Number(process.env.BENCH_DOMAINS ?? 10_000),
      pools: Number(process.env.BENCH_POOLS ?? 200),
      changes: 50,
      algorithm: 'ed25519',
      timeoutS: 3600,
      keygenRsa: 40,
      keygenEd: 400,
      log,
    });
    results.domains10k = r;
    if ('skipped' in r) log(`domains-10k skipped: ${r.skipped}`);
  }
  if (opts.scenarios.has('stats-loop')) {
    results.statsLoop = await runStatsLoop({
      relays: Number(process.env.BENCH_RELAYS ?? 1000), relaysPerPool: 5, domains: 10_000, domainsPerRelay: 50, providers: 3, classes: 1, rounds: 12, intervalS: 30, log,
    });
  }

  results.relayPeakRssMB = peakRss || undefined;
  results.durationSeconds = Math.round((Date.now() - started.getTime()) / 1000);
  results.loadAverageEnd = (await import('node:os')).loadavg().map((x) => round(x, 2));
  // Each run spawns the relay from the working tree: note what it was at the end too.
  results.treeEnd = gitState();

  // Report.
  console.log('\n==== mailfleet vs Postfix (same run; ratio = mailfleet/Postfix per A/B pair, median [min–max]) ====');
  for (const sc of scenarios) {
    const t = throughput[sc.name];
    if (!t) continue;
    console.log(
      `${sc.label.padEnd(22)} e2e msg/s  Postfix ${fmt(t.e2e.postfix)}  mailfleet ${fmt(t.e2e.mailfleet)}  ratio ${fmt(t.e2e.ratio, '×')}` +
        `  target ≥${sc.target}× ${t.met ? 'MET' : 'NOT MET'}   (accept ratio ${fmt(t.accept.ratio, '×')})`,
    );
    if (t.cpu) {
      console.log(
        `${''.padEnd(22)} CPU ms/msg (cgroup) Postfix ${fmt(t.cpu.postfix)}  mailfleet ${fmt(t.cpu.mailfleet)}  ratio ${fmt2(t.cpu.ratio, "×")}  target ≤${t.cpuTarget}× ${t.cpuMet ? 'MET' : 'NOT MET'}`,
      );
    } else {
      const cpu = t.runs.flatMap((r) => (r.system === 'mailfleet' && r.cpuMsPerMsg !== undefined ? [r.cpuMsPerMsg] : []));
      if (cpu.length > 0) console.log(`${''.padEnd(22)} relay CPU ms/msg (/proc, all threads) ${fmt(summarize(cpu))}; Postfix's not measured (no cgroup)`);
    }
    const loaded = t.runs.filter((r) => r.loaded);
    if (loaded.length) console.log(`${''.padEnd(22)} ${loaded.length} of ${t.runs.length} runs started above load ${LOADED_AT} (marked LOADED)`);
  }
  const th = results.threads as ThreadsResult | undefined;
  for (const b of th?.byThreads ?? []) {
    console.log(
      `threads (${th!.label}) intake.workerThreads ${String(b.workerThreads).padEnd(4)} e2e ${fmt(b.e2e, ' msg/s')}  accept ${fmt(b.accept, ' msg/s')}  CPU ${fmt(b.cpuMsPerMsg, ' ms/msg')}  peak RSS ${fmt(b.peakRssMB, ' MB')}`,
    );
  }
  if (latency) {
    console.log(
      `latency @${opts.latencyRate}/s, 250→sink   p50 Postfix ${fmt(latency.e2eP50.postfix, ' ms')} mailfleet ${fmt(latency.e2eP50.mailfleet, ' ms')}; ` +
        `p99 Postfix ${fmt(latency.e2eP99.postfix, ' ms')} mailfleet ${fmt(latency.e2eP99.mailfleet, ' ms')}  target p99 ≤ Postfix's in every pair ${latency.met ? 'MET' : 'NOT MET'}`,
    );
    console.log(
      `latency @${opts.latencyRate}/s, connect→250 p50 Postfix ${fmt(latency.acceptP50.postfix, ' ms')} mailfleet ${fmt(latency.acceptP50.mailfleet, ' ms')}; ` +
        `p99 Postfix ${fmt(latency.acceptP99.postfix, ' ms')} mailfleet ${fmt(latency.acceptP99.mailfleet, ' ms')}`,
    );
    console.log(
      `latency @${opts.latencyRate}/s, "."→250 p99 Postfix ${fmt(latency.commitP99.postfix, ' ms')} mailfleet ${fmt(latency.commitP99.mailfleet, ' ms')}  ` +
        `stall detector (any run > ${STALL_FACTOR}× its system's median): ${latency.stalls.length ? `FAILED: ${latency.stalls.join('; ')}` : 'passed'}`,
    );
    if (latency.stalls.length) process.exitCode = 1;
  }
  for (const o of otp ?? []) {
    console.log(
      `OTP under load (${o.bulkQueued} queued as '${o.backlogClass}', sink +${o.sinkDelayMs} ms/msg): OTP (${o.otpClassHonoured === undefined ? 'lane unknown' : o.otpClassHonoured ? 'otp lane' : 'as transactional'}) 250→sink p50 ${o.p50} ms p99 ${o.p99} ms ` +
        `(${o.delivered}/${o.sent} delivered in window) target p99 ≤ 50 ms ${o.p99 <= 50 && o.delivered === o.sent ? 'MET' : 'NOT MET'}; bulk drained ${o.bulkDeliveredPerSec} msg/s`,
    );
  }
  const bl = results.backlog as BacklogResult | undefined;
  if (bl) {
    const met = (ok: boolean) => (ok ? 'MET' : 'NOT MET');
    const worstRestart = bl.restarts.reduce((m, r) => ({ first250: Math.max(m.first250, r.toFirst250S), delivery: Math.max(m.delivery, r.toFirstDeliveryS) }), { first250: 0, delivery: 0 });
    console.log(
      `backlog (${bl.queued} queued, capped): accept ${bl.acceptRatio}x empty (target ≥ 0.9 ${met(bl.acceptRatio >= 0.9)}); ` +
        `OTP connect→250 p99 ${bl.otp.acceptP99} ms, 250→sink p99 ${bl.otp.e2eP99} ms (target ≤ 50 ms ${met(bl.otp.acceptP99 <= 50 && bl.otp.e2eP99 <= 50)}); ` +
        `RSS peak ${bl.peakRssMB} MB (target ≤ 200 ${met((bl.peakRssMB ?? Infinity) <= 200)}); CPU ${bl.cpuIdleWindowS} s over ${bl.idleWindowSeconds} s idle-but-capped; ` +
        `restart → first 250 ${worstRestart.first250} s (≤ 5 ${met(worstRestart.first250 <= 5)}), → first delivery ${worstRestart.delivery} s (≤ 10 ${met(worstRestart.delivery <= 10)}); ` +
        `re-sent ${bl.duplicates}; ${bl.bytesPerMessage} bytes per queued 1 KiB message; cycles: ${bl.cycles.map((c) => `${round(c.dbBytes / 2 ** 20, 1)} MiB`).join(', ')}`,
    );
  }
  const ops = results.operatorScale as Awaited<ReturnType<typeof runOperatorScale>> | undefined;
  if (ops && !('skipped' in ops)) {
    console.log(
      `operator scale (${ops.pools} pools + ${ops.domains} domains): ${ops.doneSeconds !== undefined ? `${ops.doneSeconds} s` : `not done in 300 s`} (target ≤ 30 s ${ops.doneSeconds !== undefined && ops.doneSeconds <= 30 ? 'MET' : 'NOT MET'}), ` +
        `operator peak RSS ${ops.operatorPeakRssMB} MB (target ≤ 200 MB ${(ops.operatorPeakRssMB ?? Infinity) <= 200 ? 'MET' : 'NOT MET'}), ${ops.kubeRequestsPerReconcile} API requests per reconcile`,
    );
  }
  if (peakRss) console.log(`relay peak RSS (VmHWM, max over runs): ${peakRss} MB  target ≤ ${RELAY_RSS_TARGET_MB} MB ${peakRss <= RELAY_RSS_TARGET_MB ? 'MET' : 'NOT MET'} (issue 13's first figure 150 MB: ${peakRss <= 150 ? 'MET' : 'NOT MET'})`);

  const out = flags.out ?? join(REPO, 'bench/results', `${started.toISOString().slice(0, 10)}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${out} (${results.durationSeconds} s)`);
  // The headline is the bench's, never typed: a full comparison run (or --readme) rewrites it.
  const full = ['1k', '50k', 'reuse', 'latency'].every((n) => opts.scenarios.has(n));
  if (!flags['no-readme'] && (full || flags.readme)) {
    const readme = join(REPO, 'bench/README.md');
    writeFileSync(readme, replaceHeadline(readFileSync(readme, 'utf8'), renderHeadline(results as unknown as BenchResults, relative(REPO, out))));
    log(`bench/README.md headline rewritten from ${relative(REPO, out)}`);
  } else log('bench/README.md headline left as is (not a full run; --readme rewrites it from this run)');
}

/** CPU model, host cores and the cgroup quota the bench itself runs under. */
function machineInfo() {
  const c = cpuCount();
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ...(c.quota !== undefined ? { cgroupCpuQuota: c.quota } : {}),
    node: process.version,
    postfix: postfixVersion(),
  };
}

/** The threads scenario's load: reused connections (a cheap load generator) unless --threads-load says 1k. */
function threadsScenario(): ThroughputScenario {
  return flags['threads-load'] === '1k'
    ? { name: 'threads-1k', label: '1 KiB, one msg/conn', size: 1024, reuse: false, messages: opts.n1k }
    : { name: 'threads-reuse', label: '1 KiB, many msg/conn', size: 1024, reuse: true, messages: opts.nreuse };
}

/** The commit measured, and which relay/cli files differed from it (others edit the same tree). */
function gitState(): { head?: string; uncommitted?: string[] } {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'relay', 'cli'], { cwd: REPO, encoding: 'utf8' });
    return { head, uncommitted: status.split('\n').filter(Boolean).map((l) => l.slice(3)) };
  } catch {
    return {};
  }
}

function postfixVersion(): string | undefined {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'postfix'], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => {
    if (!opts.keep) rmSync(base, { recursive: true, force: true });
    else log(`kept ${base}`);
  });
