// A private PostgreSQL per test suite, from Debian's postgresql-15 server binaries: its own data
// directory and unix socket in a temp dir (no TCP listener by default, so suites never collide),
// trust auth on the socket. `tcp` adds a listener on one address (a node suite: the host end of the
// node's link, where pods reach it) with a password (scram-sha-256), as a cluster's database has.
// PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the Debian
// package creates (else nobody). kill() is a SIGKILL of the postmaster (a crash, recovered on start).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, writeFileSync, existsSync, mkdtempSync, rmSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface Postgres {
  /** A libpq URL over the unix socket. */
  url: string;
  /** With `tcp`: postgresql://mailfleet:PASSWORD@ADDRESS:PORT/postgres (what a pod is given). */
  tcpUrl?: string;
  dir: string;
  /** Crash: SIGKILL the postmaster and wait for it to go. */
  kill(): Promise<void>;
  /** Start again on the same data directory. */
  start(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** The processes whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the command name in parentheses (which may hold spaces).
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Still running (a zombie waiting for its new parent to reap it holds no shared memory). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function postgresAvailable(): boolean {
  return existsSync(join(BIN, 'postgres'));
}

function runAs(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    const r = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (r.status === 0) return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
  }
  throw new Error('running as root and there is no postgres or nobody user to run PostgreSQL as');
}

export async function startPostgres(opts: { tcp?: { address: string; password: string } } = {}): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-pg-'));
  const as = runAs();
  if (as) chownSync(dir, as.uid, as.gid);
  const data = join(dir, 'data');
  const init = spawnSync(join(BIN, 'initdb'), ['-D', data, '-U', 'mailfleet', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { encoding: 'utf8', ...(as ?? {}) });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  // The socket stays trusted (the test's own queries); TCP asks for the password from everyone.
  if (opts.tcp) writeFileSync(join(data, 'pg_hba.conf'), 'local all all trust\nhost all all all scram-sha-256\n');
  const port = 20000 + Math.floor(Math.random() * 20000);
  let proc: ChildProcess | undefined;
  let stderr = '';
  const url = `postgresql://mailfleet@/postgres?host=${encodeURIComponent(dir)}&port=${port}`;

  async function ready(): Promise<void> {
    const until = Date.now() + 30_000;
    for (;;) {
      const c = new pg.Client({ connectionString: url });
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => {});
        if (proc?.exitCode !== null && proc?.exitCode !== undefined) throw new Error(`postgres exited: ${stderr}`);
        if (Date.now() > until) throw new Error(`postgres did not accept connections in 30 s: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async function start(): Promise<void> {
    stderr = '';
    proc = spawn(join(BIN, 'postgres'), ['-D', data, '-k', dir, '-p', String(port), '-c', `listen_addresses=${opts.tcp?.address ?? ''}`, '-c', 'fsync=off', '-c', 'max_connections=50'], { stdio: ['ignore', 'ignore', 'pipe'], ...(as ?? {}) });
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await ready();
  }

  async function kill(): Promise<void> {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    // The backends and auxiliary processes notice the postmaster is gone and exit, but not at
    // once; a new postmaster refuses to start while any of them still holds the old shared
    // memory ("pre-existing shared memory block is still in use"), so wait for each of them.
    const children = childrenOf(p.pid!);
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    const until = Date.now() + 10_000;
    while (children.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    rmSync(join(dir, `.s.PGSQL.${port}`), { force: true });
    rmSync(join(dir, `.s.PGSQL.${port}.lock`), { force: true });
  }

  await start();
  let tcpUrl: string | undefined;
  if (opts.tcp) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`ALTER ROLE mailfleet PASSWORD ${c.escapeLiteral(opts.tcp.password)}`);
    } finally {
      await c.end();
    }
    tcpUrl = `postgresql://mailfleet:${encodeURIComponent(opts.tcp.password)}@${opts.tcp.address}:${port}/postgres`;
  }
  return {
    url, tcpUrl, dir, kill, start,
    async query(sql, params) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return await c.query(sql, params as unknown[]);
      } finally {
        await c.end();
      }
    },
    async stop() {
      const p = proc;
      if (p && p.exitCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGINT'); // fast shutdown
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
