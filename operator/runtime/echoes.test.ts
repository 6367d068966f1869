import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OwnWrites } from './echoes.ts';
import type { KubeObject } from './kube.ts';

const obj = (rv: string, name = 'a'): KubeObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { namespace: 'ns', name, resourceVersion: rv } });

test('the event carrying the resourceVersion a write returned is dropped once; others are delivered', async () => {
  const w = new OwnWrites();
  await w.write('Secret', 'ns', 'a', async () => obj('5'));
  let delivered = 0;
  assert.equal(w.filter('Secret', obj('5'), () => delivered++), true, 'the echo');
  assert.equal(w.filter('Secret', obj('5'), () => delivered++), false, 'asked once per write');
  assert.equal(w.filter('Secret', obj('6'), () => delivered++), false, 'a later change');
  assert.equal(w.filter('Secret', obj('5', 'b'), () => delivered++), false, 'another object');
  assert.equal(w.filter('ConfigMap', obj('5'), () => delivered++), false, 'another kind');
  assert.equal(delivered, 0, 'filter never delivers by itself when it returns false');
});

test('events arriving while the write is in flight wait for its result', async () => {
  const w = new OwnWrites();
  let finish!: (o: KubeObject) => void;
  const p = w.write('Secret', 'ns', 'a', () => new Promise<KubeObject>((r) => (finish = r)));
  const delivered: string[] = [];
  assert.equal(w.filter('Secret', obj('7'), () => delivered.push('7')), true, 'held');
  assert.equal(w.filter('Secret', obj('8'), () => delivered.push('8')), true, 'held');
  assert.equal(delivered.length, 0);
  finish(obj('8'));
  await p;
  assert.deepEqual(delivered, ['7'], 'the echo (8) is dropped, the other delivered');
  assert.equal(w.filter('Secret', obj('8'), () => delivered.push('again')), false, 'the echo was consumed while held');
});

test('a failed write delivers everything it held', async () => {
  const w = new OwnWrites();
  let fail!: (e: Error) => void;
  const p = w.write('Secret', 'ns', 'a', () => new Promise<KubeObject>((_r, rej) => (fail = rej)));
  const delivered: string[] = [];
  w.filter('Secret', obj('9'), () => delivered.push('9'));
  fail(new Error('409'));
  await assert.rejects(p, /409/);
  assert.deepEqual(delivered, ['9']);
});

test('forget drops a pending echo (the object was deleted); the map stays bounded', async () => {
  const w = new OwnWrites(3);
  await w.write('Secret', 'ns', 'a', async () => obj('1'));
  w.forget('Secret', obj('1'));
  assert.equal(w.filter('Secret', obj('1'), () => {}), false);
  for (const n of ['b', 'c', 'd', 'e']) await w.write('Secret', 'ns', n, async () => obj('1', n));
  assert.equal(w.size(), 3);
});
