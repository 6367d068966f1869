#!/usr/bin/env node
// The one executable. Each subcommand is a thin shell over library code so tests call the
// library directly; this file only parses arguments and maps errors to exit codes
// (0 ok, 1 runtime failure, 2 bad usage or configuration, 3-7 a start-up failure:
// relay/startup-error.ts).
import { enableCompileCache } from 'node:module';
import { UsageError } from './args.ts';
import { StartupError, STARTUP_EXIT } from '../relay/startup-error.ts';

// Node keeps the type-stripped and compiled modules of every command here (NODE_COMPILE_CACHE,
// else the system temp dir; the image ships one warmed at build time). With a warm cache the
// TypeScript stripper (a WebAssembly module) is never loaded: the relay starts with about 25 MB
// less resident memory and sooner (bench/README.md). An unwritable directory only disables it.
if (import.meta.main && !process.env.NODE_DISABLE_COMPILE_CACHE) enableCompileCache();

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  dev: { summary: 'run a whole fleet on this machine: relay on 127.0.0.1:2525 and a capture MX', load: () => import('./commands/dev.ts') },
  relay: { summary: 'run one SMTP relay from a config file', load: () => import('./commands/relay.ts') },
  operator: { summary: 'run the Kubernetes operator', load: () => import('./commands/operator.ts') },
  queue: { summary: 'list, show, delete or retry queued messages', load: () => import('./commands/queue.ts') },
  suppressions: { summary: 'list, add, remove, import or export suppressed addresses (CSV)', load: () => import('./commands/suppressions.ts') },
  events: { summary: 'tail a relay\'s events (delivered, bounced, suppressed, …) as JSON lines', load: () => import('./commands/events.ts') },
  messages: { summary: 'show what became of a message: per recipient state and events', load: () => import('./commands/messages.ts') },
  credentials: { summary: 'add, remove or list SMTP AUTH users in a credentials file', load: () => import('./commands/credentials.ts') },
  config: { summary: 'check a relay config file', load: () => import('./commands/config.ts') },
  render: { summary: 'print what the operator would apply for SendingPool/MailDomain files (no cluster)', load: () => import('./commands/render.ts') },
  bounces: { summary: 'parse bounce and complaint messages as the bounce MX would record them', load: () => import('./commands/bounces.ts') },
  version: { summary: 'print the version', load: () => import('./commands/version.ts') },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'Usage: mailfleet <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `mailfleet <command> --help` for the options of a command.',
    '',
    'Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration,',
    `  ${STARTUP_EXIT.portInUse} a port is in use, ${STARTUP_EXIT.addressNotBindable} an address cannot be bound, ${STARTUP_EXIT.unreadableCertificate} a TLS certificate or key is unusable,`,
    `  ${STARTUP_EXIT.kubeconfig} no usable kubeconfig, ${STARTUP_EXIT.apiserverUnreachable} the Kubernetes API server does not answer.`,
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version') return main(['version']);
  const command = COMMANDS[name];
  if (!command) {
    console.error(`mailfleet: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`mailfleet ${name}: ${err.message}`);
      return 2;
    }
    if (err instanceof StartupError) {
      console.error(`mailfleet ${name}: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof Error && err.name === 'ConfigError') {
      console.error(`mailfleet ${name}: ${err.message}`);
      return 2;
    }
    console.error(`mailfleet ${name}: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => {
    // Long-running commands resolve only when they are asked to stop.
    process.exitCode = code;
  });
}
