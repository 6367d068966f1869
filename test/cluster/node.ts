// A one-node Kubernetes cluster for node:test suites: the control plane of cluster.ts plus a real
// node (node.sh: containerd + runc + kubelet + kube-proxy in the node's own network namespace,
// kube-scheduler), running the image the project's Dockerfile builds. docs/test-node.md.
//
//   const fleet = await startNode();
//   if ('skipped' in fleet) { test('…', { skip: fleet.skipped }, () => {}); return; }
//   after(() => fleet.stop());
//   await fleet.kubectl(['apply', '-f', '-'], yaml);
//
// Under CI=true a node that cannot start throws instead of returning `skipped` (see skipOrFail).
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { skipOrFail } from './cluster.ts';
import { lastLine, lastLines, script, ScriptError } from './script.ts';

export { skipOrFail };

export interface NodeInfo {
  /** Node name, for nodeName / nodeSelector (e.g. a hostNetwork pool's ips[].nodeName). */
  name: string;
  /** The node's address (InternalIP), reachable from the test process. */
  ip: string;
  /** The host end of the node's veth: pods and hostNetwork pods reach the test process here
   * (a sink MX listening on hostIp:25, dnsmasq on hostIp:53: the node's resolv.conf names it). */
  hostIp: string;
  /** The node's network namespace (`nsenter --net=/run/netns/NAME`). */
  netns: string;
  podCidr: string;
  serviceCidr: string;
  /** Addresses on the node's loopback, routed from the host: what hostNetwork
   * relays bind as their source (a SendingPool's ips[].address). */
  egressIps: string[];
}

export interface Images {
  /** The app image the Dockerfile built, "localhost/mailfleet:<hash>" (pullPolicy Never). */
  app: string;
  repository: string;
  tag: string;
}

export interface TestNode {
  /** Admin kubeconfig (system:masters), server https://127.0.0.1:PORT. */
  kubeconfig: string;
  /** State dir of the cluster (logs *.log; node/ holds the node's logs and state). */
  dir: string;
  server: string;
  /** The first node (it also runs the scheduler and cluster DNS). */
  node: NodeInfo;
  /** Every node, the first first. */
  nodes: NodeInfo[];
  images: Images;
  kubectlPath: string;
  helmPath: string;
  /** Runs kubectl with this cluster's kubeconfig; rejects with its stderr on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<string>;
  /** Runs helm with this cluster's kubeconfig. */
  helm(args: string[]): Promise<string>;
  /** A running pod's IP (routed from the test process). */
  podIp(namespace: string, pod: string): Promise<string>;
  /** The host PID of a container's main process (its init in the container). */
  containerPid(namespace: string, pod: string, container: string): Promise<number>;
  /** Sends a signal (default SIGKILL) to a container's main process from the host, as the
   * kernel's OOM killer or a crash would; resolves with the PID signalled. */
  killContainer(namespace: string, pod: string, container: string, signal?: NodeJS.Signals): Promise<number>;
  /** `kubectl exec` into a container; resolves stdout. */
  exec(namespace: string, pod: string, container: string, command: string[]): Promise<string>;
  /** Argument prefix that runs a program inside the first node's network namespace (`[...nodeNs, 'swaks', …]`;
   * another node's: `nsenter --net=/run/netns/${nodes[i].netns} --`). */
  nodeNs: string[];
  restartApiserver(): Promise<void>;
  /** Stops the node and the control plane, removes all state (kept with MAILFLEET_KEEP_CLUSTER). */
  stop(): Promise<void>;
}

const here = import.meta.dirname;
export const repoRoot = resolve(here, '../..');

function run(file: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(file, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file.split('/').pop()} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolvePromise(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Tools the node needs that only root can install (scripts/setup.sh does it); null when all are there. */
async function missingPrerequisite(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the test node needs root (network namespaces, mounts, cgroups)';
  for (const p of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/usr/bin/buildah', '/usr/bin/mmdebstrap', '/usr/bin/nsenter']) {
    if (!(await access(p, constants.X_OK).then(() => true, () => false))) {
      return `${p} is missing (npm run setup installs containerd runc containernetworking-plugins buildah mmdebstrap)`;
    }
  }
  return null;
}

/**
 * `nodes` (default 1): how many nodes; each in its own network namespace, the first also runs
 * the scheduler and cluster DNS. Two are needed for a hostNetwork pool with two IPs (the operator
 * allows one such relay per node).
 */
export async function startNode(opts: { repo?: string; nodes?: number } = {}): Promise<TestNode | { skipped: string }> {
  const missing = await missingPrerequisite();
  if (missing) return skipOrFail(missing);
  let bin: string;
  try {
    bin = lastLine(await script('build.sh', ['--node'], {}, true));
  } catch (e) {
    if (e instanceof ScriptError && e.code === 3) return skipOrFail('no Kubernetes binaries cached and no Go toolchain to build them');
    throw e;
  }
  const repo = opts.repo ?? repoRoot;
  const images = await script('image.sh', [repo], {}, true);
  const tools = lastLine(await script('tools.sh', []));
  const dir = await mkdtemp(join(tmpdir(), 'mailfleet-node-'));
  const owner = String(process.pid);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await script('stop.sh', [dir]).catch(() => script('node.sh', ['stop', dir]));
      if (!process.env.MAILFLEET_KEEP_CLUSTER) await rm(dir, { recursive: true, force: true });
    })());
  try {
    const names = Array.from({ length: opts.nodes ?? 1 }, (_, i) => (i === 0 ? 'node' : `node${i + 1}`));
    for (const n of names) await script('node.sh', ['net', dir, n]);
    const nets = await Promise.all(names.map(async (n) => parseEnv(await readFile(join(dir, n, 'net.env'), 'utf8'))));
    const net = nets[0]!;
    const env = { KUBE_BIN: bin, MAILFLEET_CLUSTER_OWNER: owner, SERVICE_CIDR: net.SERVICE_CIDR!, APISERVER_BIND: '0.0.0.0' };
    const nodeEnv = { KUBE_BIN: bin, MAILFLEET_IMAGES: lastLines(images, 3) };
    // containerd and the image imports (~10 s) need no control plane: beside start.sh.
    const [started] = await Promise.allSettled([script('start.sh', [dir], env), ...names.map((n) => script('node.sh', ['runtime', dir, n], nodeEnv))]).then((r) => {
      for (const x of r) if (x.status === 'rejected') throw x.reason;
      return r.map((x) => (x as PromiseFulfilledResult<string>).value);
    });
    const kubeconfig = lastLine(started!);
    await script('node.sh', ['start', dir, 'node'], nodeEnv);
    await Promise.all(names.slice(1).map((n) => script('node.sh', ['start', dir, n], nodeEnv)));
    const server = (await readFile(join(dir, 'server'), 'utf8')).trim();
    const app = lastLine(images).split(' ')[0]!;
    const [repository, tag] = [app.slice(0, app.lastIndexOf(':')), app.slice(app.lastIndexOf(':') + 1)];
    const kubectlPath = join(tools, 'kubectl');
    const helmPath = join(tools, 'helm');
    // kubectl's and helm's caches and config in the cluster's dir, not in ~/.kube and ~/.cache.
    const kenv = {
      ...process.env,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: join(dir, 'kube-cache'),
      HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
      HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
      HELM_DATA_HOME: join(dir, 'helm', 'data'),
    };
    const kubectl = (args: string[], input?: string) => run(kubectlPath, args, kenv, input);
    const nodeNs = ['nsenter', `--net=/run/netns/${net.NETNS}`, '--'];
    const containerId = async (ns: string, pod: string, container: string): Promise<string> => {
      const p = JSON.parse(await kubectl(['get', 'pod', '-n', ns, pod, '-o', 'json'])) as {
        status?: { containerStatuses?: { name: string; containerID?: string; state?: { running?: unknown } }[] };
      };
      const s = p.status?.containerStatuses?.find((c) => c.name === container);
      if (!s?.containerID || !s.state?.running) throw new Error(`pod ${ns}/${pod}: container ${container} is not running`);
      return s.containerID.replace(/^containerd:\/\//, '');
    };
    const nodeInfos: NodeInfo[] = nets.map((n) => ({
      name: n.NODE_NAME!,
      ip: n.NODE_IP!,
      hostIp: n.HOST_IP!,
      netns: n.NETNS!,
      podCidr: n.POD_CIDR!,
      serviceCidr: n.SERVICE_CIDR!,
      egressIps: n.EGRESS_IPS!.split(' '),
    }));
    const containerPid = async (ns: string, pod: string, container: string): Promise<number> => {
      const id = await containerId(ns, pod, container);
      const nodeName = (await kubectl(['get', 'pod', '-n', ns, pod, '-o', 'jsonpath={.spec.nodeName}'])).trim();
      const i = nodeInfos.findIndex((n) => n.name === nodeName);
      if (i < 0) throw new Error(`pod ${ns}/${pod} is on no node of this cluster (${nodeName || 'not scheduled'})`);
      const pidFile = join(dir, names[i]!, 'containerd', 'state', 'io.containerd.runtime.v2.task', 'k8s.io', id, 'init.pid');
      return Number((await readFile(pidFile, 'utf8')).trim());
    };
    return {
      kubeconfig,
      dir,
      server,
      node: nodeInfos[0]!,
      nodes: nodeInfos,
      images: { app, repository, tag },
      kubectlPath,
      helmPath,
      kubectl,
      helm: (args) => run(helmPath, args, kenv),
      podIp: async (ns, pod) => {
        const ip = (await kubectl(['get', 'pod', '-n', ns, pod, '-o', 'jsonpath={.status.podIP}'])).trim();
        if (!ip) throw new Error(`pod ${ns}/${pod} has no IP yet`);
        return ip;
      },
      containerPid,
      killContainer: async (ns, pod, container, signal = 'SIGKILL') => {
        const pid = await containerPid(ns, pod, container);
        process.kill(pid, signal);
        return pid;
      },
      exec: (ns, pod, container, command) => kubectl(['exec', '-n', ns, pod, '-c', container, '--', ...command]),
      nodeNs,
      restartApiserver: async () => {
        await script('restart-apiserver.sh', [dir], env);
      },
      stop,
    };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}
