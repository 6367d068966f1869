// One budget for the message bytes all intake sessions hold in memory at once. A message body
// is held until its queue commit (node:sqlite binds it whole), so without a bound 20 clients
// sending 27 MB each took the relay to 466 MB, near the pod's limit. Small bodies take it chunk
// by chunk as they arrive; a body that is large or does not fit goes to disk and is stored in
// parts from there, taking nothing (relay/queue/body-parts.ts); one read back whole (a header
// section past 1 MiB) takes its copy at the end, waiting for room (incoming-body.ts). Only a body
// that waited too long is answered 451 4.3.1 (try again), as the queue answers a full disk.
// With SMTP sessions on several threads (relay/intake/threads.ts) the count lives in shared
// memory, so every thread draws from the same budget (Atomics; no message to the main thread).
export class IntakeMemoryBudget {
  readonly limit: number;
  private readonly count: BigInt64Array;

  /** `shared`: the memory of a budget made on another thread (its `.shared`), to draw from the same count. */
  constructor(limitBytes: number, shared?: SharedArrayBuffer) {
    this.limit = limitBytes;
    this.count = new BigInt64Array(shared ?? new SharedArrayBuffer(8));
  }

  /** Hand this to another thread's `new IntakeMemoryBudget(limit, shared)`. */
  get shared(): SharedArrayBuffer {
    return this.count.buffer as SharedArrayBuffer;
  }

  get used(): number {
    return Number(Atomics.load(this.count, 0));
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) when they do not. */
  tryReserve(n: number): boolean {
    const add = BigInt(n);
    const limit = BigInt(this.limit);
    for (;;) {
      const cur = Atomics.load(this.count, 0);
      if (cur + add > limit) return false;
      if (Atomics.compareExchange(this.count, 0, cur, cur + add) === cur) return true;
    }
  }

  /** Takes `n` bytes whether or not they fit (the one copy a message makes at its end). */
  take(n: number): void {
    Atomics.add(this.count, 0, BigInt(n));
  }

  /**
   * Takes `n` bytes once they fit, waiting up to `ms` (on any thread's release); false when they
   * did not come in time. A request larger than the whole budget is let through when nothing else
   * is held, so one large message is never refused for ever.
   */
  async reserveWithin(n: number, ms: number): Promise<boolean> {
    const add = BigInt(n);
    const limit = BigInt(this.limit);
    const deadline = Date.now() + ms;
    for (;;) {
      const cur = Atomics.load(this.count, 0);
      if (cur === 0n || cur + add <= limit) {
        if (Atomics.compareExchange(this.count, 0, cur, cur + add) === cur) return true;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const waited = Atomics.waitAsync(this.count, 0, cur, left);
      if (waited.async) await waited.value;
    }
  }

  release(n: number): void {
    if (n === 0) return;
    const sub = BigInt(n);
    for (;;) {
      const cur = Atomics.load(this.count, 0);
      const next = cur > sub ? cur - sub : 0n;
      if (Atomics.compareExchange(this.count, 0, cur, next) === cur) break;
    }
    // Wakes the bodies waiting for room (reserveWithin), on this thread or another.
    Atomics.notify(this.count, 0);
  }
}
