// What a session thread (relay/intake/threads.ts) gives smtp-server in place of
// nodemailer/lib/shared. smtp-server 3.21.6 imports only getLogger from it, and the relay always
// passes `logger: false` (relay/intake/listeners.ts), so the loggers do nothing; the real module
// also imports nodemailer's fetch, and with it node:http, node:https and node:zlib: 44 more
// built-in modules compiled in every thread, ~6 MB of RSS and 2.5 MB of heap per session thread
// (issue 13). The main thread keeps the real module (delivery uses nodemailer).

type Log = (...args: unknown[]) => false;

export function getLogger(options?: { logger?: unknown }): Record<'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal', Log> {
  // A logger asked for would be silently dropped here: refuse instead.
  if (options?.logger) throw new Error('smtp-server logging is not available on a session thread (relay/intake/smtp-server-logger.ts)');
  const off: Log = () => false;
  return { trace: off, debug: off, info: off, warn: off, error: off, fatal: off };
}
