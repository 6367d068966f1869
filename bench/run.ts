// `npm run bench`: the mailfleet relay against a private Postfix, on loopback, in one run.
// Both relay to a sink; load comes from Postfix's smtp-source (20 sessions) or, for latency, from
// a paced client of our own. Runs are interleaved Postfix, mailfleet, Postfix, mailfleet ... and
// the per-pair ratio mailfleet/Postfix is what to read: absolute numbers drift with the machine.
// Options: `npm run bench -- --help`. Results: bench/results/<date>.json.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { runOperatorScale } from './operator-scale.ts';

const HELP = `Usage: npm run bench -- [options]

Runs Postfix and the mailfleet relay side by side on loopback and prints the ratios.

  --reps N            repetitions of each A/B pair (default 3, env BENCH_REPS)
  --only LIST         scenarios, comma separated: 1k,50k,reuse,latency,otp,profile,profile-otp,operator,
                      large-intake (peak relay RSS with 50 x 25 MiB, 100 x 1 MiB, 20 oversized at once)
                      (default: 1k,50k,reuse,latency,otp)
  --operator          also run operator scale (test cluster; 1000 MailDomains + 100 SendingPools)
  --sessions N        smtp-source sessions (default 20)
  --n1k N             messages, 1 KiB one per connection (default 4000, env BENCH_N1K)
  --n50k N            messages, 50 KiB one per connection (default 2000, env BENCH_N50K)
  --nreuse N          messages, 1 KiB many per connection (default 6000, env BENCH_NREUSE)
  --latency-count N   paced messages per latency run (default 1500) at --latency-rate (default 100/s)
  --otp-bulk N        bulk messages queued before the OTP run (default 100000, env BENCH_OTP_BULK)
  --otp-seconds S     how long OTP messages arrive, at 10/s (default 30)
  --otp-sink-delay MS the slow sink waits this long before each 250 (default 100)
  --profile           also profile the relay (node --cpu-prof) under the 1 KiB one-per-connection load
  --profile-size B    message size for --profile (default 1024; 51200 profiles the 50 KiB load)
  --profile-reuse     --profile with many messages per connection (smtp-source -d)
  --profile-otp       also profile the relay during an OTP-under-load run (bulk backlog)
  --otp-fifo          also run OTP under load with the backlog as 'transactional' (what SMTP intake stores)
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
    'log-level': { type: 'string' },
    'relay-node-options': { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean' },
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
  n1k: num(flags.n1k, 'BENCH_N1K', 4000),
  n50k: num(flags.n50k, 'BENCH_N50K', 2000),
  nreuse: num(flags.nreuse, 'BENCH_NREUSE', 6000),
  latencyCount: num(flags['latency-count'], 'BENCH_LATENCY_COUNT', 1500),
  latencyRate: num(flags['latency-rate'], 'BENCH_LATENCY_RATE', 100),
  otpBulk: num(flags['otp-bulk'], 'BENCH_OTP_BULK', 100_000),
  otpSeconds: num(flags['otp-seconds'], 'BENCH_OTP_SECONDS', 30),
  otpSinkDelayMs: num(flags['otp-sink-delay'], 'BENCH_OTP_SINK_DELAY', 100),
  scenarios: new Set((flags.only ?? process.env.BENCH_ONLY ?? '1k,50k,reuse,latency,otp').split(',').map((s) => s.trim())),
  keep: Boolean(flags.keep),
};
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
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

async function startSystem(system: System, dir: string, sinkPort: number, cpuProfDir?: string): Promise<Started> {
  const port = await freePort();
  if (system === 'postfix') {
    const pf = await startPostfix({ dir, port, relayPort: sinkPort });
    return { port, peakRss: () => undefined, cpuMs: () => undefined, stop: () => pf.stop() };
  }
  const mf = await startMailfleet({ dir, port, sinkPort, tuning, ...(cpuProfDir ? { cpuProfDir } : {}) });
  return { port, pid: mf.pid, peakRss: () => mf.peakRss(), cpuMs: () => mf.cpuMs(), stop: () => mf.stop() };
}

interface ThroughputRun {
  system: System;
  rep: number;
  messages: number;
  /** Messages/s arriving at the sink, from the start of the load. */
  e2e: number;
  /** Messages/s accepted (smtp-source start to exit). */
  accept: number;
  peakRssMB?: number;
  /** Relay CPU time (all threads) per message during the load, start-up excluded. */
  cpuMsPerMsg?: number;
}

interface ThroughputScenario {
  name: string;
  label: string;
  size: number;
  reuse: boolean;
  messages: number;
}

async function throughputRun(sc: ThroughputScenario, system: System, rep: number, cpuProfDir?: string): Promise<ThroughputRun> {
  const dir = runDir(`${sc.name}-${system}-${rep}`);
  const sink = await startPostfixSink(await freePort());
  const sys = await startSystem(system, dir, sink.port, cpuProfDir);
  try {
    const timeoutMs = Math.max(120_000, sc.messages * 50);
    const cpuBefore = sys.cpuMs();
    const src = await runSmtpSource({ port: sys.port, sessions: opts.sessions, messages: sc.messages, size: sc.size, reuse: sc.reuse, from: FROM, to: TO, timeoutMs });
    const doneAt = await sink.reached(sc.messages, timeoutMs);
    const cpuAfter = sys.cpuMs();
    const rss = sys.peakRss();
    const r: ThroughputRun = {
      system,
      rep,
      messages: sc.messages,
      e2e: round(sc.messages / ((doneAt - src.startedAt) / 1000), 1),
      accept: round(sc.messages / ((src.endedAt - src.startedAt) / 1000), 1),
      ...(rss !== undefined ? { peakRssMB: round(rss / 2 ** 20, 1) } : {}),
      ...(cpuBefore !== undefined && cpuAfter !== undefined ? { cpuMsPerMsg: round((cpuAfter - cpuBefore) / sc.messages, 3) } : {}),
    };
    log(`${sc.label} ${system} #${rep}: e2e ${r.e2e} msg/s, accept ${r.accept} msg/s${r.peakRssMB !== undefined ? `, peak RSS ${r.peakRssMB} MB` : ''}${r.cpuMsPerMsg !== undefined ? `, relay CPU ${r.cpuMsPerMsg} ms/msg` : ''}`);
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
}

async function latencyRun(system: System, rep: number): Promise<LatencyRun> {
  const dir = runDir(`latency-${system}-${rep}`);
  const sink = await startTimestampSink(await freePort());
  const sys = await startSystem(system, dir, sink.port);
  try {
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
    };
    if (r.errors) log(`  first error: ${samples.find((s) => s.error)?.error}`);
    log(
      `latency ${system} #${rep}: accept p50/p99 ${r.acceptP50}/${r.acceptP99} ms (commit ${r.commitP50}/${r.commitP99}), ` +
        `250→sink p50/p99 ${r.e2eP50}/${r.e2eP99} ms, errors ${r.errors}, lost ${r.lost}`,
    );
    return r;
  } finally {
    await sys.stop();
    await sink.stop();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

interface Comparison {
  postfix: Summary;
  mailfleet: Summary;
  /** mailfleet/Postfix per pair (rep). */
  ratio: Summary;
}

function compare(pf: number[], mf: number[]): Comparison {
  const ratios = pf.map((p, i) => round((mf[i] ?? Number.NaN) / p, 2));
  return { postfix: summarize(pf), mailfleet: summarize(mf), ratio: summarize(ratios) };
}

const fmt = (s: Summary, unit = '') => `${round(s.median, 1)}${unit} [${round(s.min, 1)}–${round(s.max, 1)}]`;

async function main(): Promise<void> {
  const started = new Date();
  log(`bench: node ${process.version}, reps ${opts.reps}, scenarios ${[...opts.scenarios].join(',')}, tmp ${base}, relay NODE_OPTIONS ${tuning.nodeOptions || "(none)"}`);
  ensurePostfix(log);
  const results: Record<string, unknown> = {
    date: started.toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version, postfix: postfixVersion() },
    options: { ...opts, scenarios: [...opts.scenarios] },
    relayTuning: tuning,
    tree: gitState(),
    loadAverage: (await import('node:os')).loadavg().map((x) => round(x, 2)),
  };
  const throughput: Record<string, { runs: ThroughputRun[]; e2e: Comparison; accept: Comparison; target: number; met: boolean }> = {};
  const scenarios: (ThroughputScenario & { target: number })[] = [
    { name: '1k', label: '1 KiB, one msg/conn', size: 1024, reuse: false, messages: opts.n1k, target: 2 },
    { name: '50k', label: '50 KiB, one msg/conn', size: 50 * 1024, reuse: false, messages: opts.n50k, target: 1.5 },
    { name: 'reuse', label: '1 KiB, many msg/conn', size: 1024, reuse: true, messages: opts.nreuse, target: 3 },
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
    throughput[sc.name] = { runs, e2e, accept: compare(pf.map((r) => r.accept), mf.map((r) => r.accept)), target: sc.target, met: e2e.ratio.median >= sc.target };
  }
  results.throughput = throughput;

  let latency: { runs: LatencyRun[]; e2eP99: Comparison; e2eP50: Comparison; acceptP99: Comparison; acceptP50: Comparison; met: boolean } | undefined;
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
    latency = { runs, e2eP99: c('e2eP99'), e2eP50: c('e2eP50'), acceptP99: c('acceptP99'), acceptP50: c('acceptP50'), met: false };
    latency.met = latency.e2eP99.mailfleet.median <= latency.e2eP99.postfix.median;
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
    const cpu = t.runs.flatMap((r) => (r.cpuMsPerMsg !== undefined ? [r.cpuMsPerMsg] : []));
    if (cpu.length > 0) {
      const c = summarize(cpu);
      console.log(`${''.padEnd(22)} relay CPU ms/msg (all threads) ${round(c.median, 2)} [${round(c.min, 2)}–${round(c.max, 2)}]`);
    }
  }
  if (latency) {
    console.log(
      `latency @${opts.latencyRate}/s, 250→sink   p50 Postfix ${fmt(latency.e2eP50.postfix, ' ms')} mailfleet ${fmt(latency.e2eP50.mailfleet, ' ms')}; ` +
        `p99 Postfix ${fmt(latency.e2eP99.postfix, ' ms')} mailfleet ${fmt(latency.e2eP99.mailfleet, ' ms')}  target p99 ≤ Postfix ${latency.met ? 'MET' : 'NOT MET'}`,
    );
    console.log(
      `latency @${opts.latencyRate}/s, connect→250 p50 Postfix ${fmt(latency.acceptP50.postfix, ' ms')} mailfleet ${fmt(latency.acceptP50.mailfleet, ' ms')}; ` +
        `p99 Postfix ${fmt(latency.acceptP99.postfix, ' ms')} mailfleet ${fmt(latency.acceptP99.mailfleet, ' ms')}`,
    );
  }
  for (const o of otp ?? []) {
    console.log(
      `OTP under load (${o.bulkQueued} queued as '${o.backlogClass}', sink +${o.sinkDelayMs} ms/msg): OTP (${o.otpClassHonoured === undefined ? 'lane unknown' : o.otpClassHonoured ? 'otp lane' : 'as transactional'}) 250→sink p50 ${o.p50} ms p99 ${o.p99} ms ` +
        `(${o.delivered}/${o.sent} delivered in window) target p99 ≤ 50 ms ${o.p99 <= 50 && o.delivered === o.sent ? 'MET' : 'NOT MET'}; bulk drained ${o.bulkDeliveredPerSec} msg/s`,
    );
  }
  const ops = results.operatorScale as Awaited<ReturnType<typeof runOperatorScale>> | undefined;
  if (ops && !('skipped' in ops)) {
    console.log(
      `operator scale (${ops.pools} pools + ${ops.domains} domains): ${ops.doneSeconds !== undefined ? `${ops.doneSeconds} s` : `not done in 300 s`} (target ≤ 30 s ${ops.doneSeconds !== undefined && ops.doneSeconds <= 30 ? 'MET' : 'NOT MET'}), ` +
        `operator peak RSS ${ops.operatorPeakRssMB} MB (target ≤ 200 MB ${(ops.operatorPeakRssMB ?? Infinity) <= 200 ? 'MET' : 'NOT MET'}), ${ops.kubeRequestsPerReconcile} API requests per reconcile`,
    );
  }
  if (peakRss) console.log(`relay peak RSS (VmHWM, max over runs): ${peakRss} MB  target ≤ 150 MB ${peakRss <= 150 ? 'MET' : 'NOT MET'}`);

  const out = flags.out ?? join(REPO, 'bench/results', `${started.toISOString().slice(0, 10)}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${out} (${results.durationSeconds} s)`);
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
