// Outbound connections, reused per (source IP, MX host, address, port, TLS mode) for up to
// maxMessagesPerConnection transactions, and capped at maxConnectionsPerHost open at once per key
// when the caller gives no budget.
// A budget (from the scheduler) also caps connections per (source IP, provider) across MX hosts,
// counting idle ones: the receiver sees open sockets, not our attempts. A connection stops counting
// only once its QUIT is answered, so a replacement never overlaps it at the receiver.
import { SmtpConnection, type OpenOptions } from './smtp-client.ts';

export interface PoolOptions {
  maxMessagesPerConnection: number;
  maxConnectionsPerHost: number;
  /** Idle connections are closed (QUIT) after this long. */
  idleMs?: number;
  onOpen?: (opts: OpenOptions, ok: boolean) => void;
}

/** Per (source IP, provider) limits the scheduler hands down with each acquire. */
export interface Budget {
  key: string;
  maxOpen: number;
  maxMessagesPerConnection: number;
  /** Waits until a new connection may be opened (new connections per minute), and books it. */
  beforeOpen?: () => Promise<void>;
}

interface Slot {
  open: number;
  group: string | undefined;
  /** Parked connections, oldest first (acquire takes the newest, idle closing the oldest). */
  idle: { conn: SmtpConnection; since: number }[];
}

const DEFAULT_IDLE_MS = 5000;

/** Keys of the options objects seen: attempts reuse one per (path, host, address) (attempt.ts), so the key is built once. */
const keys = new WeakMap<OpenOptions, string>();

function keyOf(o: OpenOptions): string {
  let k = keys.get(o);
  if (k === undefined) keys.set(o, (k = `${o.localAddress ?? ''}|${o.host}|${o.address}|${o.port}|${o.tls}|${o.auth?.user ?? ''}`));
  return k;
}

export class ConnectionPool {
  private readonly slots = new Map<string, Slot>();
  private readonly groupOpen = new Map<string, number>();
  private waiters: (() => void)[] = [];
  private readonly options: PoolOptions;
  private closing = false;
  /**
   * One timer closes idle connections for the whole pool, at the oldest one's deadline: a timer
   * set and cleared per parked connection was a timer-list insert per delivered message.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly idleMs: number;

  constructor(options: PoolOptions) {
    this.options = options;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  private slot(key: string): Slot {
    let s = this.slots.get(key);
    if (!s) {
      s = { open: 0, group: undefined, idle: [] };
      this.slots.set(key, s);
    }
    return s;
  }

  private notify(): void {
    if (this.waiters.length === 0) return; // nearly always (a release per message): no new array
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private opened(s: Slot, delta: number): void {
    s.open += delta;
    if (s.group !== undefined) this.groupOpen.set(s.group, (this.groupOpen.get(s.group) ?? 0) + delta);
    if (delta < 0) this.notify();
  }

  /** Closes an idle connection, counting it closed once the receiver has answered its QUIT. */
  private retire(s: Slot, conn: SmtpConnection): Promise<void> {
    return conn.quit().finally(() => this.opened(s, -1));
  }

  /** An idle connection of the group on another host, to make room. */
  private idleInGroup(group: string): { s: Slot; conn: SmtpConnection } | undefined {
    for (const s of this.slots.values()) {
      if (s.group !== group || s.idle.length === 0) continue;
      const { conn } = s.idle.shift()!;
      return { s, conn };
    }
    return undefined;
  }

  /** A parked connection fit for another transaction, if there is one: no promise (the common case under load). */
  takeIdle(opts: OpenOptions, budget?: Budget): SmtpConnection | undefined {
    const s = this.slot(keyOf(opts));
    if (budget && s.group === undefined) s.group = budget.key;
    return this.popIdle(s);
  }

  private popIdle(s: Slot): SmtpConnection | undefined {
    while (s.idle.length > 0) {
      const { conn } = s.idle.pop()!;
      if (conn.reusable) return conn;
      conn.close();
      this.opened(s, -1);
    }
    return undefined;
  }

  /** A ready connection (reused when one is idle); throws SmtpError when it cannot be opened. */
  async acquire(opts: OpenOptions, budget?: Budget): Promise<SmtpConnection> {
    const key = keyOf(opts);
    const s = this.slot(key);
    if (budget && s.group === undefined) s.group = budget.key;
    for (;;) {
      const idle = this.popIdle(s);
      if (idle) return idle;
      const groupFull = budget !== undefined && (this.groupOpen.get(budget.key) ?? 0) >= budget.maxOpen;
      // A budget already carries the per-provider limit (derived from maxConnectionsPerHost when
      // the config says nothing else); the per-host cap is for callers without one.
      const hostFull = budget === undefined && s.open >= this.options.maxConnectionsPerHost;
      if (!hostFull && !groupFull) break;
      const spare = groupFull ? this.idleInGroup(budget.key) : undefined;
      if (spare) await this.retire(spare.s, spare.conn);
      else await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.opened(s, +1);
    try {
      await budget?.beforeOpen?.();
      const conn = await SmtpConnection.open(opts);
      this.options.onOpen?.(opts, true);
      return conn;
    } catch (err) {
      this.opened(s, -1);
      this.options.onOpen?.(opts, false);
      throw err;
    }
  }

  /** Returns a connection after a transaction: parked for reuse, or closed when used up. */
  release(opts: OpenOptions, conn: SmtpConnection, budget?: Budget): void {
    // keyOf keeps each options object's key: no key is built again here.
    const s = this.slot(keyOf(opts));
    const maxMessages = budget?.maxMessagesPerConnection ?? this.options.maxMessagesPerConnection;
    if (conn.closed) {
      this.opened(s, -1);
    } else if (this.closing || conn.messagesSent >= maxMessages) {
      void this.retire(s, conn);
    } else {
      s.idle.push({ conn, since: performance.now() });
      this.armSweep(this.idleMs);
      this.notify();
    }
  }

  private armSweep(inMs: number): void {
    if (this.sweepTimer !== undefined || this.closing) return;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(0, inMs));
    this.sweepTimer.unref();
  }

  /** Closes connections parked for idleMs or longer; sets the timer again for the next one due. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const now = performance.now();
    let next: number | undefined;
    for (const s of this.slots.values()) {
      while (s.idle.length > 0 && now - s.idle[0]!.since >= this.idleMs) void this.retire(s, s.idle.shift()!.conn);
      if (s.idle.length > 0) next = Math.min(next ?? Infinity, s.idle[0]!.since + this.idleMs);
    }
    if (next !== undefined) this.armSweep(next - now);
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const quits: Promise<void>[] = [];
    for (const s of this.slots.values()) {
      for (const { conn } of s.idle) quits.push(conn.quit());
      s.idle = [];
      s.open = 0;
    }
    this.groupOpen.clear();
    this.notify();
    await Promise.all(quits);
  }
}
