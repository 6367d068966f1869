// What `mailfleet operator` checks before it starts, so a missing kubeconfig or an API server
// that does not answer is one sentence and a distinct exit code, not a stack from client-node
// or an operator that waits forever for caches. The library (runOperator) does not call these:
// an operator already running rides out an apiserver outage.
import { existsSync, accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node/dist/config.js'; // not the index: operator/runtime/client-node-slim.ts
import { Kube, KubeError } from './kube.ts';
import { StartupError, STARTUP_EXIT, briefReason } from '../../relay/startup-error.ts';

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The kubeconfig the operator will use, loaded; throws StartupError naming what is missing. */
export function loadKubeconfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  const source = path ? `--kubeconfig ${path}` : undefined;
  const files = path ? [path] : (env.KUBECONFIG ?? '').split(':').filter(Boolean);
  for (const f of files) {
    if (!existsSync(f)) {
      throw new StartupError(`kubeconfig ${f} (${source ?? '$KUBECONFIG'}) does not exist; pass --kubeconfig with the path of a kubeconfig, or run in a cluster`, STARTUP_EXIT.kubeconfig);
    }
    if (!readable(f)) throw new StartupError(`kubeconfig ${f} (${source ?? '$KUBECONFIG'}) is not readable by this user; fix its permissions`, STARTUP_EXIT.kubeconfig);
  }
  const inCluster = Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT);
  if (files.length === 0 && !inCluster && !existsSync(join(env.HOME ?? homedir(), '.kube', 'config'))) {
    throw new StartupError('no kubeconfig: not running in a cluster, $KUBECONFIG is unset and ~/.kube/config does not exist; pass --kubeconfig FILE', STARTUP_EXIT.kubeconfig);
  }
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
  } catch (err) {
    throw new StartupError(`kubeconfig ${files.join(':') || '(default)'} cannot be loaded (${briefReason(err)}); check that it is a valid kubeconfig`, STARTUP_EXIT.kubeconfig, { cause: err });
  }
  if (!kc.getCurrentCluster()) {
    throw new StartupError(`kubeconfig ${files.join(':') || '(default)'} has no current cluster; set current-context`, STARTUP_EXIT.kubeconfig);
  }
  return kc;
}

/**
 * Resolves when the API server answers GET /version (any HTTP answer: a 401 is a kubeconfig
 * problem the operator reports by itself); throws StartupError when it does not within `withinMs`.
 */
export async function checkApiserver(kc: KubeConfig, withinMs = 10_000): Promise<void> {
  const server = kc.getCurrentCluster()?.server ?? '(none)';
  const kube = new Kube(kc, { timeoutMs: Math.min(withinMs, 5_000) });
  const deadline = Date.now() + withinMs;
  let last: unknown;
  try {
    for (;;) {
      try {
        await kube.request('GET', '/version');
        return;
      } catch (err) {
        if (err instanceof KubeError) return;
        last = err;
      }
      if (Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    await kube.close();
  }
  const cause = (last as { cause?: { code?: string } })?.cause?.code ?? (last as { code?: string })?.code ?? briefReason(last);
  throw new StartupError(`the Kubernetes API server at ${server} does not answer (${cause}); check the kubeconfig's server address and that the cluster is up`, STARTUP_EXIT.apiserverUnreachable, { cause: last });
}
