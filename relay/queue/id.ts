import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32: no I, L, O, U

/** A 16-character queue id that sorts by creation time (10 chars of milliseconds, 6 random). */
export function newQueueId(now: number): string {
  let t = Math.max(0, Math.floor(now));
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = ALPHABET[t % 32] + head;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(6);
  let tail = '';
  for (const b of rnd) tail += ALPHABET[b % 32];
  return head + tail;
}

export function isQueueId(s: string): boolean {
  return /^[0-9A-HJKMNP-TV-Z]{16}$/.test(s);
}
