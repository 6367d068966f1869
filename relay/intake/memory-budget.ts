// One budget for the message bytes all intake sessions hold in memory at once. A message body
// is held until its queue commit (node:sqlite binds it whole), so without a bound 20 clients
// sending 27 MB each took the relay to 466 MB, near the pod's limit. A session whose next chunk
// does not fit stops holding data, reads the rest of the body to the end and is answered
// 451 4.3.1 (try again), as the queue answers a full disk: nothing was accepted, nothing lost.
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

  release(n: number): void {
    const sub = BigInt(n);
    for (;;) {
      const cur = Atomics.load(this.count, 0);
      const next = cur > sub ? cur - sub : 0n;
      if (Atomics.compareExchange(this.count, 0, cur, next) === cur) return;
    }
  }
}
