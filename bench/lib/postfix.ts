// A private Postfix instance on loopback: its own config_directory and queue_directory under a
// temporary directory, started with `postfix -c DIR start`. It relays everything to one
// relayhost (the sink), does no DNS and no local delivery, and keeps Postfix's default
// durability (cleanup fsyncs the queue file before smtpd answers 250).
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { LOOPBACK, onInterrupt, sleep, waitForSmtp } from './util.ts';
import { joinGroupShell, type CpuGroup } from './cgroup.ts';

export const POSTFIX = '/usr/sbin/postfix';
export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

/** Installs Debian's postfix (unconfigured) when its programs are missing. */
export function ensurePostfix(log: (s: string) => void): void {
  if (existsSync(POSTFIX) && existsSync(SMTP_SINK) && existsSync(SMTP_SOURCE)) return;
  if (userInfo().uid !== 0) throw new Error('Postfix is not installed and the bench is not root: apt-get install postfix first');
  log('installing postfix (debconf: No configuration) ...');
  execFileSync('sh', ['-c', 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections'], { stdio: 'inherit' });
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'postfix'], { stdio: 'inherit', env });
  if (install().status !== 0) {
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    if (install().status !== 0) throw new Error('apt-get install postfix failed');
  }
  if (!existsSync(SMTP_SINK)) throw new Error(`${SMTP_SINK} missing after installing postfix`);
}

export interface PostfixInstance {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/**
 * Postfix reports fatal errors of the `postfix` command only to syslog, or to stderr when that is a
 * terminal; `script` gives it one so that a broken config says why.
 */
function postfixCommand(configDir: string, verb: string, shellPrefix = ''): { status: number; output: string } {
  const r = spawnSync('script', ['-qec', `${shellPrefix}${POSTFIX} -c ${configDir} ${verb}`, '/dev/null'], { encoding: 'utf8' });
  return { status: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * `cpuGroup`: the accounting group (bench/lib/cgroup.ts) `postfix start` runs in; master and every
 * daemon it spawns (smtpd, cleanup, qmgr, smtp, trivial-rewrite, postlogd ...) inherit it.
 */
export async function startPostfix(opts: { dir: string; port: number; relayPort: number; cpuGroup?: CpuGroup }): Promise<PostfixInstance> {
  const { dir, port, relayPort } = opts;
  const etc = join(dir, 'etc');
  const spool = join(dir, 'spool');
  const data = join(dir, 'data');
  for (const d of [etc, spool, data]) mkdirSync(d, { recursive: true });
  const pw = userInfo().uid === 0 ? execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim() : undefined;
  if (pw) chownSync(data, Number(pw), -1);
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${spool}`,
    `data_directory = ${data}`,
    'myhostname = postfix-bench.test',
    'mydomain = bench.test',
    'myorigin = $myhostname',
    // No local delivery: nothing is local, and the local transport is an error.
    'mydestination =',
    'local_recipient_maps =',
    'alias_maps =',
    'alias_database =',
    'local_transport = error:local delivery disabled',
    `inet_interfaces = ${LOOPBACK}`,
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    `relayhost = [${LOOPBACK}]:${relayPort}`,
    // No DNS anywhere.
    'smtp_dns_support_level = disabled',
    'disable_dns_lookups = yes',
    'smtp_host_lookup = native',
    'biff = no',
    `maillog_file_prefixes = ${dir}`,
    `maillog_file = ${join(dir, 'maillog')}`,
    '',
  ].join('\n');
  writeFileSync(join(etc, 'main.cf'), main);
  // Debian's master.cf with the smtpd on our port and no chroot (the chroot would need copies of /etc files).
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((line) => {
      if (/^smtp\s+inet\s/.test(line)) return line.replace(/^smtp\s+inet\s+(\S+)\s+(\S+)\s+\S+/, `${LOOPBACK}:${port} inet $1 $2 n`);
      const m = /^(\S+\s+(?:unix|inet|fifo|pass|unix-dgram)\s+\S+\s+\S+\s+)y(\s.*)$/.exec(line);
      return m ? `${m[1]}n${m[2]}` : line;
    })
    .join('\n');
  if (!master.includes(`${LOOPBACK}:${port} inet`)) throw new Error('could not find the smtp inet service in /etc/postfix/master.cf');
  writeFileSync(join(etc, 'master.cf'), master);
  for (const f of ['dynamicmaps.cf']) {
    if (existsSync(join('/etc/postfix', f))) writeFileSync(join(etc, f), readFileSync(join('/etc/postfix', f)));
  }
  const check = postfixCommand(etc, 'check');
  if (check.status !== 0) throw new Error(`postfix check failed: ${check.output}`);
  const start = postfixCommand(etc, 'start', opts.cpuGroup ? joinGroupShell(opts.cpuGroup) : '');
  if (start.status !== 0) throw new Error(`postfix start failed: ${start.output}`);
  const unregister = onInterrupt(() => void postfixCommand(etc, 'stop'));
  await waitForSmtp(port, 30_000);
  return {
    port,
    dir,
    async stop() {
      unregister();
      let master: number | undefined;
      try {
        master = Number(readFileSync(join(spool, 'pid', 'master.pid'), 'utf8').trim()) || undefined;
      } catch {
        master = undefined;
      }
      postfixCommand(etc, 'stop');
      // `postfix stop` returns once master is told; wait until it is gone (it stops its children).
      for (let i = 0; i < 100 && master !== undefined && existsSync(`/proc/${master}`); i++) await sleep(100);
    },
  };
}
