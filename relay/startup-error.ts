// A failure to start, told in one sentence that names the thing at fault and what to do, with
// an exit code of its own so scripts and init systems can tell the cases apart. The CLI prints
// `mailfleet <command>: <message>` and exits with `exitCode`; no stack trace reaches the user.
//
// Exit codes (also in `mailfleet --help`): 0 ok, 1 runtime failure, 2 bad usage or configuration,
// and for start-up failures:
export const STARTUP_EXIT = {
  /** A port is held by another process (EADDRINUSE). */
  portInUse: 3,
  /** An address is not on this machine, or a port below 1024 without the privilege to bind it. */
  addressNotBindable: 4,
  /** A TLS certificate or key cannot be read or does not form a usable pair. */
  unreadableCertificate: 5,
  /** No kubeconfig where one was named, or it cannot be read or parsed. */
  kubeconfig: 6,
  /** The Kubernetes API server does not answer. */
  apiserverUnreachable: 7,
} as const;

export class StartupError extends Error {
  override name = 'StartupError';
  readonly exitCode: number;
  /** The listen() that failed, when this is a bind failure (a caller may add its own hint). */
  readonly target: BindTarget | undefined;
  constructor(message: string, exitCode: number, options?: { cause?: unknown; target?: BindTarget }) {
    super(message, options);
    this.exitCode = exitCode;
    this.target = options?.target;
  }
}

export interface BindTarget {
  /** What was to listen, as a user knows it: `SMTP listener "submission"`, `capture MX`. */
  what: string;
  address: string | undefined;
  port: number;
  /** What to do about a taken port (a flag or config field); a general hint when absent. */
  portHint?: string;
}

/** The StartupError for a failed listen(), or the error itself when it is not a bind failure. */
export function bindError(err: unknown, t: BindTarget): Error {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = t.address ? `${t.address}:${t.port}` : `port ${t.port}`;
  if (code === 'EADDRINUSE') {
    return new StartupError(
      `port ${t.port} (${t.what}) is in use${t.address ? ` on ${t.address}` : ''}; ${t.portHint ?? 'stop the process holding it or choose another port'}`,
      STARTUP_EXIT.portInUse, { cause: err, target: t });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new StartupError(
      `address ${t.address ?? '?'} (${t.what}) is not on this machine; add it to an interface or configure an address this host has`,
      STARTUP_EXIT.addressNotBindable, { cause: err, target: t });
  }
  if (code === 'EACCES') {
    return new StartupError(
      `${where} (${t.what}) needs privileges to bind; use a port above 1023 or grant CAP_NET_BIND_SERVICE`,
      STARTUP_EXIT.addressNotBindable, { cause: err, target: t });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The same bind failure with the hint of the caller that knows better (the dev command knows the
 * flag that moves a port); any other error is returned as it is.
 */
export function withPortHint(err: unknown, hints: Record<string, string>): unknown {
  if (!(err instanceof StartupError) || !err.target || err.exitCode !== STARTUP_EXIT.portInUse) return err;
  const hint = hints[err.target.what];
  return hint ? bindError(err.cause, { ...err.target, portHint: hint }) : err;
}

/** Control characters and overlong text out of a message that quotes something from outside. */
export function briefReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
