// A real local Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager on 127.0.0.1) for node:test suites. No kubelet or
// scheduler: Pods are created but stay Pending.
//
//   const cluster = await startCluster();
//   if ('skipped' in cluster) { test('…', { skip: cluster.skipped }, () => {}); }
//   else { after(() => cluster.stop()); … KUBECONFIG = cluster.kubeconfig … }
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastLine, script, ScriptError } from './script.ts';

export interface Cluster {
  /** Path of an admin kubeconfig (user in group system:masters). */
  kubeconfig: string;
  /** State dir: logs (*.log), pki/, pids. */
  dir: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Stops kube-apiserver (SIGTERM, SIGKILL after 2 s) and starts it again on the same port; resolves when /readyz is ok. */
  restartApiserver(): Promise<void>;
  /** Stops every process and removes dir (kept when MAILFLEET_KEEP_CLUSTER is set). Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * What a suite does when its cluster (or node, or tools) cannot start: skip with the reason on a
 * developer's machine; under CI (CI=true) throw, so that a machine without the tools fails the
 * run instead of passing it with the suite silently skipped.
 */
export function skipOrFail(reason: string): { skipped: string } {
  const ci = process.env.CI;
  if (ci && ci !== 'false' && ci !== '0') throw new Error(`CI=${ci}: a cluster suite cannot start: ${reason} (npm run setup installs what is missing)`);
  return { skipped: reason };
}

export async function startCluster(): Promise<Cluster | { skipped: string }> {
  let bin: string;
  try {
    bin = lastLine(await script('build.sh', [], {}, true));
  } catch (e) {
    // build.sh exits 3 when the binaries are not cached and `go` is not on PATH.
    if (e instanceof ScriptError && e.code === 3) return skipOrFail('no Kubernetes binaries cached and no Go toolchain to build them');
    throw e;
  }
  const dir = await mkdtemp(join(tmpdir(), 'mailfleet-kube-'));
  const env = { KUBE_BIN: bin, MAILFLEET_CLUSTER_OWNER: String(process.pid) };
  const kubeconfig = lastLine(await script('start.sh', [dir], env));
  const server = (await readFile(join(dir, 'server'), 'utf8')).trim();
  let stopped: Promise<void> | undefined;
  return {
    kubeconfig,
    dir,
    server,
    restartApiserver: async () => {
      await script('restart-apiserver.sh', [dir], env);
    },
    stop: () =>
      (stopped ??= (async () => {
        await script('stop.sh', [dir]);
        if (!process.env.MAILFLEET_KEEP_CLUSTER) await rm(dir, { recursive: true, force: true });
      })()),
  };
}

