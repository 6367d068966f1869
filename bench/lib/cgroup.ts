// CPU accounting per system under test: each run of Postfix (all its daemons) or of the relay is
// started inside a cgroup of its own, and the group's CPU usage before and after the load,
// divided by the messages, is its CPU per message. The load generator and the sink stay outside.
// cgroup v1 `cpuacct` (cpuacct.usage, ns) where mounted, else the v2 tree (cpu.stat usage_usec).
// Needs root (the bench already does, for Postfix); without it the bench says so and reports
// the relay's /proc figure only.
import { mkdirSync, readFileSync, rmdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountinfo } from '../../relay/cpu-quota.ts';
import { sleep } from './util.ts';

export interface CpuGroup {
  dir: string;
  /** The file a shell writes `$$` into to join the group (its children follow). */
  procsFile: string;
  /** CPU time used by everything in the group so far, ms. */
  usageMs(): number;
  /** Removes the group once its processes are gone (retries briefly: Postfix's daemons exit after `postfix stop` returns). */
  remove(): Promise<void>;
}

let seq = 0;

/** Where groups of `controller` are made: its cgroup v1 hierarchy, else the v2 tree. */
function controllerMount(controller: string): { mountPoint: string; v1: boolean } | { unavailable: string } {
  let mounts;
  try {
    mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (err) {
    return { unavailable: `no /proc/self/mountinfo (${(err as Error).message})` };
  }
  const v1 = mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
  const base = v1 ?? mounts.find((m) => m.version === 2);
  if (!base) return { unavailable: `no cgroup ${controller} (v1) or cgroup2 mount` };
  return { mountPoint: base.mountPoint, v1: v1 !== undefined };
}

/** A fresh accounting group, or the reason there is none. */
export function createCpuGroup(label: string): CpuGroup | { unavailable: string } {
  const base = controllerMount('cpuacct');
  if ('unavailable' in base) return base;
  const v1 = base.v1;
  const dir = join(base.mountPoint, `mailfleet-bench-${process.pid}-${++seq}-${label}`);
  try {
    mkdirSync(dir);
  } catch (err) {
    return { unavailable: `cannot create ${dir}: ${(err as Error).message}` };
  }
  const usageMs = v1
    ? () => Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8').trim()) / 1e6
    : () => Number(/^usage_usec (\d+)/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? Number.NaN) / 1e3;
  return {
    dir,
    procsFile: join(dir, 'cgroup.procs'),
    usageMs,
    remove: () => removeGroup(dir),
  };
}

/** Shell text that moves the shell itself into the group; prefix a command with it. */
export const joinGroupShell = (g: { procsFile: string }) => `echo $$ > '${g.procsFile}' && `;

/** A group of the cpu controller whose processes may use `cpus` CPUs (a pod's resources.limits.cpu). */
export interface CpuQuotaGroup {
  procsFile: string;
  remove(): Promise<void>;
}

/**
 * A fresh CPU-quota group (cfs quota `cpus` × the 100 ms period: what the kubelet writes for a
 * container's CPU limit), or the reason there is none. The relay reads it back at start
 * (relay/cpu-quota.ts), so `intake.workerThreads: auto` resolves as in such a pod.
 */
export function createCpuQuotaGroup(label: string, cpus: number): CpuQuotaGroup | { unavailable: string } {
  if (process.getuid?.() !== 0) return { unavailable: 'needs root to make a cgroup' };
  const base = controllerMount('cpu');
  if ('unavailable' in base) return base;
  const dir = join(base.mountPoint, `mailfleet-quota-${process.pid}-${++seq}-${label}`);
  try {
    mkdirSync(dir);
    if (base.v1) writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(Math.round(cpus * 100_000)));
    else writeFileSync(join(dir, 'cpu.max'), `${Math.round(cpus * 100_000)} 100000`);
  } catch (err) {
    return { unavailable: `cannot set a CPU quota in ${dir}: ${(err as Error).message}` };
  }
  return { procsFile: join(dir, 'cgroup.procs'), remove: () => removeGroup(dir) };
}

async function removeGroup(dir: string): Promise<void> {
  for (let i = 0; i < 50 && existsSync(dir); i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      await sleep(100);
    }
  }
}
