import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { ResilientInformer } from './informer.ts';
import { ManualClock } from './clock.ts';
import type { Kube } from './kube.ts';

function fakeKube(request: () => Promise<unknown>): Kube {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, request } as unknown as Kube;
}

const tick = () => new Promise((r) => setImmediate(r));

test('a failing list restarts the informer with exponential backoff', async () => {
  const clock = new ManualClock();
  let calls = 0;
  const delays: number[] = [];
  const inf = new ResilientInformer(
    fakeKube(async () => {
      calls++;
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    }),
    { apiVersion: 'v1', kind: 'ConfigMap', onEvent: () => {}, onError: (_e, ms) => delays.push(ms), clock, minBackoffMs: 100, maxBackoffMs: 1000 },
  );
  await inf.start();
  await tick();
  assert.equal(calls, 1);
  for (let i = 0; i < 5; i++) {
    clock.advance(delays.at(-1)!);
    await tick();
    await tick();
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  assert.equal(calls, 6);
  assert.equal(inf.restartCount(), 5);
  assert.equal(inf.hasSynced(), false);
  await inf.stop();
  clock.advance(10_000);
  assert.equal(calls, 6, 'no restarts after stop');
});

test('the watchdog restarts an informer that shows no sign of life', async () => {
  const clock = new ManualClock();
  let calls = 0;
  const reasons: string[] = [];
  const inf = new ResilientInformer(
    fakeKube(() => {
      calls++;
      return new Promise(() => {}); // a list that never returns and no timer noticed
    }),
    { apiVersion: 'v1', kind: 'ConfigMap', onEvent: () => {}, onRestart: (r) => reasons.push(r), clock, stallMs: 3000 },
  );
  void inf.start();
  await tick();
  assert.equal(calls, 1);
  clock.advance(2999);
  assert.deepEqual(reasons, []);
  clock.advance(1001);
  await tick();
  assert.deepEqual(reasons, ['stall']);
  assert.equal(calls, 2);
  await inf.stop();
});
