// SMTP sessions on worker threads (issue 13: every core). The main thread keeps the queue, the
// delivery engine, the HTTP side and everything shared; session threads run the submission
// listeners' smtp-server instances on one port each (SO_REUSEPORT: the kernel spreads incoming
// connections between them) and ask the main thread for what they cannot decide alone:
// - the commit: a session thread sends the message to the main thread, which enqueues it (the
//   one committer, with its fsync) and answers; the session replies 250 only on that answer, so
//   "250 means fsynced" holds as on one thread, and a kill -9 loses nothing that was answered;
// - the AUTH failure throttle and the intake rate buckets (pool-wide state), per call;
// - the intake memory budget is shared memory (relay/intake/memory-budget.ts), no message;
// - metrics are counted on the main thread's registry, `accepted` events are handed to
//   relay/feedback there, and log lines formatted on a thread are written by the main thread's
//   destination. All of it, and the calls, go in one message per reply written or per tick
//   (relay/intake/session-thread.ts), and the answers come back once per tick: each message
//   between threads costs CPU on both sides, and three per mail made a session thread cost more
//   CPU per message than it saved (issue 13).
// MX-role listeners (the bounce consumer holds the return-path keys) stay on the main thread.
// Worker processes were not built: a process would need the queue over IPC as well, and the
// threads share one address space (one compile cache, one RSS figure for the pod).
import { Worker } from 'node:worker_threads';
import { getCompileCacheDir } from 'node:module';
import { pino } from 'pino';
import type { ListenerConfig, RelayConfig } from '../config/schema.ts';
import type { CpuCount } from '../cpu-quota.ts';
import type { NewMessage } from '../queue/types.ts';
import type { SpooledBody } from '../queue/body-parts.ts';
import { StoreError } from '../queue/types.ts';
import { StartupError } from '../startup-error.ts';
import type { IntakeDeps, RunningListener, localIntakeShared } from './listeners.ts';
import type { TlsMaterial } from '../tls-files.ts';

/**
 * 'auto' without a CPU quota counts the host's cores; on a large node an unlimited container would
 * start dozens of threads (~20 MB each) against its memory limit. The operator renders a number
 * for pools without a CPU limit (operator/render/relay-config.ts sessionThreads).
 */
export const AUTO_THREADS_WITHOUT_QUOTA = 3;

/**
 * intake.workerThreads resolved: 'auto' is one thread per whole CPU the process may use, less the
 * main thread's. A fractional quota counts down (1.5 CPUs: none): measured under a 1.5-CPU quota a
 * session thread took the same mail for 7–21 % more CPU per message, under 1 CPU 1–10 % less mail,
 * under 2 CPUs 28 % more (bench/README.md "Session threads by default").
 */
export function workerThreadCount(setting: number | 'auto', cpus: CpuCount): number {
  if (setting !== 'auto') return setting;
  const whole = cpus.source === 'cgroup' && cpus.quota !== undefined ? Math.floor(cpus.quota + 1e-9) : cpus.cpus;
  const n = Math.max(0, whole - 1);
  return cpus.source === 'cgroup' ? n : Math.min(n, AUTO_THREADS_WITHOUT_QUOTA);
}

/** Listeners whose sessions may run on a session thread. */
export const onSessionThreads = (l: ListenerConfig) => l.role === 'submission';

/** What a session thread is started with (workerData). */
export interface SessionThreadInit {
  index: number;
  config: RelayConfig;
  /** Listener name → port to bind with SO_REUSEPORT (0 on the first thread: the kernel picks). */
  ports: Record<string, number>;
  /** The intake memory budget's shared count. */
  budget: SharedArrayBuffer;
  /** Connections per listener (index in config.listeners) over all threads, for maxClients. */
  clients: SharedArrayBuffer;
  tls?: TlsMaterial | undefined;
}

export type MetricOp = [name: string, labels: Record<string, string> | undefined, value: number];

/** A call to the main thread; id 0 wants no answer. */
export interface Call {
  id: number;
  m: 'enqueue' | 'admit' | 'blockedFor' | 'verify' | 'recordSuccess' | 'recordFailure';
  a: unknown;
}

/** An enqueue call's argument: the message (its body moved across, not cloned) and whether an `accepted` event will name a part of that body (bodyAt). */
export type EnqueueArg = [message: Omit<NewMessage, 'body'> & { body: Uint8Array | SpooledBody }, keep: boolean];

/** An `accepted` event from a session thread: its body, or where it lies in the body enqueued under queueId. */
export type AcceptedArg = Omit<Parameters<NonNullable<IntakeDeps['feedback']>['accepted']>[0], 'body'> & { body: Uint8Array | undefined; bodyAt?: [offset: number, length: number] };

export type ToMain =
  | { t: 'ready'; ports: Record<string, number> }
  /**
   * Counters to add, log lines to write, `accepted` events, then calls (relay/intake/session-thread.ts
   * sends one before each reply it writes, else at the end of its tick).
   */
  | { t: 'batch'; ops: MetricOp[]; text: string; accepted: AcceptedArg[]; calls: Call[] }
  | { t: 'closed' }
  /**
   * The thread could not start in the way the CLI tells the user (a port taken, an address not on
   * this machine): an Error thrown in a worker reaches this thread without its class or exit code.
   */
  | { t: 'startup-error'; message: string; exitCode: number };

export interface Ret {
  id: number;
  v?: unknown;
  e?: { message: string; storeCode?: string };
}

export type ToThread =
  /** Answers to calls, those of one main-thread tick together (a group commit answers many enqueues at once). */
  | { t: 'rets'; r: Ret[] }
  | { t: 'config'; config: RelayConfig }
  | { t: 'tls'; material: TlsMaterial }
  | { t: 'close' };

/** A Uint8Array that crossed a thread (moved or cloned) as the Buffer the queue and feedback take. */
export const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export interface SessionThreads {
  /** One entry per listener served on the threads (closing any closes them all). */
  listeners: RunningListener[];
  /** The live part of a new config (draining, acceptDomains ...) to every thread. */
  reconfigure(config: RelayConfig): void;
}

/**
 * The code a session thread starts with. A thread does not inherit the process's compile cache
 * (cli/mailfleet.ts enables it): it would load the TypeScript stripper again (~15 MB per thread),
 * so the bootstrap enables the same cache (NODE_COMPILE_CACHE, or the same default directory)
 * before loading the session code. It also gives smtp-server a getLogger of its own in place of
 * nodemailer/lib/shared (relay/intake/smtp-server-logger.ts says why). `then` runs after the
 * import has started (a test reads what the thread loaded).
 */
export function sessionThreadBootstrap(then = ''): string {
  const stub = new URL('./smtp-server-logger.ts', import.meta.url).href;
  return [
    "const m = require('node:module');",
    getCompileCacheDir() !== undefined ? 'm.enableCompileCache();' : '',
    'm.registerHooks({ resolve(specifier, context, next) {',
    `  if (specifier === 'nodemailer/lib/shared' && context.parentURL?.includes('/smtp-server/')) return { url: ${JSON.stringify(stub)}, shortCircuit: true };`,
    '  return next(specifier, context);',
    '} });',
    `import(${JSON.stringify(new URL('./session-thread.ts', import.meta.url).href)});`,
    then,
  ].join('\n');
}

export async function startSessionThreads(opts: {
  count: number;
  deps: IntakeDeps;
  shared: ReturnType<typeof localIntakeShared>;
}): Promise<SessionThreads> {
  const { deps, shared, count } = opts;
  const { config, logger } = deps;
  const served = config.listeners.filter(onSessionThreads);
  const ports: Record<string, number> = Object.fromEntries(served.map((l) => [l.name, l.port]));
  const threads = new Set<Worker>();
  const clients = new SharedArrayBuffer(4 * config.listeners.length);
  let closing: Promise<void> | undefined;

  // Answers go back once per tick and thread: the commit answers its whole batch in one tick.
  const answers = new Map<Worker, Ret[]>();
  const sendAnswers = () => {
    for (const [w, r] of answers) w.postMessage({ t: 'rets', r } satisfies ToThread);
    answers.clear();
  };
  const reply = (w: Worker, r: Ret) => {
    const list = answers.get(w);
    if (list) return void list.push(r);
    if (answers.size === 0) setImmediate(sendAnswers);
    answers.set(w, [r]);
  };
  const answer = (w: Worker, id: number, work: () => unknown) => {
    Promise.resolve()
      .then(work)
      .then(
        (v) => reply(w, { id, v }),
        (err: Error) => reply(w, { id, e: { message: err.message, ...(err instanceof StoreError ? { storeCode: err.sqliteCode } : {}) } }),
      );
  };
  // Bodies a thread's `accepted` event will name a part of (bodyAt), by queue id, until it comes
  // (in the batch the thread sends before its 250): the body crosses once, not twice.
  const enqueued = new Map<Worker, Map<string, Buffer>>();

  const onCall = (w: Worker, c: Call) => {
    switch (c.m) {
      case 'enqueue': {
        const [m, keep] = c.a as EnqueueArg;
        return answer(w, c.id, async () => {
          // A spooled body's descriptor is the process's: the commit reads it from this thread.
          const inMemory = asBuffer(m.body instanceof Uint8Array ? m.body : m.body.head);
          const id = await deps.store.enqueue({ ...m, body: m.body instanceof Uint8Array ? inMemory : { ...m.body, head: inMemory } });
          if (keep) enqueued.get(w)?.set(id, inMemory);
          deps.onQueued?.(id);
          return id;
        });
      }
      case 'admit':
        return answer(w, c.id, () => shared.limiter.admit(c.a as string | undefined));
      case 'verify': {
        const [user, password] = c.a as [string, string];
        return answer(w, c.id, async () => {
          const ok = await deps.credentials.verify(user, password);
          return { ok, ...(ok ? { cls: deps.credentials.classOf(user) } : {}) };
        });
      }
      case 'blockedFor':
        return answer(w, c.id, () => shared.throttle.blockedFor(c.a as string));
      case 'recordSuccess':
        return shared.throttle.recordSuccess(c.a as string);
      case 'recordFailure':
        return shared.throttle.recordFailure(c.a as string);
    }
  };

  const onMessage = (w: Worker, msg: ToMain) => {
    if (msg.t !== 'batch') return;
    const bodies = enqueued.get(w);
    for (const a of msg.accepted) {
      try {
        let body: Buffer | undefined;
        if (a.bodyAt) {
          body = bodies?.get(a.queueId)?.subarray(a.bodyAt[0], a.bodyAt[0] + a.bodyAt[1]);
          bodies?.delete(a.queueId);
        } else if (a.body) body = asBuffer(a.body);
        if (!body) throw new Error(`the body of ${a.queueId} is not known here`);
        deps.feedback?.accepted({ ...a, body });
      } catch (err) {
        logger.error({ err }, 'accepted event not recorded');
      }
    }
    for (const [name, labels, value] of msg.ops) {
      const metric = (deps.metrics as unknown as Record<string, { inc(l: Record<string, string>, v: number): void; inc(v: number): void }>)[name];
      if (labels) metric?.inc(labels, value);
      else metric?.inc(value);
    }
    // The main thread's own log destination (stdout, or a test's stream): whole lines.
    if (msg.text) (deps.logger as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym]?.write(msg.text);
    for (const c of msg.calls) onCall(w, c);
  };

  const start = (index: number): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const init: SessionThreadInit = { index, config, ports, budget: shared.budget.shared, clients, tls: deps.tls?.current };
      const w = new Worker(sessionThreadBootstrap(), { eval: true, workerData: init, name: `smtp-sessions-${index}` });
      enqueued.set(w, new Map());
      let ready = false;
      w.on('message', (msg: ToMain) => {
        if (msg.t === 'ready') {
          ready = true;
          threads.add(w);
          Object.assign(ports, msg.ports);
          return resolve(w);
        }
        if (msg.t === 'startup-error') {
          // Listeners it did bind go with it.
          void w.terminate();
          return reject(new StartupError(msg.message, msg.exitCode));
        }
        onMessage(w, msg);
      });
      w.once('error', (err) => {
        if (!ready) reject(err);
        else logger.error({ err: err.message, thread: index }, 'SMTP session thread failed');
      });
      w.once('exit', (code) => {
        threads.delete(w);
        enqueued.delete(w);
        answers.delete(w);
        if (!ready) return reject(new Error(`SMTP session thread ${index} exited (${code}) before listening`));
        // Its connections are gone (clients retry: nothing they were answered 250 for is lost);
        // the port stays served by the others, and a new thread takes this one's place.
        if (!closing) {
          logger.error({ thread: index, code }, 'SMTP session thread exited; starting another');
          start(index).catch((err: Error) => logger.error({ err: err.message, thread: index }, 'SMTP session thread could not be restarted'));
        }
      });
    });

  // The first thread binds (port 0 included) and says which ports it got; the others join them.
  const first = await start(0);
  try {
    await Promise.all(Array.from({ length: count - 1 }, (_, i) => start(i + 1)));
  } catch (err) {
    await first.terminate();
    for (const w of threads) await w.terminate();
    throw err;
  }
  deps.tls?.on('change', (material: TlsMaterial) => {
    for (const w of threads) w.postMessage({ t: 'tls', material } satisfies ToThread);
  });

  // Each thread closes its servers (open sessions finish, their commits are still answered here)
  // and says so; only then is it terminated.
  const closeAll = () =>
    (closing ??= Promise.all(
      [...threads].map(
        (w) =>
          new Promise<void>((resolve) => {
            w.on('message', (msg: ToMain) => {
              if (msg.t === 'closed') void w.terminate().then(() => resolve());
            });
            w.once('exit', () => resolve());
            w.postMessage({ t: 'close' } satisfies ToThread);
          }),
      ),
    ).then(() => undefined));

  return {
    listeners: served.map((l) => ({ name: l.name, address: l.address, port: ports[l.name]!, close: closeAll })),
    reconfigure(next) {
      for (const w of threads) w.postMessage({ t: 'config', config: next } satisfies ToThread);
    },
  };
}
