import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSteps, Blocked } from './common.ts';
import { KubeError } from '../runtime/kube.ts';
import { RenderError } from '../render/relay-config.ts';

test('steps run in order and stop at the first Blocked', async () => {
  const ran: string[] = [];
  const b = await runSteps(
    [
      { name: 'a', run: async () => void ran.push('a') },
      { name: 'b', run: async () => { ran.push('b'); throw new Blocked('SecretNotFound', 'spec.x: missing'); } },
      { name: 'c', run: async () => void ran.push('c') },
    ],
    {},
  );
  assert.deepEqual(ran, ['a', 'b']);
  assert.equal(b?.reason, 'SecretNotFound');
  assert.equal(b?.invalid, false);
});

test('a spec the render or the apiserver refuses becomes an invalid Blocked, not a retry loop', async () => {
  const r = await runSteps([{ name: 'render', run: async () => { throw new RenderError('SendingPool a', ['spec.ips[0].hostname: bad']); } }], {});
  assert.deepEqual([r?.reason, r?.invalid], ['InvalidSpec', true]);
  assert.match(r!.message, /spec\.ips\[0\]\.hostname/);
  const k = await runSteps([{ name: 'ensureChildren', run: async () => { throw new KubeError(422, 'StatefulSet x: spec.template: Invalid', 'Invalid'); } }], {});
  assert.deepEqual([k?.reason, k?.invalid], ['ChildRejected', true]);
  assert.match(k!.message, /^ensureChildren: StatefulSet x/);
});

test('transient failures are thrown for the queue to retry with backoff', async () => {
  await assert.rejects(runSteps([{ name: 'x', run: async () => { throw new KubeError(503, 'unavailable'); } }], {}), /unavailable/);
  await assert.rejects(runSteps([{ name: 'x', run: async () => { throw new KubeError(409, 'conflict'); } }], {}), /conflict/);
});
