// Slow clients: a command line that is never finished, or a message body that trickles in.
// The idle timeout alone does not catch them (each byte resets it): a client sending one byte of
// a command every 15 s held a connection slot for as long as it liked (Postfix behaves the same).
// Here a started command line must end within `commandTimeoutMs`, and a message body must keep
// at least `minDataRate` bytes per second once `commandTimeoutMs` has passed (Postfix's
// smtpd_min_data_rate is 500 B/s); otherwise 421 4.4.2 and the connection is closed. Nothing of
// an unfinished message was queued, so nothing is lost: the client retries.
// The same sweep ends a connection older than `sessionTimeoutMs` (a whole session's cap): one
// timer per listener instead of a timer per connection, set and cleared for every session.
import type { SMTPServer } from 'smtp-server';

export interface SlowClientLimits {
  commandTimeoutMs: number;
  /** Bytes per second; 0 turns the check off. */
  minDataRate: number;
  /** A connection's whole lifetime; absent = no cap. Enforced within one sweep interval. */
  sessionTimeoutMs?: number;
}

/** What a connection looks like at one sweep. */
export interface ConnectionView {
  now: number;
  /** When the last command line was complete (or the connection opened). */
  lastCommandAt: number;
  /** When bytes of a next, unfinished command line were first seen; undefined when none. */
  partialSince: number | undefined;
  /** Inside DATA: body bytes so far; undefined outside DATA. */
  dataBytes: number | undefined;
  /** The server owes the client a reply (a hook is running): the client is not to blame. */
  waitingOnServer: boolean;
}

export type SlowVerdict = 'ok' | 'command' | 'data';

/** Pure: is this connection too slow, and in which phase. */
export function slowClientVerdict(c: ConnectionView, limits: SlowClientLimits): SlowVerdict {
  if (c.waitingOnServer) return 'ok';
  if (c.dataBytes !== undefined) {
    const elapsed = c.now - c.lastCommandAt;
    if (limits.minDataRate > 0 && elapsed > limits.commandTimeoutMs && c.dataBytes < (limits.minDataRate * elapsed) / 1000) return 'data';
    return 'ok';
  }
  if (c.partialSince !== undefined && c.now - c.partialSince > limits.commandTimeoutMs) return 'command';
  return 'ok';
}

/** The smtp-server connection internals read here (smtp-server 3.21.6, pinned). */
interface ConnectionInternals {
  id: string;
  _socket?: { bytesRead: number; destroyed: boolean };
  _parser?: { _dataMode?: boolean } | false;
  _dataStream?: { byteLength?: number } | false | null;
  _handlerPending?: boolean;
  _closing?: boolean;
  /** Stamped by relay/intake/smtp-server-patches.ts at each complete command line. */
  _mfCommandAt?: number;
  _mfBytesAtCommand?: number;
  /** Stamped by relay/intake/smtp-server-patches.ts when the connection is set up. */
  _mfOpenedAt?: number;
  send(code: number, data: string): void;
  close(): void;
}

const partial = new WeakMap<object, { since: number; bytes: number }>();

/**
 * Sweeps the server's connections once a second. Returns the stop function. `onSlow` is told
 * of each connection closed and why (metrics, log).
 */
export function watchSlowClients(
  server: SMTPServer,
  limits: SlowClientLimits,
  onSlow: (verdict: Exclude<SlowVerdict, 'ok'>, sessionId: string) => void,
  intervalMs = 1000,
): () => void {
  // Wall time, as the stamps of smtp-server-patches.ts are: a client's slowness is real time.
  const sweep = () => {
    const now = Date.now();
    for (const raw of (server as unknown as { connections: Set<ConnectionInternals> }).connections) {
      const conn = raw;
      const socket = conn._socket;
      if (!socket || socket.destroyed || conn._closing) continue;
      // The session cap closes without a reply, whatever the session is doing (as the timer per
      // connection it replaces did): it bounds how long one client can hold a connection slot.
      if (limits.sessionTimeoutMs !== undefined && now - (conn._mfOpenedAt ?? now) > limits.sessionTimeoutMs) {
        conn.close();
        continue;
      }
      const lastCommandAt = conn._mfCommandAt ?? now;
      conn._mfCommandAt ??= now;
      const inData = Boolean(conn._parser && conn._parser._dataMode);
      let partialSince: number | undefined;
      if (!inData && socket.bytesRead > (conn._mfBytesAtCommand ?? 0)) {
        const seen = partial.get(conn);
        if (seen && seen.bytes === (conn._mfBytesAtCommand ?? 0)) partialSince = seen.since;
        else {
          partial.set(conn, { since: now, bytes: conn._mfBytesAtCommand ?? 0 });
          partialSince = now;
        }
      } else partial.delete(conn);
      const verdict = slowClientVerdict({
        now, lastCommandAt, partialSince,
        dataBytes: inData ? ((conn._dataStream && conn._dataStream.byteLength) || 0) : undefined,
        // A hook running, or the message is in and onData has not answered (smtp-server's own
        // idle timeout waits then too): the intake may wait for memory (limits.intakeMemoryWaitMs).
        waitingOnServer: Boolean(conn._handlerPending || (conn._dataStream && conn._parser && !conn._parser._dataMode)),
      }, limits);
      if (verdict === 'ok') continue;
      onSlow(verdict, conn.id);
      conn.send(421, verdict === 'command'
        ? '4.4.2 Command not completed in time, closing connection'
        : `4.4.2 Message data arriving slower than ${limits.minDataRate} bytes per second, closing connection`);
    }
  };
  const timer = setInterval(sweep, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
