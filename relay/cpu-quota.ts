// How many CPUs this process may use: its cgroup's CPU quota (what a pod's resources.limits.cpu
// becomes), not the host's core count. os.availableParallelism() counts the host's cores (or the
// affinity mask) and knows nothing of the quota, so a relay limited to 1 CPU on a 16-core node
// would otherwise start 15 session threads that share one CPU.
// Pure parsers of /proc/self/mountinfo, /proc/self/cgroup, cpu.max and cpu.cfs_quota_us, and one
// reader at the edge; the bench (bench/lib/cgroup.ts) finds its accounting mounts with the same parser.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';

export interface CgroupMount {
  version: 1 | 2;
  /** v1: the controllers this hierarchy carries (cpu, cpuacct, ...); v2: empty (all in one tree). */
  controllers: string[];
  /** The cgroup path mounted there ("/" unless the mount shows only a subtree). */
  root: string;
  mountPoint: string;
}

/** The cgroup mounts in /proc/self/mountinfo. */
export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const [fstype, , superOptions] = right.split(' ');
    const root = unescapeMount(f[3] ?? '/');
    const mountPoint = unescapeMount(f[4] ?? '');
    if (fstype === 'cgroup2') mounts.push({ version: 2, controllers: [], root, mountPoint });
    else if (fstype === 'cgroup') {
      const known = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc']);
      mounts.push({ version: 1, controllers: (superOptions ?? '').split(',').filter((o) => known.has(o)), root, mountPoint });
    }
  }
  return mounts;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export interface ProcCgroup {
  version: 1 | 2;
  controllers: string[];
  path: string;
}

/** /proc/self/cgroup: "ID:controllers:path" per hierarchy; v2 is "0::path". */
export function parseProcCgroup(text: string): ProcCgroup[] {
  const out: ProcCgroup[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') out.push({ version: 2, controllers: [], path: m[3]! });
    else out.push({ version: 1, controllers: m[2]!.split(',').filter(Boolean), path: m[3]! });
  }
  return out;
}

/**
 * The directories of this process's cgroup for a controller (v1) or in the v2 tree, leaf first,
 * up to the mount point: a quota on any ancestor applies too.
 */
export function cgroupDirs(mounts: readonly CgroupMount[], cgroups: readonly ProcCgroup[], controller: string): { version: 1 | 2; dirs: string[] } | undefined {
  const v1 = mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
  const v1Group = cgroups.find((c) => c.version === 1 && c.controllers.includes(controller));
  const v2 = mounts.find((m) => m.version === 2);
  const v2Group = cgroups.find((c) => c.version === 2);
  const pick = v1 && v1Group ? { mount: v1, group: v1Group } : v2 && v2Group ? { mount: v2, group: v2Group } : undefined;
  if (!pick) return undefined;
  // Inside a cgroup namespace the path is relative to the mount's root already ("/").
  const rel = posix.relative(pick.mount.root, pick.group.path);
  const inside = rel.startsWith('..') ? '' : rel;
  const dirs: string[] = [];
  let cur = inside;
  for (;;) {
    dirs.push(posix.join(pick.mount.mountPoint, cur));
    if (cur === '' || cur === '.') break;
    const up = posix.dirname(cur);
    cur = up === '.' || up === '/' ? '' : up;
  }
  return { version: pick.mount.version, dirs };
}

/** cgroup v2 cpu.max: "max 100000" (no limit) or "QUOTA PERIOD" in µs. CPUs, or undefined. */
export function cpusFromCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (!quota || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? 100_000);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** cgroup v1 cpu.cfs_quota_us (-1 = no limit) and cpu.cfs_period_us. CPUs, or undefined. */
export function cpusFromCfs(quotaText: string, periodText: string): number | undefined {
  const q = Number(quotaText.trim());
  const p = Number(periodText.trim());
  return q > 0 && p > 0 ? q / p : undefined;
}

type Read = (path: string) => string;
const readText: Read = (p) => readFileSync(p, 'utf8');

/** The smallest CPU quota on this process's cgroup or its ancestors, in CPUs; undefined when none. */
export function cpuQuota(read: Read = readText): number | undefined {
  let where: ReturnType<typeof cgroupDirs>;
  try {
    where = cgroupDirs(parseMountinfo(read('/proc/self/mountinfo')), parseProcCgroup(read('/proc/self/cgroup')), 'cpu');
  } catch {
    return undefined; // not Linux, or /proc not mounted
  }
  if (!where) return undefined;
  let min: number | undefined;
  for (const dir of where.dirs) {
    let cpus: number | undefined;
    try {
      cpus = where.version === 2 ? cpusFromCpuMax(read(posix.join(dir, 'cpu.max'))) : cpusFromCfs(read(posix.join(dir, 'cpu.cfs_quota_us')), read(posix.join(dir, 'cpu.cfs_period_us')));
    } catch {
      cpus = undefined; // the root has no cpu.max; an unreadable level sets no limit
    }
    if (cpus !== undefined && (min === undefined || cpus < min)) min = cpus;
  }
  return min;
}

export interface CpuCount {
  /** Whole CPUs this process may keep busy: the quota rounded up, never above the host's. */
  cpus: number;
  /** Where the number came from. */
  source: 'cgroup' | 'host';
  /** The quota as set (e.g. 1.5), when there is one. */
  quota?: number;
}

export function cpuCount(read: Read = readText, host: number = availableParallelism()): CpuCount {
  return cpuCountOf(cpuQuota(read), host);
}

/** The CPU count for a quota (undefined: none) on a host with `host` cores. */
export function cpuCountOf(quota: number | undefined, host: number = availableParallelism()): CpuCount {
  if (quota === undefined) return { cpus: host, source: 'host' };
  return { cpus: Math.max(1, Math.min(host, Math.ceil(quota - 1e-9))), source: 'cgroup', quota };
}
