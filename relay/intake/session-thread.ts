// One SMTP session thread (relay/intake/threads.ts says why and what crosses to the main
// thread). It runs the same listener code as the main thread (relay/intake/listeners.ts) with
// proxies for what lives there: the queue (enqueue answers after the main thread's fsync), the
// throttle and rate buckets, metrics and the `accepted` events.
import { parentPort, workerData } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { applyLive } from '../config/live.ts';
import { childLogger, createLogger } from '../log.ts';
import { StoreError } from '../queue/types.ts';
import { StartupError } from '../startup-error.ts';
import type { QueueStore } from '../queue/store.ts';
import type { RelayMetrics } from '../metrics.ts';
import type { TlsFiles } from '../tls-files.ts';
import type { CredentialStore } from './credentials.ts';
import type { IntakeVerdict } from './intake-rate.ts';
import { IntakeMemoryBudget } from './memory-budget.ts';
import { closeListeners, startListeners, type IntakeDeps, type IntakeShared } from './listeners.ts';
import type { AcceptedArg, Call, EnqueueArg, MetricOp, SessionThreadInit, ToMain, ToThread } from './threads.ts';

// Imported anywhere else (the image's build imports every module once to fill its compile cache,
// so that a session thread never loads the TypeScript stripper: ~15 MB per thread), it stops here.
if (!parentPort || !workerData) throw new Error('relay/intake/session-thread.ts is the entry of an SMTP session thread (relay/intake/threads.ts); it runs nowhere else');
const port = parentPort;
const init = workerData as SessionThreadInit;
const { config } = init;
const send = (msg: ToMain) => port.postMessage(msg);

// Counters, log lines, `accepted` events and calls to the main thread go in one batch: before
// any reply is written (so a client that reads /metrics or the log after a reply sees what led to
// it), else at the end of the tick. A message between threads costs CPU on both sides (the clone,
// the wake-up, the dispatch; issue 13 measured 3 per mail when each went alone): the commits of
// the sessions whose DATA ended in one tick ride together, and the `accepted` event of a message
// goes in the batch written before its 250. Log lines are formatted here and written by the main
// thread's destination: one writer of stdout (no lines torn between threads), and an injected
// logger sees them too.
let ops = new Map<string, MetricOp>();
let lines = '';
let accepted: AcceptedArg[] = [];
let calls: Call[] = [];
let transfer: ArrayBuffer[] = [];
let scheduled = false;
function flush(): void {
  scheduled = false;
  if (ops.size === 0 && lines === '' && accepted.length === 0 && calls.length === 0) return;
  const batch = { t: 'batch', ops: [...ops.values()], text: lines, accepted, calls } satisfies ToMain;
  try {
    port.postMessage(batch, transfer);
  } catch {
    // A buffer that cannot move (Node's shared pool, were one to get here) is copied instead:
    // the batch holds commits sessions are waiting for.
    port.postMessage(batch);
  }
  ops = new Map();
  lines = '';
  accepted = [];
  calls = [];
  transfer = [];
}
const later = () => {
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
};
const connectionProto = SMTPConnection.prototype as unknown as { send(...args: unknown[]): unknown };
const writeReply = connectionProto.send;
connectionProto.send = function send(this: unknown, ...args: unknown[]) {
  flush();
  return writeReply.apply(this, args);
};

const logger = childLogger(createLogger(config.log.level, 'relay', { write: (line: string) => ((lines += line), later()) }), { intakeThread: String(init.index) });

// Calls answered by the main thread (in the next batch; the answers come back together too).
let seq = 0;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
function call<T>(m: Call['m'], a: unknown, moved: ArrayBuffer[] = []): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const id = ++seq;
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    calls.push({ id, m, a });
    if (moved.length > 0) transfer.push(...moved);
    later();
  });
}
/** A call without an answer (the AUTH throttle's record of a success or failure). */
function post(m: 'recordSuccess' | 'recordFailure', a: unknown): void {
  calls.push({ id: 0, m, a });
  later();
}

// Counters are summed here (the main thread's registry is the one scraped).
function count(name: string, labels: Record<string, string> | number | undefined, value?: number): void {
  const l = typeof labels === 'object' ? labels : undefined;
  const v = typeof labels === 'number' ? labels : (value ?? 1);
  const key = `${name}\0${l ? JSON.stringify(l) : ''}`;
  const op = ops.get(key);
  if (op) op[2] += v;
  else ops.set(key, [name, l, v]);
  later();
}
const metrics = new Proxy({} as RelayMetrics, {
  get: (_, name: string) => ({ inc: (l?: Record<string, string> | number, v?: number) => count(name, l, v), set: () => {}, observe: () => {} }),
});

// A body goes to the main thread by transfer, never by structured clone: a clone of a view copies
// the whole ArrayBuffer under it (Node's 8 KiB pool for a 1 KiB message, twice per message with
// its `accepted` event: the main thread's external memory and GC grew by that), and a large
// one held it three times at once (this thread's, the serialized and the main thread's copy; 50 x
// 25 MiB at once peaked at 563 MB on 2 threads). A large body of its own moves as it is and its
// header stays here for the `accepted` event; anything else moves as an exact copy, and its
// `accepted` event names where its part lies in it (bodyAt) instead of crossing again.
const TRANSFER_ABOVE = 64 * 1024;
const headsSent = new Map<string, Uint8Array>();
const bodiesSent = new Map<string, Uint8Array>();
const store = {
  async enqueue(m: Parameters<QueueStore['enqueue']>[0]): Promise<string> {
    const b = m.body;
    // Only a buffer of its own (not a slice of Node's shared pool or of a larger one).
    // A spooled body (relay/queue/body-parts.ts) is its header section and the spool file's
    // descriptor (the process's): only the header section crosses.
    const spooled = !(b instanceof Uint8Array);
    const inMemory = spooled ? b.head : b;
    const own = !spooled && b.length > TRANSFER_ABOVE && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && m.id !== undefined;
    if (own) headsSent.set(m.id!, headerCopy(b));
    else if (m.id !== undefined) bodiesSent.set(m.id, inMemory);
    const moved = own ? b : new Uint8Array(inMemory);
    const body = spooled ? { ...b, head: moved } : moved;
    try {
      return await call<string>('enqueue', [{ ...m, body }, !own && m.id !== undefined] satisfies EnqueueArg, [moved.buffer as ArrayBuffer]);
    } catch (err) {
      if (m.id !== undefined) {
        headsSent.delete(m.id);
        bodiesSent.delete(m.id);
      }
      const e = err as Error & { storeCode?: string };
      throw e.storeCode !== undefined ? new StoreError(e.message, e.storeCode) : e;
    }
  },
} as unknown as QueueStore;

/** The `accepted` event as it crosses: what the main thread does not have yet of its body. */
function acceptedArg(a: Parameters<NonNullable<IntakeDeps['feedback']>['accepted']>[0]): AcceptedArg {
  const head = headsSent.get(a.queueId);
  const sent = bodiesSent.get(a.queueId);
  headsSent.delete(a.queueId);
  bodiesSent.delete(a.queueId);
  const { body } = a;
  if (!head && sent && body.buffer === sent.buffer && body.byteOffset >= sent.byteOffset && body.byteOffset + body.byteLength <= sent.byteOffset + sent.byteLength) {
    return { ...a, body: undefined, bodyAt: [body.byteOffset - sent.byteOffset, body.byteLength] };
  }
  // The main thread reads only the header of a large one (the author's domain, relay/feedback).
  const copy = head ?? (body.length > HEADER_ONLY_ABOVE ? headerCopy(body) : new Uint8Array(body));
  transfer.push(copy.buffer as ArrayBuffer);
  return { ...a, body: copy };
}

const rate = config.intakeRate;
const unlimited = !rate.pool && !rate.perCredential && rate.users.length === 0;
const OPEN: IntakeVerdict = { ok: true, notBefore: undefined };
const shared: IntakeShared = {
  throttle: {
    blockedFor: (address) => call<number>('blockedFor', address),
    recordSuccess: (address) => post('recordSuccess', address),
    recordFailure: (address) => post('recordFailure', address),
  },
  // No intake rate configured (the common case): nothing to ask per message.
  limiter: { admit: (user) => (unlimited ? OPEN : call<IntakeVerdict>('admit', user)) },
  budget: new IntakeMemoryBudget(config.limits.intakeMemoryBytes, init.budget),
};

// The certificate: the main thread watches the files and sends each new pair.
const tls = init.tls ? Object.assign(new EventEmitter(), { current: init.tls }) : undefined;

// AUTH is verified by the main thread's credential store (one file watcher, and scrypt runs on
// libuv's pool either way); a session's default class is what the file said when it authenticated.
const classes = new Map<string, ReturnType<CredentialStore['classOf']>>();
const credentials = {
  async verify(username: string, password: string): Promise<boolean> {
    const r = await call<{ ok: boolean; cls?: ReturnType<CredentialStore['classOf']> }>('verify', [username, password]);
    if (r.ok) classes.set(username, r.cls);
    return r.ok;
  },
  classOf: (username: string) => classes.get(username),
} as unknown as CredentialStore;

const HEADER_ONLY_ABOVE = 64 * 1024;
/**
 * The header block of a message (up to and with the empty line) in an ArrayBuffer of its own, to
 * be moved to the main thread: Buffer.from would put a short one in Node's shared pool, which
 * cannot be transferred (DataCloneError) and is cloned whole (64 KiB).
 */
function headerCopy(body: Buffer): Uint8Array {
  const end = body.indexOf('\r\n\r\n');
  return new Uint8Array(body.subarray(0, end < 0 ? Math.min(body.length, HEADER_ONLY_ABOVE) : end + 4));
}

async function main(): Promise<void> {
  const deps: IntakeDeps = {
    config, store, credentials, logger, metrics,
    ...(tls ? { tls: tls as unknown as TlsFiles } : {}),
    feedback: {
      accepted: (a) => {
        accepted.push(acceptedArg(a));
        later();
      },
      recordFeedback: () => undefined,
    },
    bind: { port: (l) => init.ports[l.name] ?? l.port, reusePort: true, clients: new Int32Array(init.clients) },
  };
  const listeners = await startListeners(deps, shared, (l) => init.ports[l.name] !== undefined);
  port.on('message', (msg: ToThread) => {
    switch (msg.t) {
      case 'rets':
        for (const r of msg.r) {
          const p = pending.get(r.id);
          pending.delete(r.id);
          if (r.e) p?.reject(Object.assign(new Error(r.e.message), r.e.storeCode !== undefined ? { storeCode: r.e.storeCode } : {}));
          else p?.resolve(r.v);
        }
        return;
      case 'config':
        applyLive(config, msg.config);
        return;
      case 'tls':
        if (tls) {
          tls.current = msg.material;
          tls.emit('change', msg.material);
        }
        return;
      case 'close':
        void closeListeners(listeners).then(() => {
          flush();
          port.postMessage({ t: 'closed' } satisfies ToMain);
        });
        return;
    }
  });
  port.postMessage({ t: 'ready', ports: Object.fromEntries(listeners.map((l) => [l.name, l.port])) });
}

main().catch((err: unknown) => {
  // A start-up failure the CLI words for the user goes over as it is (its class and exit code do
  // not survive a worker's error event); anything else is this thread's error.
  if (err instanceof StartupError) {
    port.postMessage({ t: 'startup-error', message: err.message, exitCode: err.exitCode } satisfies ToMain);
    return;
  }
  throw err;
});
