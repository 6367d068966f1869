// Load generators: Postfix's smtp-source (throughput), and a paced SMTP client of our own that
// sends one message per connection at a fixed rate and timestamps each step (latency).
import { spawn } from 'node:child_process';
import net from 'node:net';
import { SMTP_SOURCE } from './postfix.ts';
import { LOOPBACK, sleep } from './util.ts';

export interface SourceResult {
  /** performance.now() when smtp-source was started and when it exited. */
  startedAt: number;
  endedAt: number;
}

export function runSmtpSource(opts: {
  port: number;
  sessions: number;
  messages: number;
  size: number;
  reuse: boolean;
  to: string;
  from: string;
  timeoutMs: number;
}): Promise<SourceResult> {
  const args = [
    '-s', String(opts.sessions),
    '-m', String(opts.messages),
    '-l', String(opts.size),
    '-f', opts.from,
    '-t', opts.to,
    '-M', 'source.bench.test',
    ...(opts.reuse ? ['-d'] : []),
    `${LOOPBACK}:${opts.port}`,
  ];
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const endedAt = performance.now();
      if (code === 0) resolve({ startedAt, endedAt });
      else reject(new Error(`smtp-source ${args.join(' ')} failed (${code ?? signal}): ${out.slice(-2000)}`));
    });
  });
}

export interface PacedSample {
  messageId: string;
  /** performance.now() at connect start, after "." was written, and when the 250 to "." arrived. */
  start: number;
  dot: number;
  accepted: number;
  error?: string;
}

/** A 1 KiB-ish message with a unique Message-ID. */
export function buildMessage(messageId: string, from: string, to: string, size: number, extraHeaders = ''): Buffer {
  const head =
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: bench ${messageId}\r\nDate: ${new Date().toUTCString()}\r\n${extraHeaders}` +
    `Message-ID: <${messageId}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const lines: string[] = [];
  let n = head.length;
  while (n < size) {
    const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'.slice(0, Math.min(62, Math.max(1, size - n - 2)));
    lines.push(line);
    n += line.length + 2;
  }
  return Buffer.from(`${head}${lines.join('\r\n')}\r\n`, 'latin1');
}

/** One SMTP transaction on a fresh connection, strictly lock-step (no pipelining). */
/** AUTH PLAIN credentials: the relay honours a message class only from authenticated submission. */
export interface PlainAuth {
  user: string;
  pass: string;
}

export function sendOne(port: number, from: string, to: string, body: Buffer, messageId: string, timeoutMs = 60_000, auth?: PlainAuth): Promise<PacedSample> {
  return new Promise((resolve) => {
    const sample: PacedSample = { messageId, start: performance.now(), dot: 0, accepted: 0 };
    const sock = net.connect(port, LOOPBACK);
    sock.setNoDelay(true);
    let buf = '';
    let step = 0;
    let finished = false;
    const finish = (error?: string) => {
      if (finished) return;
      finished = true;
      if (error) sample.error = error;
      clearTimeout(timer);
      sock.destroy();
      resolve(sample);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    const steps: { expect: string; then: () => void }[] = [
      { expect: '220', then: () => sock.write('EHLO paced.bench.test\r\n') },
      ...(auth
        ? [
            { expect: '250', then: () => sock.write(`AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.pass}`).toString('base64')}\r\n`) },
            { expect: '235', then: () => sock.write(`MAIL FROM:<${from}>\r\n`) },
          ]
        : [{ expect: '250', then: () => sock.write(`MAIL FROM:<${from}>\r\n`) }]),
      { expect: '250', then: () => sock.write(`RCPT TO:<${to}>\r\n`) },
      { expect: '250', then: () => sock.write('DATA\r\n') },
      {
        expect: '354',
        then: () => {
          sock.write(body);
          sock.write('.\r\n');
          sample.dot = performance.now();
        },
      },
      {
        expect: '250',
        then: () => {
          sample.accepted = performance.now();
          sock.write('QUIT\r\n');
          finish();
        },
      },
    ];
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        // A complete reply ends with a line "NNN text" (no dash after the code).
        const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf);
        if (!m) return;
        const code = m[2]!;
        buf = buf.slice(m.index + m[0].length);
        const s = steps[step];
        if (!s) return;
        if (code !== s.expect) return finish(`step ${step}: expected ${s.expect}, got ${code}`);
        step++;
        s.then();
      }
    });
    sock.on('error', (e) => finish(e.message));
    sock.on('close', () => finish('closed early'));
  });
}

/**
 * Sends `count` messages at `ratePerSec`, open loop: message i starts at t0 + i/rate whatever
 * happened to earlier ones.
 */
export async function runPaced(opts: {
  port: number;
  ratePerSec: number;
  count: number;
  size: number;
  from: string;
  to: string;
  idPrefix: string;
  /** Header lines (each ending in CRLF) added to every message. */
  extraHeaders?: string;
  auth?: PlainAuth;
  onSample?: (s: PacedSample) => void;
  stop?: () => boolean;
}): Promise<PacedSample[]> {
  const t0 = performance.now();
  const pending: Promise<PacedSample>[] = [];
  for (let i = 0; i < opts.count; i++) {
    if (opts.stop?.()) break;
    const due = t0 + (i * 1000) / opts.ratePerSec;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const id = `${opts.idPrefix}.${i}@paced.bench.test`;
    const p = sendOne(opts.port, opts.from, opts.to, buildMessage(id, opts.from, opts.to, opts.size, opts.extraHeaders), id, 60_000, opts.auth);
    if (opts.onSample) void p.then(opts.onSample);
    pending.push(p);
  }
  return Promise.all(pending);
}
