// Small helpers shared by the bench modules: free ports, waiting for a port, statistics, /proc.
import net from 'node:net';
import { readFileSync } from 'node:fs';

export const LOOPBACK = '127.0.0.1';

/** A port the kernel considers free right now on 127.0.0.1 (tiny race; fine on a bench machine). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, LOOPBACK, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves once something on host:port answers with an SMTP greeting ("220 "). */
export async function waitForSmtp(port: number, timeoutMs = 30_000, host = LOOPBACK): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(port, host);
        let buf = '';
        const done = (err?: Error) => {
          sock.destroy();
          if (err) reject(err);
          else resolve();
        };
        sock.setTimeout(2000, () => done(new Error('timeout')));
        sock.on('data', (d) => {
          buf += d.toString('latin1');
          if (/^220[ -]/m.test(buf)) {
            sock.write('QUIT\r\n');
            done();
          }
        });
        sock.on('error', done);
        sock.on('close', () => done(new Error('closed before greeting')));
      });
      return;
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  throw new Error(`nothing answered SMTP on ${host}:${port} within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

/** Peak resident set (VmHWM) of a process in bytes, or undefined when it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, all threads) a process has used so far, in ms; undefined when it is
 * gone. Per message, this is what a busy shared machine disturbs least (throughput swings 2×).
 */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): utime is the 14th field.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** Current resident set (VmRSS) of a process in bytes. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Nearest-rank percentile of unsorted values (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function summarize(values: readonly number[]): Summary {
  return {
    median: median(values),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
    values: [...values],
  };
}

export function round(n: number, digits = 2): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

// Things to stop when the bench is interrupted (SIGINT/SIGTERM): relay children, Postfix
// instances (daemonized, so not our children) and sinks.
const cleanups = new Set<() => Promise<void> | void>();

/** Registers a stop function; returns the function that unregisters it. */
export function onInterrupt(fn: () => Promise<void> | void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export function installInterruptHandler(onDone: () => void): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`\n${sig}: stopping what the bench started ...`);
    void Promise.allSettled([...cleanups].map(async (f) => f())).finally(() => {
      onDone();
      process.exit(130);
    });
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
