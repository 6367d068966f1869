import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeStatus } from './status.ts';
import { KubeError, type Kube, type KubeObject } from './kube.ts';

/** An apiserver of one object with resourceVersion checks on PUT /status. */
function fakeKube(initial: KubeObject) {
  let stored: KubeObject = structuredClone(initial);
  const calls: string[] = [];
  const kube = {
    async replace(obj: KubeObject, sub?: string) {
      calls.push(`PUT ${sub} rv=${obj.metadata?.resourceVersion}`);
      if (!stored) throw new KubeError(404, 'gone');
      if (obj.metadata?.resourceVersion !== stored.metadata?.resourceVersion) throw new KubeError(409, 'conflict');
      stored = { ...stored, status: obj['status'], metadata: { ...stored.metadata, resourceVersion: String(Number(stored.metadata!.resourceVersion) + 1) } };
      return structuredClone(stored);
    },
    async find() {
      calls.push('GET');
      return stored ? structuredClone(stored) : undefined;
    },
  } as unknown as Kube;
  return {
    kube,
    calls,
    bump: (patch: Partial<KubeObject>) => {
      stored = { ...stored, ...patch, metadata: { ...stored.metadata, ...(patch.metadata ?? {}), resourceVersion: String(Number(stored.metadata!.resourceVersion) + 1) } };
    },
    get: () => stored,
    remove: () => {
      stored = undefined as unknown as KubeObject;
    },
  };
}

const obj: KubeObject = { apiVersion: 'mailfleet.io/v1alpha1', kind: 'SendingPool', metadata: { name: 'p', namespace: 'n', resourceVersion: '1' }, status: { a: 1 } };

test('unchanged status is not written', async () => {
  const f = fakeKube(obj);
  const r = await writeStatus(f.kube, obj, (cur) => ({ ...(cur['status'] as object) }));
  assert.equal(r.written, false);
  assert.deepEqual(f.calls, []);
});

test('a 409 re-reads and recomputes from the fresh object', async () => {
  const f = fakeKube(obj);
  f.bump({ metadata: { labels: { other: 'writer' } } });
  let conflicts = 0;
  const r = await writeStatus(f.kube, obj, (cur) => ({ a: 2, sawLabel: cur.metadata?.labels?.['other'] ?? null }), { onConflict: () => conflicts++ });
  assert.equal(r.written, true);
  assert.equal(r.attempts, 2);
  assert.equal(conflicts, 1);
  assert.deepEqual(f.calls, ['PUT status rv=1', 'GET', 'PUT status rv=2']);
  assert.deepEqual(f.get()['status'], { a: 2, sawLabel: 'writer' });
});

test('a recomputation that now matches what is stored stops without writing', async () => {
  const f = fakeKube(obj);
  f.bump({ status: { a: 2 } });
  const r = await writeStatus(f.kube, obj, () => ({ a: 2 }));
  assert.equal(r.written, false);
  assert.deepEqual(f.calls, ['PUT status rv=1', 'GET']);
});

test('gives up after maxAttempts conflicts; a deleted object is not an error', async () => {
  const f = fakeKube(obj);
  const always = { ...f.kube, replace: async () => { throw new KubeError(409, 'conflict'); }, find: f.kube.find } as unknown as Kube;
  await assert.rejects(writeStatus(always, obj, () => ({ a: 3 }), { maxAttempts: 3 }), /conflict/);
  f.remove();
  const r = await writeStatus(f.kube, obj, () => ({ a: 3 }));
  assert.equal(r.written, false);
});
