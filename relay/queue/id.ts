import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U
const RANDOM_SPACE = 2 ** 30; // 6 base32 characters

let lastMs = -1;
let lastRandom = 0;

/**
 * A 16-character queue id that sorts by creation time: 10 characters of milliseconds, 6 of a
 * random number that the next id of the same millisecond increments (as ULID does), so ids of
 * one process never collide however many share a millisecond (a test clock, a burst), and a
 * clock stepped back does not reorder them.
 */
export function newQueueId(now: number): string {
  let t = Math.max(0, Math.floor(now));
  let r: number;
  if (t <= lastMs) {
    t = lastMs;
    r = lastRandom + 1;
    if (r >= RANDOM_SPACE) {
      t = lastMs + 1;
      r = randomNumber();
    }
  } else {
    r = randomNumber();
  }
  lastMs = t;
  lastRandom = r;
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = ALPHABET[t % 32] + head;
    t = Math.floor(t / 32);
  }
  let tail = '';
  for (let i = 0; i < 6; i++) {
    tail = ALPHABET[r % 32] + tail;
    r = Math.floor(r / 32);
  }
  return head + tail;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(s);
}

// Random bytes drawn 1 KiB at a time: one call into the CSPRNG per 256 ids, not one per id.
// Only the first id of a millisecond draws; half the space is left for its successors.
const pool = new Uint32Array(256);
let used = pool.length;
function randomNumber(): number {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  return pool[used++]! % (RANDOM_SPACE / 2);
}
