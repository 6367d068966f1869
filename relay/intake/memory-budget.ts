// One budget for the message bytes all intake sessions hold in memory at once. A message body
// is held until its queue commit (node:sqlite binds it whole), so without a bound 20 clients
// sending 27 MB each took the relay to 466 MB, near the pod's limit. A session whose next chunk
// does not fit stops holding data, reads the rest of the body to the end and is answered
// 451 4.3.1 (try again), as the queue answers a full disk: nothing was accepted, nothing lost.
export class IntakeMemoryBudget {
  readonly limit: number;
  private usedBytes = 0;

  constructor(limitBytes: number) {
    this.limit = limitBytes;
  }

  get used(): number {
    return this.usedBytes;
  }

  /** Takes `n` bytes if they fit; false (and nothing taken) when they do not. */
  tryReserve(n: number): boolean {
    if (this.usedBytes + n > this.limit) return false;
    this.usedBytes += n;
    return true;
  }

  /** Takes `n` bytes whether or not they fit (the one copy a message makes at its end). */
  take(n: number): void {
    this.usedBytes += n;
  }

  release(n: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - n);
  }
}
