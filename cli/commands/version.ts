import { readFileSync } from 'node:fs';
import { parseCommand } from '../args.ts';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function run(argv: string[]): Promise<number> {
  if (!parseCommand(argv, {}, 'Usage: mailfleet version')) return 0;
  console.log(`mailfleet ${version()} (node ${process.versions.node})`);
  return 0;
}
