import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U

/** A 16-character queue id that sorts by creation time (10 chars of milliseconds, 6 random). */
export function newQueueId(now: number): string {
  let t = Math.max(0, Math.floor(now));
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = ALPHABET[t % 32] + head;
    t = Math.floor(t / 32);
  }
  let tail = '';
  for (let i = 0; i < 6; i++) tail += ALPHABET[randomByte() % 32];
  return head + tail;
}

// Random bytes drawn 1 KiB at a time: one call into the CSPRNG per 170 ids, not one per id.
const pool = Buffer.alloc(1024);
let used = pool.length;
function randomByte(): number {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  return pool[used++]!;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(s);
}
