// The mailfleet relay as a child process (`node cli/mailfleet.ts relay --config FILE`), so its
// peak RSS can be read from /proc and it can be profiled with --cpu-prof.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { RelayConfigInput } from '../../relay/config/schema.ts';
import { LOOPBACK, cpuMs, freePort, onInterrupt, peakRssBytes, waitForSmtp } from './util.ts';
import { joinGroupShell, type CpuGroup, type CpuQuotaGroup } from './cgroup.ts';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const ACCEPT_DOMAIN = 'bench.test';

export interface RelayTuning {
  logLevel: string;
  /** NODE_OPTIONS of the relay process ('' = none, as the relay image runs today). */
  nodeOptions: string;
  maxConnectionsPerHost: number;
  maxMessagesPerConnection: number;
  concurrency: number;
  /** intake.threads in the relay config (relay/intake/threads.ts); absent = the relay's default. */
  intakeThreads?: number | 'auto';
}

export interface MailfleetInstance {
  port: number;
  pid: number;
  dir: string;
  /** VmHWM of the relay process so far, bytes. */
  peakRss(): number | undefined;
  /** CPU time the relay process used so far (all threads), ms. */
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

/** The relay image's NODE_OPTIONS (Dockerfile ENV): the bench runs the relay as deployed. */
export function imageNodeOptions(): string {
  const m = /^ENV NODE_OPTIONS=(.*)$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  return m?.[1]?.trim().replace(/^"(.*)"$/, '$1') ?? '';
}

/** The image's MALLOC_ARENA_MAX (Dockerfile ENV), unless this environment sets one. */
export function imageMallocArenaMax(): string | undefined {
  if (process.env.MALLOC_ARENA_MAX !== undefined) return process.env.MALLOC_ARENA_MAX;
  return /^ENV MALLOC_ARENA_MAX=(\d+)\s*$/m.exec(readFileSync(join(REPO, 'Dockerfile'), 'utf8'))?.[1];
}

/**
 * The image ships a warm compile cache (NODE_COMPILE_CACHE); the CLI keeps one in the temp dir.
 * Loading the relay once before the runs warms it, so no run pays for (or keeps the memory of)
 * the TypeScript stripper and the first run is like the others.
 */
export function warmCompileCache(): void {
  spawnSync(process.execPath, [join(REPO, 'cli/mailfleet.ts'), 'relay', '--help'], { cwd: REPO, stdio: 'ignore' });
  // The session threads' entry too (the image warms it the same way): it is compiled, then
  // refuses to run outside a worker. Otherwise the first relay run with session threads loads the
  // TypeScript stripper in each thread (~15 MB of RSS apiece) and its RSS is not the image's.
  // And the getLogger a session thread gives smtp-server (relay/intake/smtp-server-logger.ts), which
  // only session threads load.
  const entry = pathToFileURL(join(REPO, 'relay/intake/session-thread.ts')).href;
  const stub = pathToFileURL(join(REPO, 'relay/intake/smtp-server-logger.ts')).href;
  spawnSync(process.execPath, ['--input-type=module', '-e', `import { enableCompileCache } from 'node:module'; enableCompileCache(); await import(${JSON.stringify(stub)}); await import(${JSON.stringify(entry)}).catch(() => {});`], { cwd: REPO, stdio: 'ignore' });
}

export function relayConfig(opts: { dir: string; port: number; httpPort: number; sinkPort: number; tuning: RelayTuning; credentialsFile?: string }): RelayConfigInput {
  return {
    hostname: 'mailfleet-bench.test',
    dataDir: join(opts.dir, 'data'),
    log: { level: opts.tuning.logLevel as 'info' },
    http: { address: LOOPBACK, port: opts.httpPort },
    // smtp-source does no AUTH: the bench domain is accepted without it, like an MX domain, on a
    // listener without greeting delay (the submission default).
    // With a credentials file (the OTP run) AUTH PLAIN is offered in clear on loopback, so the
    // OTP client can authenticate and have its X-Mailfleet-Class honoured.
    listeners: [{ name: 'bench', role: 'submission', address: LOOPBACK, port: opts.port, tls: 'none', greetingDelayMs: 0, maxClients: 2000, allowPlaintextAuthOnLoopback: opts.credentialsFile !== undefined }],
    ...(opts.credentialsFile ? { auth: { credentialsFile: opts.credentialsFile } } : {}),
    acceptDomains: [ACCEPT_DOMAIN],
    ...(opts.tuning.intakeThreads !== undefined ? { intake: { workerThreads: opts.tuning.intakeThreads } } : {}),
    // A/B of the commit delay in one tree (issue 13): BENCH_COMMIT_DELAY_MS overrides queue.commitDelayMs.
    ...(process.env.BENCH_COMMIT_DELAY_MS !== undefined ? { queue: { commitDelayMs: Number(process.env.BENCH_COMMIT_DELAY_MS) } } : {}),
    delivery: {
      routes: [{ domains: ['*'], host: LOOPBACK, port: opts.sinkPort }],
      maxConnectionsPerHost: opts.tuning.maxConnectionsPerHost,
      maxMessagesPerConnection: opts.tuning.maxMessagesPerConnection,
      concurrency: opts.tuning.concurrency,
    },
    // The scheduler shapes every unrecognised destination with KumoMTA's defaults (100 msg/s,
    // 100 new connections/min, 10 connections). Postfix applies no such limits to its relayhost,
    // so the bench lifts the rates and keeps Postfix's 20 connections; otpShare stays the default.
    shaping: {
      providers: [
        {
          name: 'default',
          maxConnections: opts.tuning.maxConnectionsPerHost,
          messagesPerConnection: opts.tuning.maxMessagesPerConnection,
          newConnectionsPerMinute: 100_000,
          messagesPerSecond: 100_000,
        },
      ],
    },
  };
}

/**
 * The relay's stdout and stderr, in a directory of their own: the relay watches the directory of its
 * config file (a ConfigMap's symlink swap), and a log beside it woke the relay with an inotify
 * event on every write (~0.4 % of its CPU per message), which a relay in a pod never sees.
 */
export function relayLogPath(dir: string): string {
  return join(dir, 'log', 'relay.log');
}

export async function startMailfleet(opts: {
  dir: string;
  port: number;
  sinkPort: number;
  tuning: RelayTuning;
  /** Directory for a --cpu-prof profile; no profiling when absent. */
  cpuProfDir?: string;
  credentialsFile?: string;
  /** Accounting group (bench/lib/cgroup.ts) the relay process runs in. */
  cpuGroup?: CpuGroup;
  /** CPU-quota group the relay process runs in too (`--relay-cpus`: a pod's CPU limit). */
  quotaGroup?: CpuQuotaGroup;
  /** Changes to the relay config before it is written (the backlog bench's warm-up caps). */
  configure?: (config: RelayConfigInput) => RelayConfigInput;
  /** Written here instead of <dir>/relay.yaml (two runs on one data dir). */
  configFile?: string;
}): Promise<MailfleetInstance> {
  mkdirSync(opts.dir, { recursive: true });
  const httpPort = await freePort();
  const configFile = opts.configFile ?? join(opts.dir, 'relay.yaml');
  const config = relayConfig({ dir: opts.dir, port: opts.port, httpPort, sinkPort: opts.sinkPort, tuning: opts.tuning, ...(opts.credentialsFile ? { credentialsFile: opts.credentialsFile } : {}) });
  writeFileSync(configFile, stringify(opts.configure ? opts.configure(config) : config));
  mkdirSync(dirname(relayLogPath(opts.dir)), { recursive: true });
  const logFd = openSync(relayLogPath(opts.dir), 'a');
  const nodeArgs = opts.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProfDir] : [];
  const argv = [process.execPath, ...nodeArgs, join(REPO, 'cli/mailfleet.ts'), 'relay', '--config', configFile];
  // In a group: a shell joins it and execs node (same pid, so /proc figures still read the relay).
  const groups = [opts.cpuGroup, opts.quotaGroup].filter((g) => g !== undefined);
  const [cmd, ...args] = groups.length ? ['sh', '-c', `${groups.map(joinGroupShell).join('')}exec "$0" "$@"`, ...argv] : argv;
  // The relay as the image runs it: its heap flags (tuning.nodeOptions) and malloc arenas.
  const arenas = imageMallocArenaMax();
  const child = spawn(cmd!, args, {
    cwd: REPO,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, NODE_ENV: 'production', NODE_OPTIONS: opts.tuning.nodeOptions, ...(arenas !== undefined ? { MALLOC_ARENA_MAX: arenas } : {}) },
  });
  closeSync(logFd);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) =>
    child.once('exit', (code) => {
      exitCode = code;
      r();
    }),
  );
  try {
    await Promise.race([
      waitForSmtp(opts.port, 30_000),
      exited.then(() => {
        throw new Error(`relay exited with ${exitCode} before listening; see ${relayLogPath(opts.dir)}`);
      }),
    ]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const unregister = onInterrupt(() => void child.kill('SIGKILL'));
  return {
    port: opts.port,
    pid: child.pid!,
    dir: opts.dir,
    peakRss: () => peakRssBytes(child.pid!),
    cpuMs: () => cpuMs(child.pid!),
    async stop() {
      unregister();
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
