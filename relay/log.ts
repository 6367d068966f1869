import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** JSON logs on stdout (or a given stream); one line per event, fields not prose. */
export function createLogger(level: string, component: string, destination?: DestinationStream): Logger {
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
