// Bearer-token check for the relay's HTTP API (stats, admin). The token lives in a file the
// operator renders from a Secret it owns. Rotation: the file may hold several tokens, one per line
// (old and new during a rotation), and it is re-read when it changes (a Secret volume swaps its
// `..data` symlink; a plain rewrite changes mtime/size), checked at most once a second so a
// request costs no file read. An unreadable or empty file keeps the previous tokens: a broken
// rotation must not lock the operator out, nor open the API.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

export type AuthResult = 'ok' | 'missing' | 'wrong';

const digest = (s: string) => createHash('sha256').update(s).digest();

export class ApiTokens {
  private tokens: Buffer[] = [];
  private fingerprint = '';
  private checkedAt = -Infinity;

  readonly file: string;
  private readonly clock: () => number;
  private readonly onError: (err: Error) => void;

  constructor(file: string, clock: () => number = Date.now, onError: (err: Error) => void = () => {}) {
    this.file = file;
    this.clock = clock;
    this.onError = onError;
    // The first read must succeed: a relay told to protect its API with a file it cannot read
    // refuses to start rather than serving the API open or closed for good.
    this.reload(true);
  }

  private reload(strict: boolean): void {
    try {
      const st = statSync(this.file); // follows the ..data symlink
      const fp = `${st.ino}:${st.mtimeMs}:${st.size}`;
      if (fp === this.fingerprint) return;
      const tokens = parseTokens(readFileSync(this.file, 'utf8'));
      if (tokens.length === 0) throw new Error(`${this.file}: no token in the file`);
      this.tokens = tokens.map(digest);
      this.fingerprint = fp;
    } catch (err) {
      if (strict) throw new Error(`http.apiTokenFile: ${(err as Error).message}`);
      this.onError(err as Error);
    }
  }

  /** Checks an Authorization header value ("Bearer <token>"). */
  check(header: string | undefined): AuthResult {
    const now = this.clock();
    if (now - this.checkedAt >= 1000) {
      this.checkedAt = now;
      this.reload(false);
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return 'missing';
    const given = digest(m[1]!);
    // Compare digests in constant time against every accepted token (no early exit).
    let ok = false;
    for (const t of this.tokens) ok = timingSafeEqual(t, given) || ok;
    return ok ? 'ok' : 'wrong';
  }
}

/** One token per line; blank lines and surrounding spaces ignored. */
export function parseTokens(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}
