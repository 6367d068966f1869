// Event ids: 26 characters of Crockford-style base32 (130 bits), two kinds with one shape.
// - newEventId(): events this relay makes itself (accepted, attempts, suppressed, expired). A random
//   80-bit prefix drawn once per process + a 50-bit counter: unique across restarts and relays
//   (two processes share a prefix with probability ~n²/2⁸¹), sub-microsecond, and increasing within
//   a process (the (queue_id, id) index is appended to). The event journal (relay/events/journal.ts)
//   keeps an event and its id across a kill -9, so nothing needs to re-derive an id from content;
//   an attempt really repeated after a crash is a second event (it happened twice).
// - eventId(parts): events made from a report someone sent us (a DSN, an ARF report, an unsubscribe):
//   SHA-256 over what they are about, so the same report received twice is one event. Rare: the
//   hash's few µs do not matter there, as they did twice per message for the relay's own events
//   (bench/README.md, 2026-12-07).
import { hash, randomBytes } from 'node:crypto';

const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';

/** The first `chars` base32 characters of `bytes`, 5 bits at a time. */
function base32(bytes: Uint8Array, chars: number): string {
  const out: string[] = new Array(chars);
  let bits = 0;
  let value = 0;
  let n = 0;
  for (let i = 0; n < chars; i++) {
    value = ((value << 8) | bytes[i]!) & 0xffff;
    bits += 8;
    while (bits >= 5 && n < chars) {
      out[n++] = BASE32[(value >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
  }
  return out.join('');
}

/** A stable event id: 26 characters of base32 of SHA-256 over what the event is about. */
export function eventId(parts: readonly (string | number | null | undefined)[]): string {
  // One-shot hash: a Hash object per event was 3 % of the relay's busy time under load.
  return base32(hash('sha256', parts.map((p) => String(p ?? '')).join('\0'), 'buffer'), 26);
}

/** 16 characters = 80 random bits, drawn once per process (module instance). */
const PREFIX = base32(randomBytes(10), 16);
const COUNTER_CHARS = 10; // 50 bits: 10¹⁵ events per process before it would wrap
let counter = 0;

/** `n` as `chars` base32 digits, most significant first. */
export function counterDigits(n: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = BASE32[n % 32]! + out;
    n = Math.floor(n / 32);
  }
  return out;
}

/** The last two digits of a counter, all 1,024 of them. */
const LOW_PAIRS = Array.from({ length: 1024 }, (_, i) => BASE32[i >> 5]! + BASE32[i & 31]!);
/** PREFIX + the counter's first eight digits, made again only every 1,024 events. */
let head = '';
let headOf = -1;

/**
 * A fresh event id: this process's random prefix + its next counter value (10 base32 digits).
 * Two events a message: the digits as 10 one-character concatenations each were ~0.2 % of the
 * relay's CPU; the first 24 characters change once per 1,024 ids and the last two come from a table.
 */
export function newEventId(): string {
  const n = counter++;
  const high = Math.floor(n / 1024);
  if (high !== headOf) {
    headOf = high;
    head = PREFIX + counterDigits(high, COUNTER_CHARS - 2);
  }
  return head + LOW_PAIRS[n % 1024]!;
}
