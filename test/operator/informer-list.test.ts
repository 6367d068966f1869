// The informers' first list comes in pages, each object trimmed as its page arrives
// (operator/runtime/informer.ts listTrimmed): on the real apiserver, 7 ConfigMaps listed 3 at a
// time are all cached, without managedFields, and the watch then goes on from the list's
// resourceVersion (nothing missed, nothing replayed).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { clusterEnv, createNamespace, waitFor, type Env } from './harness.ts';
import { ResilientInformer } from '../../operator/runtime/informer.ts';
import { Kube, type KubeObject } from '../../operator/runtime/kube.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
after(async () => {
  if (!('skipped' in env)) await env.cluster.stop();
});

test('the first list in pages: every object cached and trimmed, then the watch', { skip }, async () => {
  const e = env as Env;
  const NS = 'paged';
  await createNamespace(e.kube, NS);
  for (let i = 0; i < 7; i++) await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: NS, labels: { pick: 'yes' } }, data: { i: String(i) } });
  await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'not-picked', namespace: NS }, data: {} });

  // The informer's own client, its list requests counted.
  const kube = Kube.fromFile(e.kubeconfig);
  const lists: string[] = [];
  const request = kube.request.bind(kube);
  kube.request = ((method, path, opts) => {
    if (method === 'GET' && !String(opts?.query?.['watch'] ?? '')) lists.push(`${path}?limit=${opts?.query?.['limit']}&continue=${opts?.query?.['continue'] ? 'yes' : 'no'}`);
    return request(method, path, opts);
  }) as Kube['request'];
  const events: string[] = [];
  const inf = new ResilientInformer(kube, { apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, labelSelector: 'pick=yes', listPageSize: 3, onEvent: (t, o) => events.push(`${t} ${o.metadata?.name}`) });
  try {
    await inf.start();
    await waitFor('synced', () => inf.hasSynced());
    assert.deepEqual(lists, [
      `/api/v1/namespaces/${NS}/configmaps?limit=3&continue=no`,
      `/api/v1/namespaces/${NS}/configmaps?limit=3&continue=yes`,
      `/api/v1/namespaces/${NS}/configmaps?limit=3&continue=yes`,
    ], 'three pages of at most 3');
    const cached = inf.list<KubeObject>(NS);
    assert.deepEqual(cached.map((o) => o.metadata?.name).sort(), ['cm-0', 'cm-1', 'cm-2', 'cm-3', 'cm-4', 'cm-5', 'cm-6']);
    assert.ok(cached.every((o) => o.metadata?.['managedFields'] === undefined), 'managedFields trimmed');
    await waitFor('an add event per listed object', () => events.filter((x) => x.startsWith('add ')).length === 7);

    // The watch resumes from the list: a change made now arrives, once.
    await e.kube.mergePatch({ apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, name: 'cm-3' }, { data: { i: 'changed' } });
    await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-7', namespace: NS, labels: { pick: 'yes' } }, data: {} });
    await waitFor('the update and the new one', () => events.includes('update cm-3') && events.includes('add cm-7'));
    assert.equal(inf.get<KubeObject & { data?: Record<string, string> }>('cm-3', NS)?.data?.['i'], 'changed');
    assert.equal(events.filter((x) => x === 'add cm-0').length, 1, 'nothing listed twice');
  } finally {
    await inf.stop();
    await kube.close();
  }
});
