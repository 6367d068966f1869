// Bodies of mail taken at birth (commit.ts hands it to the delivery engine after the fsync), kept
// in memory for the engine's first read instead of reading back from SQLite what was written a
// moment ago. The read back was a copy SQLite makes from the overflow pages and a second one
// node:sqlite makes into a fresh ArrayBuffer (3 % of the relay at 1 KiB; at 50 KiB ~35 µs and
// 50 KiB of garbage that only a full collection frees; bench/README.md, "Per KiB of body").
//
// Only what is already durable is here (put after the fsync), and it is the same bytes the
// commit bound: delivery of a message taken from here is delivery of the stored message. A
// message the engine never opens (its recipients all suppressed, a shutdown) is dropped oldest
// first once MAX_BYTES or MAX_ENTRIES is passed: the store still has it.

/** What this may hold at once: mail taken at birth is opened within a turn or two. */
export const MAX_BYTES = 4 * 1024 * 1024;
const MAX_ENTRIES = 512;

export class FreshBodies {
  private readonly bodies = new Map<string, Uint8Array>();
  private bytes = 0;

  /** A body just made durable, for the engine's first read. */
  put(id: string, body: Uint8Array): void {
    if (body.length > MAX_BYTES || this.bodies.has(id)) return;
    this.bodies.set(id, body);
    this.bytes += body.length;
    // Oldest first (a Map iterates in insertion order).
    for (const [old, b] of this.bodies) {
      if (this.bytes <= MAX_BYTES && this.bodies.size <= MAX_ENTRIES) break;
      this.bodies.delete(old);
      this.bytes -= b.length;
    }
  }

  /** The body once (a second group of the same message reads the store), or undefined. */
  take(id: string): Uint8Array | undefined {
    const b = this.bodies.get(id);
    if (b === undefined) return undefined;
    this.bodies.delete(id);
    this.bytes -= b.length;
    return b;
  }

  /** A message deleted or rewritten in the store (administration): its copy goes too. */
  forget(id: string): void {
    this.take(id);
  }

  get size(): number {
    return this.bodies.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }
}
