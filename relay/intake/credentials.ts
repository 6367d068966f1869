// The SMTP AUTH credentials file: one `username:hash` line per user, `#` comments allowed; an
// optional third field gives the user's default message class (`username:hash:otp`), read by the
// scheduler's lanes. Hashes contain no colon, so old two-field files read the same.
// Hashes are scrypt in a self-describing form: scrypt$N$r$p$salt$key (base64). The relay reads
// the file at start and again whenever it changes; `mailfleet credentials` edits it.
import { scrypt as scryptCb, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { readFile, writeFile, rename, open } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { MESSAGE_CLASSES_TEXT, isMessageClass, type MessageClass } from '../message-class.ts';

const N = 16384;
const R = 8;
const P = 1;

function scrypt(password: string, salt: Buffer, n: number, r: number, p: number, len: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, len, { N: n, r, p, maxmem: 128 * n * r * 2 }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, N, R, P, 32);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!n || !r || !p || expected.length === 0) return false;
  const key = await scrypt(password, salt, n, r, p, expected.length);
  return timingSafeEqual(key, expected);
}

/** A credential's default message class (the file's third field). */
export type CredentialClass = MessageClass;

/** Splits a file entry's value (`hash` or `hash:class`). */
export function splitEntry(value: string): { hash: string; class: CredentialClass | undefined } {
  const colon = value.lastIndexOf(':');
  if (colon < 0) return { hash: value, class: undefined };
  const cls = value.slice(colon + 1);
  return { hash: value.slice(0, colon), class: isMessageClass(cls) ? cls : undefined };
}

export function parseCredentials(text: string, source: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`${source}:${i + 1}: expected "username:scrypt$..." `);
    const value = line.slice(colon + 1);
    const extra = value.lastIndexOf(':');
    if (extra >= 0 && !isMessageClass(value.slice(extra + 1))) {
      throw new Error(`${source}:${i + 1}: unknown message class "${value.slice(extra + 1)}" (use ${MESSAGE_CLASSES_TEXT})`);
    }
    users.set(line.slice(0, colon), value);
  });
  return users;
}

function serialize(users: Map<string, string>): string {
  const lines = ['# mailfleet SMTP credentials: username:scrypt$N$r$p$salt$key[:class] (edit with `mailfleet credentials`)'];
  for (const [u, h] of [...users].sort(([a], [b]) => a.localeCompare(b))) lines.push(`${u}:${h}`);
  return lines.join('\n') + '\n';
}

async function readUsers(file: string): Promise<Map<string, string>> {
  try {
    return parseCredentials(await readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
}

/** Writes the file atomically (temp file, fsync, rename) so a running relay never reads half of it. */
async function writeUsers(file: string, users: Map<string, string>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, serialize(users), { mode: 0o600 });
  const fh = await open(tmp, 'r');
  await fh.sync();
  await fh.close();
  await rename(tmp, file);
}

export function validUsername(name: string): boolean {
  return /^[A-Za-z0-9._@+-]{1,128}$/.test(name);
}

export async function addCredential(file: string, username: string, password: string, cls?: CredentialClass): Promise<'added' | 'updated'> {
  if (!validUsername(username)) throw new Error(`username "${username}": use 1-128 of A-Z a-z 0-9 . _ @ + -`);
  if (password.length < 8) throw new Error('password: at least 8 characters');
  const users = await readUsers(file);
  const existed = users.has(username);
  // A new password keeps the user's class unless a new one is given.
  const keep = cls ?? splitEntry(users.get(username) ?? '').class;
  const hash = await hashPassword(password);
  users.set(username, keep ? `${hash}:${keep}` : hash);
  await writeUsers(file, users);
  return existed ? 'updated' : 'added';
}

export async function removeCredential(file: string, username: string): Promise<boolean> {
  const users = await readUsers(file);
  if (!users.delete(username)) return false;
  await writeUsers(file, users);
  return true;
}

export async function listCredentials(file: string): Promise<string[]> {
  return [...(await readUsers(file)).keys()].sort();
}

/**
 * Verifies AUTH attempts against the current file. A scrypt check costs ~50 ms of CPU; a client
 * that authenticates on every connection would pay it every time, so successful checks are
 * remembered by a digest of (user, password, hash) until the file changes.
 */
export class CredentialStore {
  private users = new Map<string, string>();
  private verified = new Set<string>();

  replace(users: Map<string, string>): void {
    this.users = users;
    this.verified.clear();
  }

  get size(): number {
    return this.users.size;
  }

  /** The user's default message class from the file's third field, if any. */
  classOf(username: string): CredentialClass | undefined {
    const v = this.users.get(username);
    return v === undefined ? undefined : splitEntry(v).class;
  }

  async verify(username: string, password: string): Promise<boolean> {
    const entry = this.users.get(username);
    const hash = entry === undefined ? undefined : splitEntry(entry).hash;
    if (!hash) {
      // Spend the same time as a real check so a timing probe cannot list users.
      await verifyPassword(password, 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=');
      return false;
    }
    const digest = createHash('sha256').update(username).update('\0').update(password).update('\0').update(hash).digest('base64');
    if (this.verified.has(digest)) return true;
    const ok = await verifyPassword(password, hash);
    if (ok) this.verified.add(digest);
    return ok;
  }

  async load(file: string): Promise<void> {
    this.replace(await readUsers(file));
  }
}
