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
import type { QueueStore } from '../queue/store.ts';
import type { RelayMetrics } from '../metrics.ts';
import type { TlsFiles } from '../tls-files.ts';
import type { CredentialStore } from './credentials.ts';
import type { IntakeVerdict } from './intake-rate.ts';
import { IntakeMemoryBudget } from './memory-budget.ts';
import { closeListeners, startListeners, type IntakeDeps, type IntakeShared } from './listeners.ts';
import type { MetricOp, SessionThreadInit, ToMain, ToThread } from './threads.ts';

// Imported anywhere else (the image's build imports every module once to fill its compile cache,
// so that a session thread never loads the TypeScript stripper: ~15 MB per thread), it stops here.
if (!parentPort || !workerData) throw new Error('relay/intake/session-thread.ts is the entry of an SMTP session thread (relay/intake/threads.ts); it runs nowhere else');
const port = parentPort;
const init = workerData as SessionThreadInit;
const { config } = init;
const send = (msg: ToMain) => port.postMessage(msg);

// Counters and log lines go to the main thread in one batch: before any reply is written (so a
// client that reads /metrics or the log after a reply sees what led to it), else at the end of
// the tick. Log lines are formatted here and written by the main thread's destination: one
// writer of stdout (no lines torn between threads), and an injected logger sees them too.
// `accepted` events ride in the same batch (one message to the main thread per 250, not two).
let ops = new Map<string, MetricOp>();
let lines = '';
let accepted: unknown[] = [];
let scheduled = false;
function flush(): void {
  scheduled = false;
  if (ops.size === 0 && lines === '' && accepted.length === 0) return;
  send({ t: 'batch', ops: [...ops.values()], text: lines, accepted });
  ops = new Map();
  lines = '';
  accepted = [];
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

// Calls answered by the main thread.
let seq = 0;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
function call<T>(m: 'enqueue' | 'admit' | 'blockedFor' | 'verify', a: unknown, transfer: ArrayBuffer[] = []): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const id = ++seq;
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    port.postMessage({ t: 'call', id, m, a } satisfies ToMain, transfer);
  });
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

// A large body goes to the main thread by transfer, not copied: a structured clone held it three
// times at once (this thread's, the serialized and the main thread's copy; 50 x 25 MiB at once
// peaked at 563 MB on 2 threads). Its header stays here for the `accepted` event.
const TRANSFER_ABOVE = 64 * 1024;
const headsSent = new Map<string, Buffer>();
const store = {
  async enqueue(m: Parameters<QueueStore['enqueue']>[0]): Promise<string> {
    const b = m.body;
    // Only a buffer of its own (not a slice of Node's shared pool or of a larger one).
    // A spooled body (relay/queue/body-parts.ts) is plain data: its header and the spool file's descriptor.
    const own = b instanceof Uint8Array && b.length > TRANSFER_ABOVE && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && m.id !== undefined;
    if (own) headsSent.set(m.id!, headerCopy(b as Buffer));
    try {
      return await call<string>('enqueue', m, own ? [(b as Buffer).buffer as ArrayBuffer] : []);
    } catch (err) {
      if (own) headsSent.delete(m.id!);
      const e = err as Error & { storeCode?: string };
      throw e.storeCode !== undefined ? new StoreError(e.message, e.storeCode) : e;
    }
  },
} as unknown as QueueStore;

const rate = config.intakeRate;
const unlimited = !rate.pool && !rate.perCredential && rate.users.length === 0;
const OPEN: IntakeVerdict = { ok: true, notBefore: undefined };
const shared: IntakeShared = {
  throttle: {
    blockedFor: (address) => call<number>('blockedFor', address),
    recordSuccess: (address) => send({ t: 'post', m: 'recordSuccess', a: address }),
    recordFailure: (address) => send({ t: 'post', m: 'recordFailure', a: address }),
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
/** The header block of a message (up to and with the empty line), in a buffer of its own. */
function headerCopy(body: Buffer): Buffer {
  const end = body.indexOf('\r\n\r\n');
  return Buffer.from(body.subarray(0, end < 0 ? Math.min(body.length, HEADER_ONLY_ABOVE) : end + 4));
}

async function main(): Promise<void> {
  const deps: IntakeDeps = {
    config, store, credentials, logger, metrics,
    ...(tls ? { tls: tls as unknown as TlsFiles } : {}),
    feedback: {
      accepted: (a) => {
        // The main thread reads only the header (the author's domain, relay/feedback): a large
        // body is not copied across a second time (a view clones its whole buffer).
        const sent = headsSent.get(a.queueId);
        headsSent.delete(a.queueId);
        accepted.push(sent ? { ...a, body: sent } : a.body.length > HEADER_ONLY_ABOVE ? { ...a, body: headerCopy(a.body) } : a);
        later();
      },
      recordFeedback: () => undefined,
    },
    bind: { port: (l) => init.ports[l.name] ?? l.port, reusePort: true, clients: new Int32Array(init.clients) },
  };
  const listeners = await startListeners(deps, shared, (l) => init.ports[l.name] !== undefined);
  port.on('message', (msg: ToThread) => {
    switch (msg.t) {
      case 'ret': {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.e) p?.reject(Object.assign(new Error(msg.e.message), msg.e.storeCode !== undefined ? { storeCode: msg.e.storeCode } : {}));
        else p?.resolve(msg.v);
        return;
      }
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
          send({ t: 'closed' });
        });
        return;
    }
  });
  send({ t: 'ready', ports: Object.fromEntries(listeners.map((l) => [l.name, l.port])) });
}

main().catch((err: unknown) => {
  // Reported to the main thread as this thread's error (a port taken, an unreadable file).
  throw err;
});
