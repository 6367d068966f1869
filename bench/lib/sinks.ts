// The two sinks both systems deliver to.
// - PostfixSink: Postfix's smtp-sink with a running counter (-c), for throughput: the time at
//   which the n-th message arrived is the end of an end-to-end run.
// - TimestampSink: a minimal SMTP server in this process that records when each message's final
//   "." arrived, per Message-ID, for latency; optionally slow (a fixed delay before each 250).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { userInfo } from 'node:os';
import { SMTP_SINK } from './postfix.ts';
import { LOOPBACK, onInterrupt, waitForSmtp } from './util.ts';

export interface PostfixSink {
  port: number;
  /** Messages received so far. */
  count(): number;
  /** Resolves with performance.now() at which the count reached n, or rejects after timeoutMs. */
  reached(n: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startPostfixSink(port: number): Promise<PostfixSink> {
  const args = ['-c', ...(userInfo().uid === 0 ? ['-u', 'postfix'] : []), `${LOOPBACK}:${port}`, '1024'];
  const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let count = 0;
  let tail = '';
  let stderr = '';
  const waiters: { n: number; resolve: (t: number) => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    const now = performance.now();
    const text = tail + d.toString('latin1');
    // The counter line is rewritten after every message: "sess=N quit=N mesg=N\r".
    const idx = text.lastIndexOf('mesg=');
    if (idx >= 0) {
      const m = /^mesg=(\d+)\r/.exec(text.slice(idx));
      if (m) count = Math.max(count, Number(m[1]));
    }
    tail = text.slice(Math.max(0, text.lastIndexOf('\r') + 1));
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (count >= waiters[i]!.n) {
        waiters[i]!.resolve(now);
        waiters.splice(i, 1);
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitForSmtp(port, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`smtp-sink did not start: ${(err as Error).message} ${stderr}`);
  }
  // The probe connection above counts as a session, not as a message.
  const unregister = onInterrupt(() => void child.kill('SIGKILL'));
  return {
    port,
    count: () => count,
    reached(n, timeoutMs) {
      if (count >= n) return Promise.resolve(performance.now());
      return new Promise((resolve, reject) => {
        const w = { n, resolve: (t: number) => { clearTimeout(timer); resolve(t); } };
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`sink received ${count} of ${n} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop() {
      unregister();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Arrival {
  messageId: string;
  /** performance.now() when the final "." arrived. */
  at: number;
}

export interface TimestampSink {
  port: number;
  count(): number;
  /** Arrival time by Message-ID (without angle brackets). */
  arrivals: Map<string, number>;
  /** With countDuplicates: arrivals of a Message-ID seen before (any prefix), and distinct Message-IDs seen. */
  duplicates: number;
  unique(): number;
  /** Message-IDs (of kept messages) that still carried an X-Mailfleet-Class header on arrival. */
  withClassHeader: Set<string>;
  /** Called on every arrival (tests of progress). */
  onArrival: ((a: Arrival) => void) | undefined;
  stop(): Promise<void>;
}

const MESSAGE_ID = /^message-id:[ \t]*<?([^>\r\n]+)>?/im;

export async function startTimestampSink(port: number, opts: { delayMs?: number; keepPrefix?: string; countDuplicates?: boolean } = {}): Promise<TimestampSink> {
  const delayMs = opts.delayMs ?? 0;
  const arrivals = new Map<string, number>();
  // Every Message-ID seen (countDuplicates): a second arrival of one is a duplicate delivery.
  const seen = new Set<string>();
  let count = 0;
  const sockets = new Set<net.Socket>();
  const sink: TimestampSink = {
    port,
    count: () => count,
    arrivals,
    duplicates: 0,
    unique: () => seen.size,
    withClassHeader: new Set(),
    onArrival: undefined,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.setNoDelay(true);
    let inData = false;
    let buf: Buffer = Buffer.alloc(0);
    // Replies are queued so that a delayed 250 keeps later (pipelined) replies in order.
    let chain = Promise.resolve();
    const reply = (text: string, delay = 0) => {
      chain = chain.then(async () => {
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        if (!sock.destroyed) sock.write(text);
      });
    };
    reply('220 sink.bench.test ESMTP bench sink\r\n');
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (inData) {
          // Headers come first, so the Message-ID is in the first few hundred bytes.
          const end = buf.indexOf('\r\n.\r\n');
          const startEnd = buf.length >= 3 && buf.subarray(0, 3).toString('latin1') === '.\r\n';
          if (end < 0 && !startEnd) return;
          const at = performance.now();
          const bodyEnd = startEnd ? 0 : end;
          const head = buf.subarray(0, Math.min(bodyEnd, 8192)).toString('latin1');
          const headers = head.split('\r\n\r\n')[0] ?? '';
          const m = MESSAGE_ID.exec(headers);
          count++;
          if (m) {
            const id = m[1]!.trim();
            if (opts.countDuplicates) {
              if (seen.has(id)) sink.duplicates++;
              else seen.add(id);
            }
            if (!opts.keepPrefix || id.startsWith(opts.keepPrefix)) {
              if (!arrivals.has(id)) arrivals.set(id, at);
              if (/^x-mailfleet-class:/im.test(headers)) sink.withClassHeader.add(id);
              sink.onArrival?.({ messageId: id, at });
            }
          }
          buf = buf.subarray(startEnd ? 3 : end + 5);
          inData = false;
          reply('250 2.0.0 Ok: stored\r\n', delayMs);
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') reply('250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n');
        else if (verb === 'HELO') reply('250 sink.bench.test\r\n');
        else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET' || verb === 'NOOP') reply('250 2.0.0 Ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          reply('354 End data with <CR><LF>.<CR><LF>\r\n');
        } else if (verb === 'QUIT') {
          reply('221 2.0.0 Bye\r\n');
          chain = chain.then(() => void sock.end());
        } else reply('502 5.5.2 Not implemented\r\n');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => resolve());
  });
  return sink;
}
