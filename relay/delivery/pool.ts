// Outbound connections, reused per (source IP, MX host, address, port, TLS mode) for up to
// maxMessagesPerConnection transactions, and capped at maxConnectionsPerHost open at once per key.
import { SmtpConnection, type OpenOptions } from './smtp-client.ts';

export interface PoolOptions {
  maxMessagesPerConnection: number;
  maxConnectionsPerHost: number;
  /** Idle connections are closed (QUIT) after this long. */
  idleMs?: number;
  onOpen?: (opts: OpenOptions, ok: boolean) => void;
}

interface Slot {
  open: number;
  idle: { conn: SmtpConnection; timer: NodeJS.Timeout }[];
  waiters: (() => void)[];
}

function keyOf(o: OpenOptions): string {
  return [o.localAddress ?? '', o.host, o.address, o.port, o.tls].join('|');
}

export class ConnectionPool {
  private readonly slots = new Map<string, Slot>();
  private readonly options: PoolOptions;
  private closing = false;

  constructor(options: PoolOptions) {
    this.options = options;
  }

  private slot(key: string): Slot {
    let s = this.slots.get(key);
    if (!s) {
      s = { open: 0, idle: [], waiters: [] };
      this.slots.set(key, s);
    }
    return s;
  }

  /** A ready connection (reused when one is idle); throws SmtpError when it cannot be opened. */
  async acquire(opts: OpenOptions): Promise<SmtpConnection> {
    const key = keyOf(opts);
    const s = this.slot(key);
    for (;;) {
      while (s.idle.length > 0) {
        const { conn, timer } = s.idle.pop()!;
        clearTimeout(timer);
        if (conn.reusable) return conn;
        conn.close();
        s.open--;
      }
      if (s.open < this.options.maxConnectionsPerHost) break;
      await new Promise<void>((resolve) => s.waiters.push(resolve));
    }
    s.open++;
    try {
      const conn = await SmtpConnection.open(opts);
      this.options.onOpen?.(opts, true);
      return conn;
    } catch (err) {
      s.open--;
      s.waiters.shift()?.();
      this.options.onOpen?.(opts, false);
      throw err;
    }
  }

  /** Returns a connection after a transaction: parked for reuse, or closed when used up. */
  release(opts: OpenOptions, conn: SmtpConnection): void {
    const s = this.slot(keyOf(opts));
    if (conn.closed || this.closing || conn.messagesSent >= this.options.maxMessagesPerConnection) {
      s.open--;
      void conn.quit();
    } else {
      const timer = setTimeout(() => {
        const i = s.idle.findIndex((x) => x.conn === conn);
        if (i >= 0) {
          s.idle.splice(i, 1);
          s.open--;
          void conn.quit();
          s.waiters.shift()?.();
        }
      }, this.options.idleMs ?? 5000);
      timer.unref();
      s.idle.push({ conn, timer });
    }
    s.waiters.shift()?.();
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    const quits: Promise<void>[] = [];
    for (const s of this.slots.values()) {
      for (const { conn, timer } of s.idle) {
        clearTimeout(timer);
        quits.push(conn.quit());
      }
      s.idle = [];
      s.open = 0;
      for (const w of s.waiters.splice(0)) w();
    }
    await Promise.all(quits);
  }
}
