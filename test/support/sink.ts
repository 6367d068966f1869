// SMTP sinks for delivery tests: an smtp-server based sink that records connections (source
// address, EHLO name, TLS) and messages and can refuse per recipient, and Postfix's smtp-sink.
// Waiting is on events (waitFor), never on sleeps.
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { EventEmitter, once } from 'node:events';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SinkMessage {
  from: string;
  to: string[];
  body: Buffer;
  remoteAddress: string;
  heloName: string;
  secure: boolean;
  connectionId: string;
  /** Date.now() when the sink took the message (before its 250): latency is measured from it, not from a poll. */
  receivedAt: number;
}

export interface SinkConnection {
  id: string;
  remoteAddress: string;
}

/** A reply to force: "550 5.1.1 no such user" (code, then text). */
export type ForcedReply = string | undefined;

export interface SinkOptions {
  address: string;
  port?: number;
  /** Offer STARTTLS with this certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Refuse the session at the greeting (smtp-server answers 554 unless the reply says otherwise). */
  onConnect?: (remoteAddress: string) => ForcedReply;
  onRcpt?: (recipient: string, session: SMTPServerSession) => ForcedReply;
  onData?: (message: SinkMessage) => ForcedReply;
}

export interface Sink {
  address: string;
  port: number;
  messages: SinkMessage[];
  connections: SinkConnection[];
  events: EventEmitter;
  /** Resolves when at least n messages have arrived. */
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

function smtpError(reply: string): Error {
  const m = /^(\d{3})\s+(.*)$/s.exec(reply);
  const err = new Error(m ? m[2] : reply) as Error & { responseCode?: number };
  err.responseCode = m ? Number(m[1]) : 550;
  return err;
}

export async function waitUntil(events: EventEmitter, event: string, ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    while (!ready()) await once(events, event, { signal: ac.signal });
  } catch (err) {
    if (ac.signal.aborted) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export async function freeTcpPort(address: string): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, address, () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export async function startSink(options: SinkOptions): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const connections: SinkConnection[] = [];
  const events = new EventEmitter();
  events.setMaxListeners(100);
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: options.tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
    logger: false,
    onConnect(session, cb) {
      connections.push({ id: session.id, remoteAddress: session.remoteAddress });
      events.emit('connection');
      const forced = options.onConnect?.(session.remoteAddress);
      cb(forced ? smtpError(forced) : undefined);
    },
    onRcptTo(addr, session, cb) {
      const forced = options.onRcpt?.(addr.address, session);
      cb(forced ? smtpError(forced) : undefined);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const msg: SinkMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          body: Buffer.concat(chunks),
          remoteAddress: session.remoteAddress,
          heloName: session.hostNameAppearsAs,
          secure: session.secure,
          connectionId: session.id,
          receivedAt: Date.now(),
        };
        const forced = options.onData?.(msg);
        if (forced) return cb(smtpError(forced));
        messages.push(msg);
        events.emit('message', msg);
        cb();
      });
    },
  });
  server.on('error', () => {});
  const port = options.port ?? (await freeTcpPort(options.address));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, options.address, () => resolve());
  });
  return {
    address: options.address,
    port,
    messages,
    connections,
    events,
    async waitForMessages(n, timeoutMs = 20_000) {
      await waitUntil(events, 'message', () => messages.length >= n, timeoutMs, `${n} message(s) at sink ${options.address}:${port} (have ${messages.length})`);
      return messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Postfix's smtp-sink, dumping each message (with X-Client-Addr and X-Helo-Args headers) to a directory. */
export interface PostfixSink {
  address: string;
  port: number;
  dir: string;
  /** Dumped messages as text. */
  messages(): string[];
  close(): Promise<void>;
}

export async function startPostfixSink(address: string): Promise<PostfixSink> {
  const port = await freeTcpPort(address);
  const dir = mkdtempSync(join(tmpdir(), 'smtp-sink-'));
  const child = spawn('/usr/sbin/smtp-sink', ['-u', 'root', '-R', dir, '-d', '%M.', `${address}:${port}`, '64'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = once(child, 'exit');
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: address, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || i > 2000) throw new Error(`smtp-sink did not start: ${stderr}`);
    await new Promise((r) => setImmediate(r));
  }
  return {
    address,
    port,
    dir,
    messages: () => readdirSync(dir).sort().map((f) => readFileSync(join(dir, f), 'utf8')),
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Sinks on several addresses sharing one port (MX hosts are all reached on the engine's one MX port). */
export async function startSinksOnOnePort<const T extends readonly Omit<SinkOptions, 'port'>[]>(specs: T): Promise<{ -readonly [K in keyof T]: Sink }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freeTcpPort(specs[0]!.address);
    const started: Sink[] = [];
    try {
      for (const s of specs) started.push(await startSink({ ...s, port }));
      return started as { -readonly [K in keyof T]: Sink };
    } catch (err) {
      await Promise.all(started.map((s) => s.close()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no common free port for the sinks');
}
