// A receiving MX for shaping tests, on plain sockets so nothing sits between the wire and the
// records: per source address it records concurrent connections (a connection stops counting when
// its QUIT arrives or it closes), message times and messages per connection. Replies can be forced
// per command on demand, and each message can be made slow.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { waitUntil } from '../support/sink.ts';

export interface ReceivedMessage {
  source: string;
  connection: number;
  at: number;
  from: string;
  to: string[];
  body: string;
}

export interface Force {
  /** Reply to the greeting, MAIL, RCPT or end of DATA instead of the usual one, e.g. "421 4.7.28 rate limited". */
  (stage: 'connect' | 'mail' | 'rcpt' | 'data', source: string, arg: string): string | undefined;
}

export interface ShapingSink {
  address: string;
  port: number;
  messages: ReceivedMessage[];
  events: EventEmitter;
  /** Highest number of simultaneous connections seen from each source address. */
  maxConcurrency: Map<string, number>;
  /** Open connections per source address right now. */
  open: Map<string, number>;
  connectionsOpened: Map<string, number[]>;
  /** Messages per connection id. */
  perConnection: Map<number, number>;
  force: Force | undefined;
  /** Milliseconds before answering each end of DATA. */
  delayMs: number;
  waitForMessages(n: number, timeoutMs?: number, pred?: (m: ReceivedMessage) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startShapingSink(address: string, port: number): Promise<ShapingSink> {
  const events = new EventEmitter();
  events.setMaxListeners(100);
  let nextId = 0;
  const sockets = new Set<net.Socket>();
  const sink: ShapingSink = {
    address, port, messages: [], events, maxConcurrency: new Map(), open: new Map(), connectionsOpened: new Map(), perConnection: new Map(),
    force: undefined, delayMs: 0,
    async waitForMessages(n, timeoutMs = 20_000, pred = () => true) {
      await waitUntil(events, 'message', () => sink.messages.filter(pred).length >= n, timeoutMs, `${n} message(s) at ${address} (have ${sink.messages.filter(pred).length})`);
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const source = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const id = ++nextId;
    let counted = true;
    sink.open.set(source, (sink.open.get(source) ?? 0) + 1);
    sink.maxConcurrency.set(source, Math.max(sink.maxConcurrency.get(source) ?? 0, sink.open.get(source)!));
    (sink.connectionsOpened.get(source) ?? sink.connectionsOpened.set(source, []).get(source)!).push(Date.now());
    events.emit('connection', source);
    const uncount = () => {
      if (!counted) return;
      counted = false;
      sink.open.set(source, sink.open.get(source)! - 1);
      events.emit('disconnect', source);
    };
    socket.on('close', () => {
      sockets.delete(socket);
      uncount();
    });
    socket.on('error', () => {});
    const send = (line: string) => socket.write(`${line}\r\n`);
    const greeting = sink.force?.('connect', source, '');
    if (greeting) {
      send(greeting);
      socket.end();
      return;
    }
    send('220 sink.test ESMTP');
    let buf = '';
    let inData = false;
    let data: string[] = [];
    let from = '';
    let to: string[] = [];
    let queue = Promise.resolve();
    const handle = async (line: string): Promise<void> => {
      if (inData) {
        if (line !== '.') {
          data.push(line.startsWith('..') ? line.slice(1) : line);
          return;
        }
        inData = false;
        if (sink.delayMs > 0) await new Promise((r) => setTimeout(r, sink.delayMs));
        const forced = sink.force?.('data', source, to.join(','));
        if (forced) return void send(forced);
        const msg: ReceivedMessage = { source, connection: id, at: Date.now(), from, to, body: data.join('\r\n') };
        sink.messages.push(msg);
        sink.perConnection.set(id, (sink.perConnection.get(id) ?? 0) + 1);
        send('250 2.0.0 ok');
        events.emit('message', msg);
        return;
      }
      const verb = line.slice(0, 4).toUpperCase();
      const arg = line.slice(5);
      if (verb === 'EHLO' || verb === 'HELO') return void send('250-sink.test\r\n250 ENHANCEDSTATUSCODES');
      if (verb === 'MAIL') {
        const forced = sink.force?.('mail', source, arg);
        if (forced) return void send(forced);
        from = /<(.*)>/.exec(arg)?.[1] ?? '';
        to = [];
        return void send('250 2.1.0 ok');
      }
      if (verb === 'RCPT') {
        const rcpt = /<(.*)>/.exec(arg)?.[1] ?? '';
        const forced = sink.force?.('rcpt', source, rcpt);
        if (forced) return void send(forced);
        to.push(rcpt);
        return void send('250 2.1.5 ok');
      }
      if (verb === 'DATA') {
        if (to.length === 0) return void send('554 5.5.1 no valid recipients');
        inData = true;
        data = [];
        return void send('354 go ahead');
      }
      if (verb === 'RSET') return void send('250 2.0.0 ok');
      if (verb === 'NOOP') return void send('250 2.0.0 ok');
      if (verb === 'QUIT') {
        uncount();
        send('221 2.0.0 bye');
        socket.end();
        return;
      }
      send('502 5.5.2 not implemented');
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        queue = queue.then(() => handle(line));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return sink;
}

/** Most messages seen in any window of `windowMs` (sliding over message times). */
export function maxInWindow(times: readonly number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}
