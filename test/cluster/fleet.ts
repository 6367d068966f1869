// The whole product on the test node: the chart installed with helm (the operator as a real pod
// from the image the Dockerfile built, with the chart's ServiceAccount and RBAC), ready for
// SendingPools and MailDomains. docs/test-node.md.
//
//   const fleet = await startFleet();                    // startNode() + installOperator()
//   if ('skipped' in fleet) { … }
//   after(() => fleet.stop());
//   await fleet.kubectl(['apply', '-f', '-'], poolYaml);  // relay pods run on fleet.node
import { join } from 'node:path';
import { repoRoot, startNode, type TestNode } from './node.ts';

export interface Operator {
  /** Namespace of the helm release (the operator's Deployment, ServiceAccount, Lease). */
  namespace: string;
  release: string;
  /** Name of the running operator pod. */
  pod: string;
}

export type Fleet = TestNode & { operator: Operator };

export const chartDir = join(repoRoot, 'charts', 'mailfleet');

/**
 * `helm install` of charts/mailfleet with the node's local image (pullPolicy Never: nothing can
 * be pulled), waiting until the operator pod is Ready. `values` are extra `--set` pairs.
 */
export async function installOperator(node: TestNode, opts: { namespace?: string; release?: string; values?: string[] } = {}): Promise<Operator> {
  const namespace = opts.namespace ?? 'mailfleet-system';
  const release = opts.release ?? 'mailfleet';
  const set = [
    `image.repository=${node.images.repository}`,
    `image.tag=${node.images.tag}`,
    'image.pullPolicy=Never',
    ...(opts.values ?? []),
  ];
  await node.helm(['install', release, chartDir, '-n', namespace, '--create-namespace', '--wait', '--timeout', '180s', ...set.flatMap((s) => ['--set', s])]);
  const selector = `app.kubernetes.io/instance=${release}`;
  await node.kubectl(['wait', '-n', namespace, '--for=condition=Ready', 'pod', '-l', selector, '--timeout=120s']);
  const pod = (await node.kubectl(['get', 'pod', '-n', namespace, '-l', selector, '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
  return { namespace, release, pod };
}

export async function startFleet(opts: { namespace?: string; values?: string[] } = {}): Promise<Fleet | { skipped: string }> {
  const node = await startNode();
  if ('skipped' in node) return node;
  try {
    const operator = await installOperator(node, opts);
    return Object.assign(node, { operator });
  } catch (e) {
    await node.stop();
    throw e;
  }
}
