// The socket → command parser path of smtp-server 3.21.6 (pinned), without a stream pipe.
// smtp-server pipes each connection's socket into its parser (SMTPStream, a Writable): per
// connection a Readable.pipe (eight closures, listeners on both streams), and per chunk read the
// Writable's bookkeeping (write, writeOrBuffer, onwrite) and a nextTick for its afterWrite. Here a
// plain TCP socket feeds the parser's _write itself, one chunk at a time as the Writable did:
// - the next chunk goes to the parser only once the previous one called back (a command is not
//   processed before the previous hook answered);
// - chunks that arrive meanwhile wait here, and past the parser's highWaterMark (64 KiB on Node
//   24, where the pipe's write() returned false) the socket is paused until they are processed;
// - the client's FIN ends the parser once what waits is processed (its unfinished last line is
//   still a command, as smtp-server's 'finish' handler makes it);
// - a parser error (a command line too long) stops the feed and pauses the socket, as the pipe's
//   unpipe did, and reaches smtp-server's 'error' listener (421 and close) by destroy().
// smtp-server's own pipe()/unpipe() calls are what attach and detach it: the socket answers them
// itself (close(), _onClose(), upgrade() unpipe as before). TLS sockets (implicit TLS on 465, and
// the session after STARTTLS) keep the stream pipe: only a plain socket given to a new connection
// takes this path. DATA bodies still go through the parser's _feedDataStream
// (relay/intake/data-stream.ts).
import { createRequire } from 'node:module';
import { Readable, Writable } from 'node:stream';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

const require = createRequire(import.meta.url);
const PINNED = '3.21.6';

/** The parser's Writable side as smtp-server uses it. */
interface Parser {
  _write(chunk: Buffer, encoding: string, next: (err?: Error | null) => void): void;
  /** In DATA, the parser keeps slices of what it is given (relay/intake/data-stream.ts). */
  _dataMode: boolean;
  end(): void;
  destroy(err?: Error): void;
  readonly writableHighWaterMark: number;
}

/** What net's onread needs of a socket's handle (Node 24). */
interface StreamHandle {
  reading: boolean;
  useUserBuffer(buf: Uint8Array): void;
  readStart(): number;
}

type FedSocket = Socket & { _mfFeed?: SocketFeed; _handle?: StreamHandle | null } & Record<symbol, unknown>;

/**
 * net's onread for a socket that was not created with it (an accepted one): the socket's own
 * slots for it, found on a socket that was, or undefined when this Node keeps them elsewhere
 * (the socket is then read through 'data' events; socket-feed.test.ts says which path runs).
 */
const ONREAD = ((): { buffer: symbol; callback: symbol } | undefined => {
  const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } }) as unknown as Record<symbol, unknown>;
  const slot = (name: string) => Object.getOwnPropertySymbols(probe).find((s) => s.description === name);
  const buffer = slot('kBuffer');
  const callback = slot('kBufferCb');
  const gen = slot('kBufferGen');
  if (!buffer || !callback || !gen || !Buffer.isBuffer(probe[buffer]) || typeof probe[callback] !== 'function' || probe[gen] !== null) return undefined;
  return { buffer, callback };
})();

/**
 * Reads of every plain intake socket of this thread land here (net's default is a fresh 64 KiB
 * allocation per read, shrunk to what was read): the parser turns a command chunk into a string at
 * once, and a chunk it may keep (a message body, or one that waits) is copied out first.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

class SocketFeed {
  private readonly waiting: Buffer[] = [];
  private waitingBytes = 0;
  /** The parser has a chunk it has not called back for. */
  private busy = false;
  /** Inside a call to the parser's _write (a callback made in it does not start another). */
  private writing = false;
  private pausedHere = false;
  private ended = false;
  private detached = false;
  /** Read through onread (else 'data' events). 'data' still carries what was read before the feed. */
  private readonly direct: boolean;
  private readonly socket: FedSocket;
  readonly parser: Parser;

  constructor(socket: FedSocket, parser: Parser) {
    this.socket = socket;
    this.parser = parser;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    const handle = socket._handle;
    this.direct = Boolean(ONREAD && handle && typeof handle.useUserBuffer === 'function' && socket[ONREAD.buffer] === null);
    if (this.direct) {
      socket[ONREAD!.buffer] = READ_BUFFER;
      socket[ONREAD!.callback] = this.onRead;
      handle!.useUserBuffer(READ_BUFFER);
    }
  }

  /** net's onread: `n` bytes in the shared buffer, gone at the next read. false stops reading (backpressure). */
  private readonly onRead = (n: number, buf: Buffer): boolean => {
    if (this.detached) return true;
    if (this.busy || this.writing) {
      this.wait(Buffer.from(buf.subarray(0, n)));
      return !this.pausedHere;
    }
    this.take(this.parser._dataMode ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n));
    return !this.pausedHere;
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.detached) return;
    if (this.busy || this.writing) return this.wait(chunk);
    this.take(chunk);
  };

  private take(chunk: Buffer): void {
    this.write(chunk);
    if (!this.busy && (this.waiting.length > 0 || this.pausedHere || this.ended)) this.next();
  }

  private wait(chunk: Buffer): void {
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
    if (!this.pausedHere && this.waitingBytes >= this.parser.writableHighWaterMark) {
      // onread: the false returned to it stops the reads.
      this.pausedHere = true;
      if (!this.direct) this.socket.pause();
    }
  }

  private readonly onEnd = (): void => {
    this.ended = true;
    if (!this.busy && !this.writing && this.waiting.length === 0 && !this.detached) this.parser.end();
  };

  /** The parser's callback for the chunk it was given: the next one may go. */
  private readonly done = (err?: Error | null): void => {
    if (this.detached) return;
    this.busy = false;
    if (err) {
      const parser = this.parser;
      this.detach();
      parser.destroy(err);
      return;
    }
    if (!this.writing) this.next();
  };

  private write(chunk: Buffer): void {
    this.busy = true;
    this.writing = true;
    try {
      this.parser._write(chunk, 'buffer', this.done);
    } finally {
      this.writing = false;
    }
  }

  /** Feeds what waits while the parser calls back at once; then reads on, or ends the parser after the client's FIN. */
  private next(): void {
    while (!this.busy && !this.detached && this.waiting.length > 0) {
      const chunk = this.waiting.shift()!;
      this.waitingBytes -= chunk.length;
      this.write(chunk);
    }
    if (this.busy || this.detached) return;
    if (this.pausedHere) this.readOn();
    if (this.ended) this.parser.end();
  }

  private readOn(): void {
    this.pausedHere = false;
    const handle = this.socket._handle;
    if (!this.direct) this.socket.resume();
    else if (handle && !handle.reading && !this.socket.destroyed) {
      // What net's own read start does (tryReadStart): its stream never paused this socket.
      handle.reading = true;
      const err = handle.readStart();
      if (err) this.socket.destroy(new Error(`read start failed (${err})`));
    }
  }

  /** Stops feeding the parser: what waits is dropped (a retired or closed parser discards it anyway), and the socket pauses as an unpipe pauses it. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.waiting.length = 0;
    this.waitingBytes = 0;
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket._mfFeed = undefined;
    this.socket.pause();
    // Reads stopped by onread's backpressure start again (smtp-server's close() resumes the socket
    // to read the client's FIN; a TLS upgrade reads through its own layer).
    if (this.direct && this.pausedHere) this.readOn();
  }
}

function feedPipe<T extends NodeJS.WritableStream>(this: FedSocket, dest: T): T {
  if (!(dest instanceof SMTPStream) || this._mfFeed) return Readable.prototype.pipe.call(this, dest) as T;
  this._mfFeed = new SocketFeed(this, dest as unknown as Parser);
  return dest;
}

function feedUnpipe(this: FedSocket, dest?: NodeJS.WritableStream): FedSocket {
  const feed = this._mfFeed;
  if (feed && (dest === undefined || (dest as unknown) === feed.parser)) feed.detach();
  else Readable.prototype.unpipe.call(this, dest);
  return this;
}

let applied = false;

/** Makes new connections on plain sockets feed their parser directly; throws when smtp-server is not the code this was checked against. */
export function applySocketFeedPatch(): void {
  if (applied) return;
  const version = (require('smtp-server/package.json') as { version: string }).version;
  const proto = SMTPConnection.prototype as unknown as { _setListeners(this: { _socket: FedSocket }, callback: () => void): void };
  const setListeners = proto._setListeners.toString();
  const parserProto = SMTPStream.prototype as unknown as { _write(): void };
  if (
    version !== PINNED ||
    !setListeners.includes('this._socket.pipe(this._parser)') ||
    !parserProto._write.toString().includes('return done()') ||
    !(SMTPStream.prototype instanceof Writable)
  ) {
    throw new Error(`smtp-server ${version}: SMTPConnection._setListeners is not the code relay/intake/socket-feed.ts wraps; review the patch`);
  }
  const original = proto._setListeners;
  proto._setListeners = function setListeners(callback) {
    const socket = this._socket;
    // Only a plain TCP socket: a TLS socket's reads come through its TLS layer (the stream pipe stays).
    if (socket instanceof Socket && !(socket instanceof TLSSocket) && socket.pipe === Socket.prototype.pipe) {
      const plain: Socket = socket;
      plain.pipe = feedPipe as Socket['pipe'];
      plain.unpipe = feedUnpipe as unknown as Socket['unpipe'];
    }
    return original.call(this, callback);
  };
  applied = true;
}
