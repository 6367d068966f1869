// Starts a relay in this process (or as a child process) with a fresh data dir and a dev user.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseRelayConfig } from '../../relay/config/load.ts';
import type { RelayConfigInput } from '../../relay/config/schema.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { addCredential } from '../../relay/intake/credentials.ts';
import { createLogger } from '../../relay/log.ts';
import { makeCertificate } from './certs.ts';

export const USER = 'app@example.com';
export const PASSWORD = 'correct horse battery';

export interface Workspace {
  dir: string;
  credentialsFile: string;
  tls: { certFile: string; keyFile: string };
}

export async function workspace(): Promise<Workspace> {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-test-'));
  const credentialsFile = join(dir, 'credentials');
  await addCredential(credentialsFile, USER, PASSWORD);
  return { dir, credentialsFile, tls: makeCertificate(dir) };
}

/** A config with the four listener kinds on ephemeral ports; `patch` overrides fields. */
export function baseConfig(ws: Workspace, patch: Partial<RelayConfigInput> = {}): RelayConfigInput {
  return {
    hostname: 'relay.test',
    dataDir: join(ws.dir, 'data'),
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    listeners: [
      { name: 'submission', role: 'submission', address: '127.0.0.1', port: 0, tls: 'starttls' },
      { name: 'smtps', role: 'submission', address: '127.0.0.1', port: 0, tls: 'implicit' },
      { name: 'alt', role: 'submission', address: '127.0.0.1', port: 0, tls: 'starttls', allowPlaintextAuthOnLoopback: true },
      { name: 'mx', role: 'mx', address: '127.0.0.1', port: 0, tls: 'starttls' },
    ],
    tls: ws.tls,
    auth: { credentialsFile: ws.credentialsFile },
    acceptDomains: ['bounces.example.com'],
    delivery: { enabled: false },
    // MAILFLEET_TEST_WORKER_THREADS=N runs the same suites with SMTP sessions on N worker threads
    // (relay/intake/threads.ts): what a client sees must not change.
    ...(process.env.MAILFLEET_TEST_WORKER_THREADS ? { intake: { workerThreads: Number(process.env.MAILFLEET_TEST_WORKER_THREADS) } } : {}),
    ...patch,
  };
}

export async function startTestRelay(ws: Workspace, patch: Partial<RelayConfigInput> = {}): Promise<Relay> {
  const config = parseRelayConfig(baseConfig(ws, patch), 'test');
  return startRelay(config, { logger: createLogger('silent', 'relay'), delivery: false });
}

export function writeConfig(ws: Workspace, config: RelayConfigInput, name = 'relay.yaml'): string {
  const file = join(ws.dir, name);
  writeFileSync(file, stringify(config));
  return file;
}

export const NODE = process.execPath;
export const CLI = new URL('../../cli/mailfleet.ts', import.meta.url).pathname;

export interface RelayProcess {
  child: ChildProcess;
  /** The port the listener named "alt" got. */
  port: number;
  /** The HTTP port (/metrics, /v1/stats). */
  http: number;
  exited: Promise<number | null>;
  /** Every JSON log line so far, and a 'line' event for each new one. */
  logs: Record<string, unknown>[];
  events: EventEmitter;
}

/** Starts `mailfleet relay` and resolves once its log says which port the "alt" listener got. */
export function startRelayProcess(configFile: string, options: { env?: Record<string, string>; wrap?: string[] } = {}): Promise<RelayProcess> {
  return new Promise((resolve, reject) => {
    // `wrap`: a command the relay runs under (e.g. a shell that joins a cgroup and execs it).
    const [cmd, ...args] = [...(options.wrap ?? []), NODE, CLI, 'relay', '--config', configFile];
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'inherit'], ...(options.env ? { env: { ...process.env, ...options.env } } : {}) });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const logs: Record<string, unknown>[] = [];
    const events = new EventEmitter();
    events.setMaxListeners(100);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let entry: { msg?: string; listeners?: string[]; http?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return; // not a JSON log line
      }
      logs.push(entry);
      events.emit('line', entry);
      if (entry.msg === 'relay started') {
        // The harness's 'alt' listener when the config kept it, else the first.
        const alt = entry.listeners!.find((l) => l.startsWith('alt:')) ?? entry.listeners![0]!;
        resolve({ child, port: Number(alt.split(':')[1]), http: entry.http!, exited, logs, events });
      }
    });
    child.on('exit', (code) => reject(new Error(`relay exited with ${code} before it started`)));
  });
}
