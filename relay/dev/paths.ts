import { join } from 'node:path';

/** Where `mailfleet dev` keeps its queue, credentials and certificate. */
export function devDataDir(): string {
  return process.env.MAILFLEET_DEV_DIR ?? join(process.cwd(), '.dev');
}
