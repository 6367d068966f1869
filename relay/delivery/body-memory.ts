// How many message bytes the delivery engine holds in memory at once. Each attempt reads its
// message whole from the queue (node:sqlite returns a blob whole), so 20 connections to one
// destination each sending a 25 MiB message held 500 MB (and twice that while reading): the
// relay went from 245 to 630 MB in the large-intake bench (issue 17). A body is read when the
// bodies held add up to less than the limit (so at most the limit plus one message), or at once
// when it is small; otherwise its attempt waits for one to finish. Small mail (OTP codes) never
// waits behind large mail, and the common case costs a comparison: the size is asked of the
// queue only when the limit is reached.
//
// Since bodies past 128 KiB are stored in parts and streamed (relay/delivery/large-message.ts), an
// attempt holds only such a message's header section and one part (what it registers here), so
// 20 large attempts hold ~3 MB and rarely wait; the limit still bounds the rare message read whole
// (a header section past 1 MiB).
/** Bodies up to this size are read whatever is held (they cannot add up to much). */
export const SMALL_BODY_BYTES = 256 * 1024;

export class DeliveryBodyMemory {
  held = 0;
  private readonly limit: () => number;
  private readonly waiters: (() => void)[] = [];

  /** `limit` is read at each call (delivery.bodyMemoryBytes applies live). */
  constructor(limit: () => number) {
    this.limit = limit;
  }

  /** The common case, asked first: any body may be read now (admit() would say so without asking its size). */
  free(): boolean {
    return this.held < this.limit() && this.waiters.length === 0;
  }

  /** undefined when a body may be read now; else a promise that resolves when it may. `size` is asked only when the limit is reached. */
  admit(size: () => number | undefined): Promise<void> | undefined {
    if (this.free()) return undefined;
    if ((size() ?? 0) <= SMALL_BODY_BYTES) return undefined;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  hold(n: number): void {
    this.held += n;
    this.wake();
  }

  release(n: number): void {
    this.held = Math.max(0, this.held - n);
    this.wake();
  }

  /** One waiter at a time: it holds its body before the next is let in. */
  private wake(): void {
    if (this.held < this.limit()) this.waiters.shift()?.();
  }
}
