// The generated CRDs on a real apiserver: they install, every example in examples/ is accepted,
// and every examples/invalid/*.yaml is refused with the message its `# expect:` line names —
// including CEL rules (x-kubernetes-validations) and transition rules (oldSelf).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeError, type KubeObject } from '../../operator/runtime/kube.ts';
import { runOperator } from '../../operator/main.ts';
import { clusterEnv, installCrds, createNamespace, readYamlDocs, waitFor, condition, ROOT, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
let e: Env;
let crds: KubeObject[] = [];
const EXAMPLES = join(ROOT, 'examples');

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory() && ent.name !== 'invalid') out.push(...(await yamlFiles(p)));
    else if (ent.isFile() && ent.name.endsWith('.yaml')) out.push(p);
  }
  return out.sort();
}

before(async () => {
  if (skip) return;
  e = env as Env;
});

after(async () => {
  if (!skip) await e.cluster.stop();
});

/** Creates (first time) or replaces (later documents of the same object) in `ns`. */
async function submit(obj: KubeObject, ns: string): Promise<KubeObject> {
  const o = { ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? ns } };
  const cur = await e.kube.find(o.apiVersion!, o.kind!, o.metadata.namespace, o.metadata.name!);
  if (!cur) return e.kube.create(o);
  return e.kube.replace({ ...o, metadata: { ...o.metadata, resourceVersion: cur.metadata?.resourceVersion } });
}

test('the CRDs install and are served, with the status subresource', { skip }, async () => {
  crds = await installCrds(e.kube);
  assert.deepEqual(crds.map((c) => c.metadata?.name).sort(), ['maildomains.mailfleet.io', 'sendingpools.mailfleet.io']);
  for (const c of crds) {
    const served = await e.kube.get<KubeObject & { spec: { versions: { name: string; subresources?: { status?: object } }[] } }>(
      'apiextensions.k8s.io/v1',
      'CustomResourceDefinition',
      undefined,
      c.metadata!.name!,
    );
    assert.ok(served.spec.versions.some((v) => v.name === 'v1alpha1' && v.subresources?.status), `${c.metadata?.name} has /status`);
  }
});

test('every example in examples/ is accepted', { skip }, async () => {
  const files = await yamlFiles(EXAMPLES);
  assert.ok(files.length > 0, 'examples/ has manifests');
  await createNamespace(e.kube, 'examples');
  let n = 0;
  for (const f of files) {
    for (const doc of await readYamlDocs(f)) {
      if (doc.metadata?.namespace) await createNamespace(e.kube, doc.metadata.namespace);
      try {
        await submit(doc, 'examples');
      } catch (err) {
        assert.fail(`${f.slice(ROOT.length + 1)}: ${doc.kind} ${doc.metadata?.name} refused: ${(err as Error).message}`);
      }
      n++;
    }
  }
  assert.ok(n >= 2);
});

test('every examples/invalid/*.yaml is refused with its # expect: message', { skip }, async () => {
  const dir = join(EXAMPLES, 'invalid');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  assert.ok(files.length > 0, 'examples/invalid/ has cases');
  const failures: string[] = [];
  for (const [i, f] of files.entries()) {
    const text = await readFile(join(dir, f), 'utf8');
    const expects = [...text.matchAll(/^#\s*expect:\s*(.+?)\s*$/gm)].map((m) => m[1]!);
    if (expects.length === 0) {
      failures.push(`${f}: no "# expect:" line`);
      continue;
    }
    // One namespace per case, so a document accepted in one case cannot collide with another.
    const ns = `invalid-${i}`;
    await createNamespace(e.kube, ns);
    const docs = await readYamlDocs(join(dir, f));
    let refused: KubeError | undefined;
    for (const [j, doc] of docs.entries()) {
      try {
        await submit(doc, ns);
        if (j === docs.length - 1) failures.push(`${f}: accepted, expected refusal with "${expects.join('", "')}"`);
      } catch (err) {
        if (!(err instanceof KubeError)) throw err;
        if (j < docs.length - 1) failures.push(`${f}: document ${j + 1} (the setup) was refused: ${err.message}`);
        else refused = err;
        break;
      }
    }
    if (refused) {
      if (refused.status !== 422) failures.push(`${f}: refused with ${refused.status}, not 422 Invalid: ${refused.message}`);
      for (const x of expects) if (!refused.message.includes(x)) failures.push(`${f}: message lacks "${x}": ${refused.message}`);
    }
  }
  assert.deepEqual(failures, []);
});

test('the examples, applied as is, are reconciled (or say which add-on they need)', { skip }, async () => {
  const op = await runOperator({
    kubeconfig: e.kubeconfig,
    namespace: 'examples',
    leaderElection: false,
    metricsPort: 0,
    metricsHost: '127.0.0.1',
    handleSignals: false,
    logLevel: process.env.LOG_LEVEL ?? 'error',
    dnsServers: ['127.0.0.1:9'],
  });
  try {
    const pools = (await e.kube.list('mailfleet.io/v1alpha1', 'SendingPool', 'examples')).items;
    assert.ok(pools.length > 0);
    for (const p of pools) {
      const name = p.metadata!.name!;
      const mode = (p['spec'] as { egress?: { mode?: string } }).egress?.mode ?? 'none';
      const c = await waitFor(`example pool ${name} reconciled`, async () => {
        const cur = await e.kube.get('mailfleet.io/v1alpha1', 'SendingPool', 'examples', name);
        const r = condition(cur, 'Reconciled');
        return r && r.observedGeneration === cur.metadata?.generation ? r : undefined;
      });
      // No Multus or Cilium in this cluster: those pools must say so, the others go through.
      if (mode === 'multus' || mode === 'ciliumEgressGateway') assert.equal(c.reason, 'EgressUnavailable', `${name}: ${c.message}`);
      else assert.equal(c.status, 'True', `${name}: ${c.reason}: ${c.message}`);
    }
    for (const d of (await e.kube.list('mailfleet.io/v1alpha1', 'MailDomain', 'examples')).items) {
      await waitFor(`example domain ${d.metadata?.name} has its key and records`, async () => {
        const cur = await e.kube.get('mailfleet.io/v1alpha1', 'MailDomain', 'examples', d.metadata!.name!);
        const recs = (cur['status'] as { records?: unknown[] } | undefined)?.records ?? [];
        return condition(cur, 'DKIMReady')?.status === 'True' && recs.length > 0 ? true : undefined;
      });
    }
  } finally {
    await op.stop();
  }
});
