// The return-path keys file (a Secret the operator owns and rotates, mounted as a file):
//   {"keys": [{"id": "c", "secret": "<base64, ≥ 16 bytes>"},
//             {"id": "b", "secret": "…", "acceptUntil": "2026-12-20T00:00:00Z"}]}
// The first key signs; the others only verify, until their acceptUntil (the rotation grace).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ReturnPathKey } from './token.ts';

const KeyFileSchema = z
  .object({
    keys: z
      .array(
        z
          .object({
            id: z.string().regex(/^[0-9a-hjkmnp-tv-z]$/, 'one base32 character (0-9, a-z without i, l, o, u)'),
            secret: z.base64().refine((s) => Buffer.from(s, 'base64').length >= 16, 'at least 16 bytes (base64)'),
            acceptUntil: z.iso.datetime({ offset: true }).optional(),
            // When the operator made it (its rotation clock); the relay does not use it.
            createdAt: z.iso.datetime({ offset: true }).optional(),
          })
          .strict(),
      )
      .min(1, 'at least one key (the first one signs)'),
  })
  .strict();

export class ReturnPathKeyError extends Error {
  constructor(file: string, problems: string[]) {
    super(`${file}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

export function parseReturnPathKeys(text: string, source = 'return-path keys'): ReturnPathKey[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ReturnPathKeyError(source, [`not JSON (${(err as Error).message})`]);
  }
  const r = KeyFileSchema.safeParse(json);
  if (!r.success) throw new ReturnPathKeyError(source, r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  const ids = new Set<string>();
  for (const k of r.data.keys) {
    if (ids.has(k.id)) throw new ReturnPathKeyError(source, [`key id "${k.id}" appears twice`]);
    ids.add(k.id);
  }
  return r.data.keys.map((k) => ({ id: k.id, secret: Buffer.from(k.secret, 'base64'), ...(k.acceptUntil ? { acceptUntil: Date.parse(k.acceptUntil) } : {}) }));
}

export function loadReturnPathKeys(file: string): ReturnPathKey[] {
  return parseReturnPathKeys(readFileSync(file, 'utf8'), file);
}
