// The cluster scripts' safety rules, without a cluster: stop.sh signals only processes that still
// run what start.sh launched (a recorded PID may have been reused), and free_ports stays out of
// the kernel's ephemeral port range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const here = import.meta.dirname;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^\d+ \([^)]*\) Z/.test(spawnSync('cat', [`/proc/${pid}/stat`]).stdout.toString());
  } catch {
    return false;
  }
};

test('stop.sh kills a recorded process that is still ours, and leaves a reused PID alone', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mailfleet-stop-'));
  // "ours": names the state dir and the binary (as etcd --data-dir DIR/etcd would);
  // "stranger": the PID recorded for the apiserver now runs something else.
  const ours = spawn('bash', ['-c', 'exec -a etcd sleep 60 "$0"', `${dir}/etcd`], { stdio: 'ignore' });
  const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(async () => {
    for (const c of [ours, stranger]) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  await new Promise((r) => setTimeout(r, 100));
  await writeFile(join(dir, 'pids'), `etcd ${ours.pid}\napiserver ${stranger.pid}\n`);
  const r = spawnSync(join(here, 'stop.sh'), [dir], { env: { ...process.env, STOP_GRACE: '1' } });
  assert.equal(r.status, 0, r.stderr.toString());
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(alive(ours.pid!), false, 'the cluster process was stopped');
  assert.equal(alive(stranger.pid!), true, 'the process that took a recorded PID was not touched');
});

test('free_ports: distinct ports outside the ephemeral range, each free on 127.0.0.1', async () => {
  const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number) as [number, number];
  const r = spawnSync('bash', ['-c', `. "${join(here, 'lib.sh')}" && free_ports 3`]);
  assert.equal(r.status, 0, r.stderr.toString());
  const ports = r.stdout.toString().trim().split(' ').map(Number);
  assert.equal(new Set(ports).size, 3);
  for (const p of ports) assert.ok(p < low || p > high, `${p} is outside ${low}-${high}`);
});
