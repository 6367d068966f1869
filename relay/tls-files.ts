// Certificate and key read from files and read again when they change. Kubernetes updates a
// mounted Secret by swapping a symlink in its directory, so the directory is watched, with a
// slow poll as a backstop for filesystems where watching misses changes.
import { readFileSync, watch, watchFile, unwatchFile, type FSWatcher } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { StartupError, STARTUP_EXIT, briefReason } from './startup-error.ts';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  fingerprint256: string;
}

export function readTlsMaterial(certFile: string, keyFile: string): TlsMaterial {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  createSecureContext({ key, cert }); // throws on a mismatched or unreadable pair
  return { key, cert, fingerprint256: new X509Certificate(cert).fingerprint256 };
}

/** Emits 'change' (TlsMaterial) after a valid new pair is read, 'error' when a new pair is unusable. */
export class TlsFiles extends EventEmitter {
  current: TlsMaterial;
  private readonly certFile: string;
  private readonly keyFile: string;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(certFile: string, keyFile: string, pollMs = 30_000) {
    super();
    this.certFile = certFile;
    this.keyFile = keyFile;
    try {
      this.current = readTlsMaterial(certFile, keyFile);
    } catch (err) {
      // At start there is no previous pair to keep serving: a sentence, not a stack.
      throw new StartupError(
        `TLS certificate ${certFile} or key ${keyFile} cannot be used (${briefReason(err)}); check tls.certFile and tls.keyFile in the relay config and that both files are readable and belong together`,
        STARTUP_EXIT.unreadableCertificate, { cause: err });
    }
    const dirs = new Set([dirname(certFile), dirname(keyFile)]);
    for (const dir of dirs) {
      try {
        this.watchers.push(watch(dir, () => this.scheduleCheck()));
      } catch {
        // the poll below still notices changes
      }
    }
    for (const f of [certFile, keyFile]) watchFile(f, { interval: pollMs, persistent: false }, () => this.scheduleCheck());
  }

  private scheduleCheck(): void {
    // A rotation writes two files; read them once both have landed.
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), 50);
    this.timer.unref();
  }

  private check(): void {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(this.certFile, this.keyFile);
    } catch (err) {
      this.emit('error', err);
      return;
    }
    if (next.fingerprint256 === this.current.fingerprint256 && next.key.equals(this.current.key)) return;
    this.current = next;
    this.emit('change', next);
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    for (const f of [this.certFile, this.keyFile]) unwatchFile(f);
  }
}
