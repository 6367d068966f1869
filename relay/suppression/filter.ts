// A Bloom filter of addresses: "certainly not on the list" without a database read. Every
// delivery asks the suppression list about each recipient, and nearly every answer is "no";
// answering that from memory took a SQLite read per recipient off the per-message path
// (about 6 % of the relay's busy time at 1 KiB, bench/README.md). A false "maybe" only costs the
// read the filter saves; a false "no" cannot happen for an address that was added. Pure.

/** Bits per expected entry: with K_HASHES, about 1 % false "maybe" at capacity. */
const BITS_PER_ENTRY = 10;
const K_HASHES = 7;
/** The smallest filter (an empty list still answers from memory). */
const MIN_CAPACITY = 1024;

export class AddressFilter {
  private readonly bits: Uint32Array;
  private readonly nbits: number;
  /** Entries this filter was sized for; past it, the false-maybe rate climbs (see full). */
  readonly capacity: number;
  size = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(MIN_CAPACITY, Math.ceil(capacity));
    this.nbits = this.capacity * BITS_PER_ENTRY;
    this.bits = new Uint32Array(Math.ceil(this.nbits / 32));
  }

  /** Twice as many entries as it was sized for: time to build a bigger one. */
  get full(): boolean {
    return this.size > 2 * this.capacity;
  }

  add(address: string): void {
    hashes(address);
    const h1 = H1;
    const h2 = H2;
    for (let i = 0; i < K_HASHES; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % this.nbits;
      this.bits[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.size++;
  }

  /** False: the address was never added. True: it may have been. */
  mayContain(address: string): boolean {
    hashes(address);
    const h1 = H1;
    const h2 = H2;
    for (let i = 0; i < K_HASHES; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % this.nbits;
      if ((this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** hashes()'s results: read at once by its caller (one thread, no await between), so no array per lookup. */
let H1 = 0;
let H2 = 0;

/**
 * Two independent 32-bit hashes of the string (FNV-1a and a multiplicative one over the UTF-16
 * code units), for double hashing (Kirsch and Mitzenmacher): h1 + i·h2 stands for k hashes.
 * Left in H1 and H2.
 */
function hashes(s: string): void {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // An odd step visits distinct bits for every i.
  H1 = a >>> 0;
  H2 = (b | 1) >>> 0;
}
