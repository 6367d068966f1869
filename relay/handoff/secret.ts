// The pool's hand-off secret (handoff.secretFile): the password a relay presents to a peer, and
// what a peer accepts from the hand-off user. The operator points it at the pool's relay API token
// (operator/observe/token.ts: a random per-pool Secret already in every relay); during a rotation
// the file holds the old and the new token on two lines: a relay presents the newest (last) line
// and accepts any. Read at each use (the kubelet replaces the file in place; hand-off sessions are
// pooled, so this is once per connection, not per message).
import { readFile } from 'node:fs/promises';
import { timingSafeEqual, createHash } from 'node:crypto';

/** The file's secrets, one a line; empty when the file is missing or empty (hand-offs are then refused). */
export async function readHandoffSecrets(file: string | undefined): Promise<string[]> {
  if (!file) return [];
  try {
    return (await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  } catch {
    return [];
  }
}

/** The one a relay presents: the newest line. */
export function presentedSecret(secrets: readonly string[]): string | undefined {
  return secrets.at(-1);
}

/** Constant-time comparison of a presented password with each secret (digests: equal lengths); short secrets never match. */
export function secretMatches(presented: string, secrets: readonly string[]): boolean {
  const a = createHash('sha256').update(presented).digest();
  let ok = false;
  for (const s of secrets) {
    if (s.length < 16) continue;
    if (timingSafeEqual(a, createHash('sha256').update(s).digest())) ok = true;
  }
  return ok;
}
