import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line usage: exit code 2 and a message naming the flag. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs with the errors users should see ("unknown option --prot") and a --help that prints
 * `help` and returns undefined.
 */
export function parseCommand<O extends Options>(argv: string[], options: O, help: string, allowPositionals = false) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const m = /'([^']+)'/.exec(e.message);
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${m?.[1] ?? ''}\n\n${help}`);
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`option ${m?.[1] ?? ''} needs a value\n\n${help}`);
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(`unexpected argument ${m?.[1] ?? ''}\n\n${help}`);
    throw new UsageError(`${e.message}\n\n${help}`);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    console.log(help);
    return undefined;
  }
  return parsed;
}

export function intOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name}: expected a whole number, got "${value}"`);
  return n;
}

/** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
