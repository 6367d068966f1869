// A keyed work queue with the semantics of client-go's workqueue, because informer callbacks are
// synchronous and bursty: ten events for one object must become one reconcile, a key is never
// reconciled by two workers at once, and a failing key backs off on its own without slowing the rest.
import { systemClock, type Clock } from './clock.ts';

export interface RateLimiterOptions {
  /** First retry delay after a failure. */
  baseDelayMs?: number;
  /** Ceiling of the per-key exponential backoff. */
  maxDelayMs?: number;
  /** Overall token bucket: sustained retries per second across all keys … */
  qps?: number;
  /** … and how many may go at once before the bucket throttles. */
  burst?: number;
}

/**
 * Decides how long a failed key waits: the larger of its own exponential backoff and the overall
 * token bucket's delay (so a mass failure, e.g. the apiserver down, does not become a retry storm).
 */
export class RateLimiter {
  private failures = new Map<string, number>();
  private tokens: number;
  private last: number | undefined;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly qps: number;
  readonly burst: number;

  constructor(opts: RateLimiterOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 300_000;
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.tokens = this.burst;
  }

  /** Delay before `key` may run again, counting this call as one more failure. */
  when(key: string, now: number): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const exp = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n, 40));
    return Math.max(exp, this.bucketDelay(now));
  }

  private bucketDelay(now: number): number {
    if (this.last !== undefined) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

export interface WorkQueueOptions extends RateLimiterOptions {
  clock?: Clock;
  /** Called whenever the number of waiting keys changes (for the queue-depth gauge). */
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  private queue: string[] = [];
  /** Keys waiting in `queue` (or waiting to be re-queued when their current run ends). */
  private dirty = new Set<string>();
  private processing = new Set<string>();
  /** Delayed adds: key → due time and timer, keeping only the earliest per key. */
  private delayed = new Map<string, { at: number; timer: unknown }>();
  private waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly onDepth: ((depth: number) => void) | undefined;

  constructor(opts: WorkQueueOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.limiter = new RateLimiter(opts);
    this.onDepth = opts.onDepth;
  }

  /** Queue `key` now; a no-op when it is already waiting. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    // A key being worked on is re-queued by done(), so two workers never hold the same key.
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
      this.depthChanged();
    }
  }

  /** Queue `key` after `ms`; an earlier pending delay for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const prev = this.delayed.get(key);
    if (prev && prev.at <= at) return;
    if (prev) this.clock.clearTimeout(prev.timer);
    const timer = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Queue `key` after its backoff (call after a failed reconcile). Returns the delay chosen. */
  addRateLimited(key: string): number {
    const ms = this.limiter.when(key, this.clock.now());
    this.addAfter(key, ms);
    return ms;
  }

  /** Clear `key`'s failure history (call after a successful reconcile). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /** The next key to work on, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      this.depthChanged();
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Mark the work on `key` finished; re-queues it if it was added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  len(): number {
    return this.queue.length;
  }

  isProcessing(key: string): boolean {
    return this.processing.has(key);
  }

  /** Stop handing out keys: pending get() calls resolve undefined and delayed adds are dropped. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const d of this.delayed.values()) this.clock.clearTimeout(d.timer);
    this.delayed.clear();
    this.queue = [];
    this.dirty.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.depthChanged();
  }

  private depthChanged(): void {
    this.onDepth?.(this.queue.length);
  }
}
