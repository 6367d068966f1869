// A small SMTP client for outbound delivery (RFC 5321, STARTTLS per RFC 3207).
// Written on node:net/tls rather than nodemailer's SMTPConnection because the engine needs, per
// recipient, the exact reply and the phase it came in (for the classifier and DSNs), the TLS
// verification result (for MTA-STS), a bound source address, and explicit control of reuse.
// Over 350 lines on purpose: one SMTP client session is one state machine (greeting, EHLO,
// STARTTLS, pipelined MAIL/RCPT, DATA, RSET for reuse, QUIT) over one socket; split, its states
// would share the socket and the reply reader across files.
import net from 'node:net';
import tls from 'node:tls';
import type { SmtpPhase } from '../bounce/classify.ts';
import { LargeMessage } from './large-message.ts';
import { DataEncoder } from './data-encoder.ts';
import { writesInFlight } from './body-release.ts';

export interface Reply {
  code: number;
  /** All lines joined by "\n", each without its "NNN-" prefix repeated. */
  text: string;
  /** The reply as received, lines joined by " / " (for logs and DSNs). */
  raw: string;
}

export class SmtpError extends Error {
  readonly phase: SmtpPhase;
  /** 0 when no reply was received (connect, timeout, TLS). */
  readonly code: number;
  readonly raw: string;
  constructor(phase: SmtpPhase, code: number, raw: string) {
    super(raw);
    this.name = 'SmtpError';
    this.phase = phase;
    this.code = code;
    this.raw = raw;
  }
}

export type TlsMode = 'opportunistic' | 'verify' | 'none';

export interface OpenOptions {
  /** MX host name: TLS servername and what the certificate must name. */
  host: string;
  address: string;
  port: number;
  localAddress?: string | undefined;
  ehloName: string;
  tls: TlsMode;
  /** Extra CA certificates trusted for verified TLS (tests); the system store otherwise. */
  ca?: string | Buffer | undefined;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Aborting destroys the socket at once (relay shutdown); the attempt fails like a dropped connection. */
  signal?: AbortSignal | undefined;
  /** AUTH PLAIN after EHLO (and STARTTLS): a hand-off to a peer relay (relay/delivery/handoff.ts), never MX delivery. */
  auth?: { user: string; pass: string } | undefined;
}

export const STOPPED = 'delivery stopped: the relay is shutting down';

export interface TransactionResult {
  /** One reply per recipient, in the order given (RCPT reply, or the DATA reply when RCPT was accepted). */
  recipients: { recipient: string; reply: Reply; phase: SmtpPhase }[];
}

function formatReply(lines: string[]): Reply {
  const code = Number(lines[0]!.slice(0, 3));
  return { code, text: lines.map((l) => l.slice(4)).join('\n'), raw: lines.join(' / ') };
}

/** formatReply of a one-line reply (nearly all of them), without the arrays. */
function oneLineReply(line: string): Reply {
  return { code: Number(line.slice(0, 3)), text: line.slice(4), raw: line };
}

/** "NNN-": a line of a multi-line reply that more lines follow. */
function continues(line: string): boolean {
  return line.length >= 4 && line.charCodeAt(3) === 0x2d && isDigit(line.charCodeAt(0)) && isDigit(line.charCodeAt(1)) && isDigit(line.charCodeAt(2));
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * One wait for replies: to one command, or to a pipelined group (MAIL, RCPT…, DATA) as one wait
 * instead of a promise per reply. `phases[i]` is the phase of the i-th reply; a failure reports
 * the phase of the first reply missing, with those read before it.
 */
interface Waiter {
  phases: readonly SmtpPhase[];
  got: Reply[];
  /** A group's wait (readGroup) resolves with what was read and the failure; a single reply's (read) rejects on failure. */
  group: boolean;
  resolve: (v: never) => void;
  reject: (err: SmtpError) => void;
  /** When the reply awaited now was asked for (the command, or the previous reply of the group). */
  since: number;
}

/** The result of a group's wait: the replies read, in order, and why the rest are missing. */
interface GroupRead {
  replies: Reply[];
  error: SmtpError | undefined;
}

/** Settles a wait with what it got (the resolving functions are kept in the waiter: no closure per wait). */
function settle(w: Pick<Waiter, 'group' | 'resolve' | 'reject'>, got: Reply[], err: SmtpError | undefined): void {
  const resolve = w.resolve as (v: GroupRead | Reply) => void;
  if (w.group) resolve({ replies: got, error: err });
  else if (err) w.reject(err);
  else resolve(got[0]!);
}

const ONE_PHASE: Record<SmtpPhase, readonly SmtpPhase[]> = Object.create(null);
function onePhase(phase: SmtpPhase): readonly SmtpPhase[] {
  return (ONE_PHASE[phase] ??= [phase]);
}

function ok(r: Reply): boolean {
  return r.code >= 200 && r.code < 300;
}

const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const END = Buffer.from('.\r\n');

/** Dot-stuffing and CRLF normalisation; a bare LF or CR never ends the data (SMTP smuggling). */
export function encodeData(body: Buffer): Buffer {
  return Buffer.concat(encodeDataParts(body));
}

/**
 * encodeData as slices of the body and the few bytes between them, for one gathered write: no copy
 * of the message (a 50 KiB body was copied once more per attempt only to be written).
 */
export function encodeDataParts(body: Buffer): Buffer[] {
  // Mail from the intake is CRLF-only already (bare CR/LF are refused there): stuff the dots with
  // native searches. Anything else (local notices, odd input) is normalised below.
  const parts: Buffer[] = [];
  let from = 0;
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0x2e) {
      parts.push(body.subarray(from, pos), DOT);
      from = pos;
    }
    const cr = body.indexOf(0x0d, pos);
    const lf = body.indexOf(0x0a, pos);
    if (cr < 0 && lf < 0) break;
    if (cr < 0 || lf !== cr + 1) return [normaliseData(body)];
    pos = lf + 1;
  }
  parts.push(body.subarray(from));
  if (pos < body.length || body.length === 0) parts.push(CRLF);
  parts.push(END);
  return parts;
}

function normaliseData(body: Buffer): Buffer {
  let s = body.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (!s.endsWith('\r\n')) s += '\r\n';
  s = s.replace(/^\./gm, '..');
  return Buffer.from(s + '.\r\n', 'latin1');
}

function totalLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** The phases of a pipelined group's replies: MAIL, one RCPT per recipient, DATA (kept per count). */
const PIPELINED: (readonly SmtpPhase[])[] = [];
function pipelinedPhases(recipients: number): readonly SmtpPhase[] {
  let p = PIPELINED[recipients];
  if (!p) {
    p = ['mail', ...Array<SmtpPhase>(recipients).fill('rcpt'), 'data'];
    if (recipients < 1000) PIPELINED[recipients] = p;
  }
  return p;
}

/**
 * The reply to DATA or to the data itself stands for every accepted recipient; refused ones keep
 * their RCPT reply. In place: the entries are the transaction's own (no copy of each per message).
 */
function replyToAccepted(rcpt: TransactionResult['recipients'], reply: Reply, phase: 'data' | 'eom'): TransactionResult['recipients'] {
  for (const x of rcpt) {
    if (!ok(x.reply)) continue;
    x.reply = reply;
    x.phase = phase;
  }
  return rcpt;
}

/**
 * Replies on the plain socket are read into one buffer shared by every connection (each read is
 * decoded at once, on the one thread) through net's onread callback: no readable-stream push,
 * 'data' event, string decoder or fresh 64 KiB allocation per read. What arrives before the
 * connection object exists (a fast greeting) waits here for it.
 */
const READ_BUFFER = Buffer.allocUnsafe(16 * 1024);

class PlainReader {
  private conn: { onData(chunk: string): void } | undefined;
  private early = '';
  private stopped = false;
  readonly onRead = (n: number, buf: Buffer): boolean => {
    if (this.stopped) return true;
    const chunk = buf.toString('latin1', 0, n);
    if (this.conn) this.conn.onData(chunk);
    else this.early += chunk;
    return true;
  };

  /**
   * STARTTLS: plaintext the server sends after its 220 is not read as replies (it was dropped with
   * the 'data' listener before; read, it would answer the commands sent over TLS).
   */
  stop(): void {
    this.stopped = true;
    this.conn = undefined;
  }

  to(conn: { onData(chunk: string): void }): void {
    this.conn = conn;
    if (this.early) {
      const early = this.early;
      this.early = '';
      conn.onData(early);
    }
  }
}

export class SmtpConnection {
  readonly host: string;
  readonly address: string;
  readonly localAddress: string | undefined;
  private socket: net.Socket | tls.TLSSocket;
  private buffer = '';
  private lines: string[] = [];
  private waiter: Waiter | undefined;
  private plainReader: PlainReader | undefined;
  /**
   * The reply timeout: one timer per connection, not one set and cleared per reply (two per
   * message). It may be running from an earlier wait; when it fires early for the current one it
   * is set again for what is left. Unreferenced: the socket keeps the process up while it is open.
   */
  private timer: NodeJS.Timeout | undefined;
  private replies: Reply[] = [];
  private failure: Error | undefined;
  private readonly commandTimeoutMs: number;
  extensions = new Map<string, string>();
  tlsActive = false;
  tlsAuthorized = false;
  messagesSent = 0;
  closed = false;

  /** Fit for another transaction: open, and the server has not said anything unasked (a 421 before closing). */
  get reusable(): boolean {
    return !this.closed && this.replies.length === 0 && this.lines.length === 0;
  }

  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.socket.destroy(new Error(STOPPED));

  private constructor(socket: net.Socket, opts: OpenOptions, reader: PlainReader) {
    this.socket = socket;
    this.host = opts.host;
    this.address = opts.address;
    this.localAddress = opts.localAddress;
    this.commandTimeoutMs = opts.commandTimeoutMs;
    this.signal = opts.signal;
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    // Until STARTTLS (if ever), replies come through the socket's onread callback (see open()).
    reader.to(this);
    this.plainReader = reader;
    this.attach(socket, false);
  }

  /** `data`: read through 'data' events (a TLS socket); a plain one is read through its onread callback. */
  private attach(socket: net.Socket, data: boolean): void {
    if (data) {
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => this.onData(chunk));
    }
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  private fail(err: Error): void {
    this.closed = true;
    this.stopTimer();
    this.signal?.removeEventListener('abort', this.onAbort);
    if (!this.failure) this.failure = err;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) settle(w, w.got, err instanceof SmtpError ? err : new SmtpError(w.phases[w.got.length]!, 0, err.message));
  }

  /**
   * @internal Called by PlainReader and the TLS socket's 'data' events. Lines are cut from the
   * chunk by index: no regex, no re-slicing of what is left per line.
   */
  onData(chunk: string): void {
    const buf = this.buffer.length > 0 ? this.buffer + chunk : chunk;
    let start = 0;
    let i: number;
    let more = false;
    while ((i = buf.indexOf('\n', start)) >= 0) {
      // One CR before the LF is dropped (as /\r$/ did).
      const line = buf.slice(start, i > start && buf.charCodeAt(i - 1) === 0x0d ? i - 1 : i);
      start = i + 1;
      if (continues(line)) {
        this.lines.push(line);
        continue;
      }
      let reply: Reply;
      if (this.lines.length === 0) reply = oneLineReply(line);
      else {
        this.lines.push(line);
        reply = formatReply(this.lines);
        this.lines = [];
      }
      const w = this.waiter;
      if (!w) {
        this.replies.push(reply);
        continue;
      }
      w.got.push(reply);
      if (w.got.length === w.phases.length) {
        this.waiter = undefined;
        settle(w, w.got, undefined);
      } else more = true;
    }
    this.buffer = start === 0 ? buf : start < buf.length ? buf.slice(start) : '';
    // The group's next reply has its own commandTimeoutMs from now, as a wait of its own would.
    if (more && this.waiter) this.waiter.since = performance.now();
  }

  /** The replies to `phases.length` commands written already, in order; queued ones first. */
  private readGroup(phases: readonly SmtpPhase[]): Promise<GroupRead> {
    return new Promise((resolve, reject) => this.wait(phases, true, resolve, reject));
  }

  private read(phase: SmtpPhase): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(new SmtpError(phase, 0, this.failure.message));
    return new Promise((resolve, reject) => this.wait(onePhase(phase), false, resolve, reject));
  }

  private wait(phases: readonly SmtpPhase[], group: boolean, resolve: (v: never) => void, reject: (err: SmtpError) => void): void {
    const got: Reply[] = [];
    while (got.length < phases.length && this.replies.length > 0) got.push(this.replies.shift()!);
    if (got.length === phases.length) return settle({ group, resolve, reject }, got, undefined);
    if (this.failure) return settle({ group, resolve, reject }, got, new SmtpError(phases[got.length]!, 0, this.failure.message));
    this.waiter = { phases, got, group, resolve, reject, since: performance.now() };
    if (this.timer === undefined) this.startTimer(this.commandTimeoutMs);
  }

  private startTimer(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    const w = this.waiter;
    if (!w) return; // the reply came; the next wait sets it again
    const left = w.since + this.commandTimeoutMs - performance.now();
    if (left > 0) {
      this.startTimer(left);
      return;
    }
    this.waiter = undefined;
    this.socket.destroy();
    settle(w, w.got, new SmtpError(w.phases[w.got.length]!, 0, `no reply from ${this.host} within ${this.commandTimeoutMs} ms`));
  };

  /** Not an async function: one promise per command (the reply's), not two. */
  private command(line: string | Buffer[], phase: SmtpPhase): Promise<Reply> {
    if (this.closed) return Promise.reject(new SmtpError(phase, 0, this.failure?.message ?? 'connection closed'));
    if (typeof line === 'string') this.socket.write(line + '\r\n');
    else if (totalLength(line) < 16_384) {
      // A small message: one copy and a plain write cost less than gathering the pieces.
      this.socket.write(line.length === 1 ? line[0]! : Buffer.concat(line));
    } else {
      // One writev for all the pieces. They are slices of the body: counted as in flight until the
      // socket is done with them (relay/delivery/body-release.ts frees a body only then).
      const written = writesInFlight(line);
      const last = line.findLastIndex((p) => p.length > 0);
      this.socket.cork();
      for (let i = 0; i < line.length; i++) if (line[i]!.length > 0) this.socket.write(line[i]!, i === last ? () => written() : undefined);
      this.socket.uncork();
      if (last < 0) written();
    }
    return this.read(phase);
  }

  static async open(opts: OpenOptions): Promise<SmtpConnection> {
    if (opts.signal?.aborted) throw new SmtpError('connect', 0, STOPPED);
    const reader = new PlainReader();
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({
        host: opts.address, port: opts.port, localAddress: opts.localAddress, family: net.isIPv6(opts.address) ? 6 : 4,
        onread: { buffer: READ_BUFFER, callback: reader.onRead },
      });
      const onAbort = () => s.destroy(new Error(STOPPED));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      s.once('close', () => opts.signal?.removeEventListener('abort', onAbort));
      s.once('connect', () => opts.signal?.removeEventListener('abort', onAbort));
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError('connect', 0, `connect to ${opts.host}[${opts.address}]:${opts.port} timed out after ${opts.connectTimeoutMs} ms`));
      }, opts.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpError('connect', 0, err.message === STOPPED ? STOPPED : `connect to ${opts.host}[${opts.address}]:${opts.port}: ${err.message}`));
      });
    });
    const c = new SmtpConnection(socket, opts, reader);
    try {
      await c.handshake(opts);
    } catch (err) {
      c.close();
      throw err;
    }
    return c;
  }

  private async handshake(opts: OpenOptions): Promise<void> {
    const greeting = await this.read('connect');
    if (greeting.code !== 220) throw new SmtpError('connect', greeting.code, greeting.raw);
    await this.ehlo(opts.ehloName);
    await this.startTls(opts);
    if (opts.auth) await this.authenticate(opts.auth);
  }

  private async startTls(opts: OpenOptions): Promise<void> {
    if (opts.tls === 'none') return;
    if (!this.extensions.has('STARTTLS')) {
      if (opts.tls === 'verify') throw new SmtpError('tls', 0, `${opts.host} does not offer STARTTLS, but policy requires TLS`);
      return;
    }
    const r = await this.command('STARTTLS', 'tls');
    if (r.code !== 220) {
      if (opts.tls === 'verify') throw new SmtpError('tls', r.code, r.raw);
      return;
    }
    await this.upgrade(opts);
    await this.ehlo(opts.ehloName);
  }

  /** RFC 4954 AUTH PLAIN with the initial response; a refusal fails the session. */
  private async authenticate(auth: { user: string; pass: string }): Promise<void> {
    const token = Buffer.from(`\0${auth.user}\0${auth.pass}`, 'utf8').toString('base64');
    // Phase 'ehlo': a refused session, deferred like a 5xx greeting (attempt.ts), never a bounce.
    const r = await this.command(`AUTH PLAIN ${token}`, 'ehlo');
    if (r.code !== 235) throw new SmtpError('ehlo', r.code, r.raw);
  }

  private async upgrade(opts: OpenOptions): Promise<void> {
    const plain = this.socket as net.Socket;
    plain.removeAllListeners('data');
    this.plainReader?.stop();
    // Whatever the server sent in plaintext after its 220 (in the same read, or queued as an
    // unasked reply) is dropped, not read as the answer to a command sent over TLS: an attacker on
    // the path could otherwise answer for the server (RFC 3207 §5, CVE-2011-0411 in Postfix).
    this.buffer = '';
    this.lines = [];
    this.replies = [];
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({
        socket: plain,
        servername: net.isIP(opts.host) ? undefined : opts.host,
        // Opportunistic TLS accepts any certificate (RFC 7435): encryption beats plaintext.
        rejectUnauthorized: opts.tls === 'verify',
        ca: opts.ca ? [...tls.rootCertificates, opts.ca.toString()] : undefined,
        minVersion: 'TLSv1.2',
      });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError('tls', 0, `TLS handshake with ${opts.host} timed out`));
      }, opts.commandTimeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new SmtpError('tls', 0, `TLS with ${opts.host} failed: ${err.code ?? ''} ${err.message}`.trim()));
      });
    });
    this.socket = secure;
    this.tlsActive = true;
    this.tlsAuthorized = secure.authorized;
    this.attach(secure, true);
  }

  private async ehlo(name: string): Promise<void> {
    let r = await this.command(`EHLO ${name}`, 'ehlo');
    if (r.code !== 250) {
      r = await this.command(`HELO ${name}`, 'ehlo');
      if (r.code !== 250) throw new SmtpError('ehlo', r.code, r.raw);
      this.extensions = new Map();
      return;
    }
    this.extensions = new Map();
    for (const line of r.text.split('\n').slice(1)) {
      const [kw, ...rest] = line.trim().split(/\s+/);
      if (kw) this.extensions.set(kw.toUpperCase(), rest.join(' '));
    }
  }

  /**
   * One mail transaction. Never throws for a reply: rejected recipients and a failed DATA are
   * returned per recipient. Throws SmtpError only when the connection failed mid-way (nothing sent
   * was accepted, so the caller may retry elsewhere) or MAIL FROM was refused (applies to all).
   */
  async send(from: string, to: string[], body: Buffer | LargeMessage): Promise<TransactionResult> {
    // The MAIL parameters, in this order: SIZE, BODY=8BITMIME, SMTPUTF8 (built without arrays).
    const ext = this.extensions;
    let params = ext.has('SIZE') ? ` SIZE=${body.length}` : '';
    if (ext.has('8BITMIME')) params += ' BODY=8BITMIME';
    if (ext.has('SMTPUTF8') && (NON_ASCII.test(from) || to.some((r) => NON_ASCII.test(r)))) params += ' SMTPUTF8';
    const mailCommand = `MAIL FROM:<${from}>${params}`;
    this.messagesSent++;
    let mail: Reply;
    const rcpt: { recipient: string; reply: Reply; phase: SmtpPhase }[] = [];
    let data: Reply | undefined;
    if (ext.has('PIPELINING')) {
      // RFC 2920: MAIL, every RCPT and DATA in one write, replies read in order: one round trip
      // and one write up to the 354, not 2 + n of each; and one wait for the group's replies.
      if (this.closed) throw new SmtpError('mail', 0, this.failure?.message ?? 'connection closed');
      let group = mailCommand + '\r\n';
      for (const r of to) group += `RCPT TO:<${r}>\r\n`;
      this.socket.write(group + 'DATA\r\n');
      const { replies, error } = await this.readGroup(pipelinedPhases(to.length));
      // A failure before the MAIL reply fails the attempt (nothing was accepted).
      if (replies.length === 0) throw error!;
      mail = replies[0]!;
      for (let k = 1; k < replies.length && k <= to.length; k++) rcpt.push({ recipient: to[k - 1]!, reply: replies[k]!, phase: 'rcpt' });
      data = replies[to.length + 1];
      if (error) {
        // A server that refuses and hangs up (421) never answers the rest of the group; the replies
        // already read say why, as they would have without pipelining. A connection lost after an
        // accepted RCPT is a failed attempt like any other.
        const refused = mail.code !== 250 || (rcpt.length === to.length && !rcpt.some((x) => ok(x.reply)));
        if (!refused) throw error;
      }
      if (data?.code === 354 && (mail.code !== 250 || !rcpt.some((x) => ok(x.reply)))) {
        // A server that says 354 with no valid recipient must still see the data end (RFC 2920 §3.1);
        // an empty message to nobody, then RSET below.
        this.socket.write('.\r\n');
        await this.read('eom');
      }
    } else {
      mail = await this.command(mailCommand, 'mail');
      if (mail.code === 250) for (const r of to) rcpt.push({ recipient: r, reply: await this.command(`RCPT TO:<${r}>`, 'rcpt'), phase: 'rcpt' });
    }
    if (mail.code !== 250) {
      await this.reset();
      return { recipients: to.map((recipient) => ({ recipient, reply: mail, phase: 'mail' as const })) };
    }
    if (!rcpt.some((x) => ok(x.reply))) {
      await this.reset();
      return { recipients: rcpt };
    }
    data ??= await this.command('DATA', 'data');
    if (data.code !== 354) {
      await this.reset();
      return { recipients: replyToAccepted(rcpt, data, 'data') };
    }
    const eom = body instanceof LargeMessage ? await this.streamData(body) : await this.command(encodeDataParts(body), 'eom');
    return { recipients: replyToAccepted(rcpt, eom, 'eom') };
  }

  /**
   * The data of a message stored in parts, read from the queue a part at a time and written as the
   * socket takes it (never more than a part ahead of the kernel's buffer), then the reply to it.
   */
  private async streamData(message: LargeMessage): Promise<Reply> {
    const encoder = new DataEncoder();
    for (const chunk of message.chunks()) {
      if (this.closed) break;
      this.writeAll(encoder.push(chunk));
      await this.drained();
    }
    if (!this.closed) this.writeAll(encoder.end());
    // A server that answered early and hung up: its reply, else the failure.
    return this.read('eom');
  }

  private writeAll(parts: Buffer[]): void {
    this.socket.cork();
    for (const p of parts) if (p.length > 0) this.socket.write(p);
    this.socket.uncork();
  }

  /** Resolves when the socket wants more, or is gone; a receiver that reads nothing for commandTimeoutMs is cut. */
  private drained(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(() => this.socket.destroy(new Error(`${this.host} took none of the message data within ${this.commandTimeoutMs} ms`)), this.commandTimeoutMs);
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  async reset(): Promise<void> {
    const r = await this.command('RSET', 'mail').catch(() => undefined);
    if (!r || r.code !== 250) this.close();
  }

  async quit(): Promise<void> {
    if (this.closed) return;
    const r = this.command('QUIT', 'mail').catch(() => undefined);
    await Promise.race([r, new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    this.close();
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.socket.destroy();
  }
}
