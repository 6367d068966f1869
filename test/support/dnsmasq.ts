// A private dnsmasq per test suite, on a free loopback UDP/TCP port. Every name under the given
// local zones is answered from the records below only (NXDOMAIN otherwise), so tests never touch
// the machine's resolver or the internet.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';

export interface DnsRecords {
  /** Zones answered locally (NXDOMAIN for unknown names), e.g. ["test"]. */
  localZones?: string[];
  mx?: { domain: string; host: string; preference: number }[];
  /** A and AAAA records (exact names; no wildcard). */
  a?: { name: string; address: string }[];
  txt?: { name: string; text: string | string[] }[];
  ptr?: { name: string; target: string }[];
  /** Extra raw dnsmasq options. */
  extra?: string[];
}

export interface Dnsmasq {
  port: number;
  /** "127.0.0.1:PORT", for Resolver.setServers and config.delivery.dnsServers. */
  server: string;
  address: string;
  stop(): Promise<void>;
}

async function freeUdpPort(address: string): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, address, () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function dnsmasqArgs(records: DnsRecords, address: string, port: number): string[] {
  const args = [
    '--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll',
    `--listen-address=${address}`, '--bind-interfaces', `--port=${port}`, '--pid-file=',
    // Short TTLs keep caching tests quick; 0 would disable caching altogether in some resolvers.
    '--local-ttl=60', '--log-facility=-',
  ];
  for (const z of records.localZones ?? ['test']) args.push(`--local=/${z}/`);
  for (const m of records.mx ?? []) args.push(`--mx-host=${m.domain},${m.host},${m.preference}`);
  for (const a of records.a ?? []) args.push(`--host-record=${a.name},${a.address}`);
  for (const t of records.txt ?? []) {
    const parts = Array.isArray(t.text) ? t.text : [t.text];
    args.push(`--txt-record=${t.name},${parts.join(',')}`);
  }
  for (const p of records.ptr ?? []) args.push(`--ptr-record=${p.name},${p.target}`);
  args.push(...(records.extra ?? []));
  return args;
}

async function answers(server: string): Promise<boolean> {
  const r = new Resolver({ timeout: 200, tries: 1 });
  r.setServers([server]);
  try {
    await r.resolve4('probe.invalid-name-for-readiness.test');
    return true;
  } catch (err) {
    // NXDOMAIN or NODATA means a DNS server replied: it is up.
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOTFOUND' || code === 'ENODATA' || code === 'EREFUSED';
  }
}

/** `port` 0 (default) picks a free one; a fixed one (53, for a resolv.conf) is tried once. */
export async function startDnsmasq(records: DnsRecords, address = '127.0.0.1', fixedPort = 0): Promise<Dnsmasq> {
  for (let attempt = 0; attempt < (fixedPort ? 1 : 5); attempt++) {
    const port = fixedPort || (await freeUdpPort(address));
    const child: ChildProcess = spawn('/usr/sbin/dnsmasq', dnsmasqArgs(records, address, port), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const server = `${address}:${port}`;
    let up = false;
    // Poll for readiness (a reply to a probe), for up to 10 s: the socket is bound a few ms after spawn.
    const deadline = Date.now() + 10_000;
    while (child.exitCode === null && Date.now() < deadline) {
      if (await answers(server)) {
        up = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (up) {
      return {
        port,
        server,
        address,
        async stop() {
          if (child.exitCode === null) {
            child.kill('SIGTERM');
            await exited;
          }
        },
      };
    }
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    // The port was taken between probe and bind (another suite): try another one.
    if (fixedPort || !/Address already in use|address in use/i.test(stderr)) throw new Error(`dnsmasq on ${server} did not answer within 10 s (exit ${child.exitCode}): ${stderr}`);
  }
  throw new Error('dnsmasq: no free port after 5 attempts');
}

/**
 * A network namespace whose /etc/resolv.conf points at a dnsmasq on its own 127.0.0.1:53, for
 * tools that only read /etc/resolv.conf (dkimpy's dkimverify, opendkim-testmsg). Needs root
 * (CAP_SYS_ADMIN); callers skip when `available` is false.
 */
export interface NetnsDns {
  name: string;
  /** Runs a command inside the namespace, with stdin; resolves with exit code and output. */
  run(cmd: string[], stdin?: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startNetnsDns(records: DnsRecords): Promise<NetnsDns> {
  const { mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { execFileSync } = await import('node:child_process');
  const name = `mfdns${process.pid}${Math.floor(Math.random() * 1e4)}`;
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  const etc = `/etc/netns/${name}`;
  const cleanup = () => {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
    } catch {}
    rmSync(etc, { recursive: true, force: true });
  };
  try {
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
    mkdirSync(etc, { recursive: true });
    writeFileSync(`${etc}/resolv.conf`, 'nameserver 127.0.0.1\n');
  } catch (err) {
    cleanup();
    throw err;
  }
  const child = spawn('ip', ['netns', 'exec', name, '/usr/sbin/dnsmasq', ...dnsmasqArgs(records, '127.0.0.1', 53)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      stderr += d;
      // dnsmasq logs this line once its sockets are bound.
      if (/started, version/.test(stderr)) resolve();
    });
    child.once('exit', () => reject(new Error(`dnsmasq in ${name} exited: ${stderr}`)));
  }).catch((err) => {
    cleanup();
    throw err;
  });
  return {
    name,
    run(cmd, stdin) {
      return new Promise((resolve) => {
        const p = spawn('ip', ['netns', 'exec', name, ...cmd], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let err = '';
        p.stdout!.on('data', (d) => (stdout += d));
        p.stderr!.on('data', (d) => (err += d));
        p.once('close', (code) => resolve({ code, stdout, stderr: err }));
        p.stdin!.end(stdin ?? Buffer.alloc(0));
      });
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      cleanup();
    },
  };
}
