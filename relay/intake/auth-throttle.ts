// Failed AUTH attempts per client address in a sliding window. Pure, with an injectable clock.
export class AuthThrottle {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly clock: () => number;
  private readonly failures = new Map<string, number[]>();

  constructor(max: number, windowSeconds: number, clock: () => number = Date.now) {
    this.max = max;
    this.windowMs = windowSeconds * 1000;
    this.clock = clock;
  }

  /** Seconds until this address may try again, or 0 when it may try now. */
  blockedFor(address: string): number {
    const now = this.clock();
    const list = this.prune(address, now);
    if (list.length < this.max) return 0;
    return Math.ceil((list[0]! + this.windowMs - now) / 1000);
  }

  recordFailure(address: string): void {
    const list = this.prune(address, this.clock());
    list.push(this.clock());
    this.failures.set(address, list);
    // Bound memory under a spray of addresses: forget the oldest entries.
    if (this.failures.size > 100_000) {
      const first = this.failures.keys().next().value;
      if (first !== undefined) this.failures.delete(first);
    }
  }

  recordSuccess(address: string): void {
    this.failures.delete(address);
  }

  private prune(address: string, now: number): number[] {
    const list = (this.failures.get(address) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length === 0) this.failures.delete(address);
    return list;
  }
}
