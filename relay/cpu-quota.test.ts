// The CPU count comes from the cgroup quota (a pod's limits.cpu), not the host's cores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuCount, cpusFromCfs, cpusFromCpuMax, parseMountinfo, parseProcCgroup } from './cpu-quota.ts';

const files = (m: Record<string, string>) => (p: string) => {
  if (p in m) return m[p]!;
  throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
};

const V2_MOUNTINFO = '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n';
const V1_MOUNTINFO = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
].join('\n');

test('cpu.max and cfs quota parse to CPUs; no limit is undefined', () => {
  assert.equal(cpusFromCpuMax('max 100000\n'), undefined);
  assert.equal(cpusFromCpuMax('150000 100000\n'), 1.5);
  assert.equal(cpusFromCfs('-1\n', '100000\n'), undefined);
  assert.equal(cpusFromCfs('200000\n', '100000\n'), 2);
});

test('mountinfo and /proc/self/cgroup: v1 controllers and the v2 tree', () => {
  assert.deepEqual(parseMountinfo(V1_MOUNTINFO).map((m) => [m.version, m.mountPoint, m.controllers.join('+')]), [
    [1, '/sys/fs/cgroup/cpu,cpuacct', 'cpu+cpuacct'],
    [1, '/sys/fs/cgroup/memory', 'memory'],
  ]);
  assert.deepEqual(parseProcCgroup('0::/kubepods/pod1/c1\n'), [{ version: 2, controllers: [], path: '/kubepods/pod1/c1' }]);
});

test('a pod limited to 1.5 CPUs on a 16-core node counts 2 (v2, quota on the pod level, not the container)', () => {
  const read = files({
    '/proc/self/mountinfo': V2_MOUNTINFO,
    '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
    '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000\n',
    '/sys/fs/cgroup/kubepods/cpu.max': 'max 100000\n',
  });
  assert.deepEqual(cpuCount(read, 16), { cpus: 2, source: 'cgroup', quota: 1.5 });
});

test('v1 inside a cgroup namespace (path "/"): the container\'s own cfs quota; none means the host\'s cores', () => {
  const base = { '/proc/self/mountinfo': V1_MOUNTINFO, '/proc/self/cgroup': '4:memory:/\n3:cpu,cpuacct:/\n', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n' };
  assert.deepEqual(cpuCount(files({ ...base, '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '100000\n' }), 16), { cpus: 1, source: 'cgroup', quota: 1 });
  assert.deepEqual(cpuCount(files({ ...base, '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n' }), 16), { cpus: 16, source: 'host' });
  // A quota above the host's cores is still only the host's cores.
  assert.deepEqual(cpuCount(files({ ...base, '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '800000\n' }), 4), { cpus: 4, source: 'cgroup', quota: 8 });
});

test('no /proc (not Linux): the host\'s cores', () => {
  assert.deepEqual(cpuCount(files({}), 3), { cpus: 3, source: 'host' });
});
