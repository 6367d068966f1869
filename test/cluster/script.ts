// Runs the shell scripts of this folder (build.sh, start.sh, node.sh, …) for cluster.ts and node.ts:
// one runner, so that both report a failing script the same way (its name, arguments, exit code and
// the tail of its stderr) and both can tell build.sh's "nothing to build with" exit apart.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const here = import.meta.dirname;

/** A script that exited non-zero; `code` is its exit code (null when killed by a signal). */
export class ScriptError extends Error {
  code: number | null;
  constructor(message: string, code: number | null) {
    super(message);
    this.code = code;
  }
}

/** Runs a script of this folder; resolves with its stdout. stderr is shown live when `loud`. */
export function script(name: string, args: string[], env: Record<string, string> = {}, loud = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(here, name), args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', loud ? 'inherit' : 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new ScriptError(`${name} ${args.join(' ')} exited ${code}\n${err.slice(-4000)}`, code));
    });
  });
}

/** The scripts print what they made (a path, a kubeconfig) on their last lines. */
export function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}

export const lastLine = (s: string): string => lastLines(s, 1);
