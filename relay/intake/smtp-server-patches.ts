// Two narrow changes to smtp-server 3.21.6, applied once at import and guarded by its exact
// version and the shape of the code they replace, so an upgrade fails loudly at start-up
// (and in the tests) instead of silently changing behaviour. See docs/intake.md.
//
// 1. Greeting delay. SMTPConnection.init waits a hard-coded 100 ms before the 220 greeting to
//    catch early talkers. That is worth having on a public MX and pure latency on authenticated
//    submission (one message per connection caps a relay near 190 msg/s at 20 sessions and adds
//    100 ms to every OTP code). The replacement reads `greetingDelayMs` from the server options.
// 2. Enhanced status codes of our own. smtp-server maps a reply code to one fixed enhanced code
//    (452 → 4.2.2) for errors returned from hooks. A hook's error whose message starts with an
//    enhanced code ("4.3.1 Queue write failed") now sends exactly that code.
// 3. Command stamps. Each complete command line stamps the connection with the time and the
//    bytes read so far, and each reply the bytes read so far (a message body is not a command
//    line), so relay/intake/slow-clients.ts can tell an unfinished line from an idle client
//    (smtp-server has no hook per line).
// 4. Session ids. smtp-server names each connection with 10 random bytes turned into a BigInt and
//    printed in base 32 (~2 µs per connection, in the accept path of every session). The id only
//    names a session in log lines, so a per-process random prefix and a counter do (same length).
// 5. Closing after QUIT. smtp-server ends its side after the 221 and then reads until the client
//    closes its own. Clients that close with a reset (Postfix's smtp-source sets SO_LINGER 0)
//    made that read fail: Node builds an ECONNRESET error and formats its stack when the socket
//    is destroyed with it (~15 µs per connection), to be ignored. As Postfix's smtpd does, the
//    descriptor is closed once the 221 is with the kernel (which sends the FIN after it); the
//    connection's end is the kernel's business (a reset then lands on no socket of ours). On TLS,
//    or when the 221 is still queued in Node, the descriptor is closed after end() has finished.
// 6. Message data. SMTPStream._feedDataStream, in its own module: relay/intake/data-stream.ts.
// 7. Commands a session may not use. smtp-server normalizes every entry of a session's
//    disabledCommands (toString, trim, toUpperCase) on each check, ~3 checks per command (~0.2 µs
//    each). The lists listeners.ts sets are the constants below, already normalized: for them a
//    plain includes() gives the same answer. Any other list keeps smtp-server's own check.
// 8. Addresses of a new connection. SMTPConnection's constructor normalizes the local and the
//    remote address with net.isIPv6, a ~400 ns regular expression that an IPv4 address (no ":")
//    always fails. While smtp-server sets a connection up (synchronously, in connect()), net.isIPv6
//    answers false at once for a string without ":" and asks Node's own otherwise: the same answer.
// 9. The socket → parser path. A plain TCP socket feeds the command parser itself instead of
//    through a stream pipe, with the pipe's order and backpressure: relay/intake/socket-feed.ts.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import net, { type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { applyDataStreamPatch } from './data-stream.ts';
import { applySocketFeedPatch } from './socket-feed.ts';

const require = createRequire(import.meta.url);
const PINNED = '3.21.6';
const ENHANCED = /^([245])\.\d{1,3}\.\d{1,3} /;

interface ConnectionInternals {
  _server: { options: { maxClients?: number; greetingDelayMs?: number }; connections: Set<unknown> };
  _setListeners(callback: () => void): void;
  connectionReady(): void;
  send(code: number, data?: string | string[], context?: string | false): void;
  name: string;
}

/** What the QUIT patch touches (smtp-server 3.21.6, pinned). */
interface QuitInternals {
  _socket?: Socket;
  _closing: boolean;
  _parser?: { isClosed: boolean } | false;
  _server: { connections: Set<unknown> };
  send(code: number, data: string): void;
  close(): void;
}

interface CommandStamps {
  _socket?: { bytesRead: number };
  _mfCommandAt?: number;
  _mfBytesAtCommand?: number;
}

let applied = false;

export function applySmtpServerPatches(): void {
  if (applied) return;
  const version = (require('smtp-server/package.json') as { version: string }).version;
  const proto = SMTPConnection.prototype as unknown as ConnectionInternals & { init(): void };
  const initSource = proto.init.toString();
  if (version !== PINNED || !initSource.includes('setTimeout(() => this.connectionReady(), 100)')) {
    throw new Error(
      `smtp-server ${version} is not the pinned ${PINNED} whose greeting delay relay/intake/smtp-server-patches.ts replaces; ` +
        'review the patch against the new version before upgrading',
    );
  }

  proto.init = function init(this: ConnectionInternals & { _mfOpenedAt?: number }) {
    // The session cap (limits.sessionTimeoutMs) counts from here: relay/intake/slow-clients.ts.
    this._mfOpenedAt = Date.now();
    this._setListeners(() => {
      const options = this._server.options;
      // On session threads the set also counts the other threads' connections (listeners.ts).
      const clients = (this._server.connections as Set<unknown> & { total?(): number }).total?.() ?? this._server.connections.size;
      if (options.maxClients && clients > options.maxClients) {
        return this.send(421, `4.4.5 ${this.name} Too many connected clients, try again in a moment`);
      }
      const delay = options.greetingDelayMs ?? 100;
      if (delay <= 0) return this.connectionReady();
      setTimeout(() => this.connectionReady(), delay).unref();
    });
  };

  const serverProto = SMTPServer.prototype as unknown as {
    _handleProxy(socket: { remoteAddress?: string }, callback: (err: Error | null, options?: { id: string; ignore?: boolean }) => void): void;
    _expectsProxyHeader(socket: unknown): boolean;
    options: { ignoredHosts?: string[] };
  };
  const proxySource = serverProto._handleProxy.toString();
  if (!proxySource.includes("crypto.randomBytes(10)") || !proxySource.includes('setImmediate(() => callback(null, socketOptions))')) {
    throw new Error(`smtp-server ${version}: SMTPServer._handleProxy is not the code relay/intake/smtp-server-patches.ts replaces; review the patch`);
  }
  const originalHandleProxy = serverProto._handleProxy;
  serverProto._handleProxy = function handleProxy(this: typeof serverProto, socket, callback) {
    // A PROXY header to read: smtp-server's own code (a listener behind a load balancer).
    if (this._expectsProxyHeader(socket)) return originalHandleProxy.call(this, socket, callback);
    const socketOptions = { id: nextSessionId(), ignore: Boolean(this.options.ignoredHosts && this.options.ignoredHosts.includes(socket.remoteAddress ?? '')) };
    setImmediate(() => callback(null, socketOptions));
  };

  const protoQuit = SMTPConnection.prototype as unknown as {
    handler_QUIT(this: QuitInternals, command: Buffer, callback: () => void): void;
  };
  const quitSource = protoQuit.handler_QUIT.toString();
  if (!quitSource.includes("this.send(221, 'Bye')") || !quitSource.includes('this.close()')) {
    throw new Error(`smtp-server ${version}: handler_QUIT is not the code relay/intake/smtp-server-patches.ts wraps; review the patch`);
  }
  const originalQuit = protoQuit.handler_QUIT;
  protoQuit.handler_QUIT = function handlerQuit(this: QuitInternals, command, callback) {
    const socket = this._socket;
    // A plain TCP socket whose 221 went to the kernel whole: close the descriptor now, as
    // Postfix's smtpd does (the kernel sends the 221 and then the FIN). Skipped: socket.end()
    // (a shutdown(2) that failed with ENOTCONN on nearly every connection whose client resets
    // after the 221), its 'finish', smtp-server's unpipe/resume and its 5 s half-close timer.
    // TLS keeps the original path: its end() sends the close_notify alert.
    if (socket && !(socket instanceof TLSSocket) && !socket.destroyed && socket.writable && socket.writableLength === 0 && !this._closing) {
      this.send(221, 'Bye');
      if (socket.writableLength === 0 && !socket.destroyed) {
        // What smtp-server's close() does that still matters: nothing pipelined after QUIT is
        // answered, and the connection stops counting against maxClients.
        this._closing = true;
        if (this._parser) this._parser.isClosed = true;
        this._server.connections.delete(this);
        socket.destroy();
        return callback();
      }
      // The 221 is still queued in the socket (kernel buffer full): smtp-server's end after it.
      this.close();
      callback();
    } else originalQuit.call(this, command, callback);
    // 'finish': the 221 was written and the shutdown (FIN) done. A socket already ended before
    // (no 'finish' to come) keeps smtp-server's own half-close deadline.
    if (socket && !socket.destroyed && !socket.writableFinished) socket.once('finish', () => socket.destroy());
  };

  const protoCommands = SMTPConnection.prototype as unknown as {
    _onCommand(this: CommandStamps, command: Buffer, callback: () => void): void;
  };
  const originalOnCommand = protoCommands._onCommand;
  protoCommands._onCommand = function onCommand(this: CommandStamps, command, callback) {
    this._mfCommandAt = Date.now();
    this._mfBytesAtCommand = this._socket?.bytesRead ?? 0;
    return originalOnCommand.call(this, command, callback);
  };

  const originalSend = proto.send;
  proto.send = function send(this: ConnectionInternals & CommandStamps, code, data, context) {
    // What the client sent before a reply was answered (a message body included): only bytes
    // after it can be an unfinished command line. Without this a client that paused after its
    // 250 (or waited over commandTimeoutMs for it) was closed as a slow command line.
    this._mfBytesAtCommand = this._socket?.bytesRead ?? this._mfBytesAtCommand;
    if (context === undefined && typeof data === 'string' && code >= 400) {
      const m = ENHANCED.exec(data);
      // Only when the class matches the reply code, so a 4xx never carries a 5.x.x.
      if (m && m[1] === String(code)[0]) return originalSend.call(this, code, data, false);
    }
    return originalSend.call(this, code, data, context);
  };
  const connectSource = (serverProto as unknown as { connect(): void }).connect.toString();
  if (!connectSource.includes('new SMTPConnection(this, socket, socketOptions)') || !SMTPConnection.toString().includes('normalizeAddress(options.remoteAddress')) {
    throw new Error(`smtp-server ${version}: SMTPServer.connect is not the code relay/intake/smtp-server-patches.ts wraps; review the patch`);
  }
  const connectProto = serverProto as unknown as { connect(this: unknown, socket: unknown, options: unknown): void };
  const originalConnect = connectProto.connect;
  connectProto.connect = function connect(socket, options) {
    net.isIPv6 = isIPv6WithoutColonCheck;
    try {
      originalConnect.call(this, socket, options);
    } finally {
      net.isIPv6 = nodeIsIPv6;
    }
  };

  const protoDisabled = SMTPConnection.prototype as unknown as {
    _isDisabled(this: { session: { disabledCommands?: unknown } }, command: string): boolean;
  };
  const disabledSource = protoDisabled._isDisabled.toString();
  if (!disabledSource.includes('this.session.disabledCommands') || !disabledSource.includes('sessionDisabled.some(')) {
    throw new Error(`smtp-server ${version}: _isDisabled is not the code relay/intake/smtp-server-patches.ts wraps; review the patch`);
  }
  const originalIsDisabled = protoDisabled._isDisabled;
  protoDisabled._isDisabled = function isDisabled(command) {
    const list = this.session.disabledCommands;
    if (list === SESSION_COMMANDS_OFF.auth || list === SESSION_COMMANDS_OFF.authAndStarttls || list === SESSION_COMMANDS_OFF.none) return (list as readonly string[]).includes(command);
    return originalIsDisabled.call(this, command);
  };
  applyDataStreamPatch();
  applySocketFeedPatch();
  applied = true;
}

const nodeIsIPv6 = net.isIPv6;
/** net.isIPv6 with its answer for a string without ":" (never an IPv6 address) given at once. */
const isIPv6WithoutColonCheck = (input: string): boolean => (typeof input !== 'string' || input.includes(':')) && nodeIsIPv6(input);

/**
 * The session.disabledCommands lists the listeners set (already upper case and trimmed, as
 * smtp-server compares them), shared by every session and frozen so that none is changed.
 */
export const SESSION_COMMANDS_OFF = {
  auth: Object.freeze(['AUTH']),
  authAndStarttls: Object.freeze(['AUTH', 'STARTTLS']),
  none: Object.freeze([] as string[]),
};

// 8 random base-32 characters per process, then a counter: 16 characters like smtp-server's own.
const SESSION_PREFIX = BigInt(`0x${randomBytes(5).toString('hex')}`).toString(32).padStart(8, '0');
let sessionCount = 0;
const nextSessionId = () => SESSION_PREFIX + (sessionCount++).toString(32).padStart(8, '0');

/** An error for an smtp-server hook: reply code plus an enhanced status code (RFC 3463). */
export function smtpError(code: number, enhanced: string, text: string): Error & { responseCode: number } {
  const err = new Error(`${enhanced} ${text}`) as Error & { responseCode: number };
  err.responseCode = code;
  return err;
}
