import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heldRollouts, isSettled, ANNOTATION_TEMPLATE_HASH, type CachedStatefulSet } from './rollout.ts';
import type { RenderedObject } from './names.ts';

const sts = (name: string, hash: string): RenderedObject => ({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, labels: {}, annotations: { [ANNOTATION_TEMPLATE_HASH]: hash } } });
const cached = (hash: string, settled = true): CachedStatefulSet => ({
  metadata: { generation: 2, annotations: { [ANNOTATION_TEMPLATE_HASH]: hash } },
  spec: { replicas: 1 },
  status: settled
    ? { observedGeneration: 2, replicas: 1, readyReplicas: 1, updatedReplicas: 1, currentRevision: 'r2', updateRevision: 'r2' }
    : { observedGeneration: 2, replicas: 1, readyReplicas: 0, updatedReplicas: 1, currentRevision: 'r1', updateRevision: 'r2' },
});

test('a restart-only change to every relay: the first goes, the others wait', () => {
  const have: Record<string, CachedStatefulSet> = { a: cached('old'), b: cached('old'), c: cached('old') };
  assert.deepEqual(heldRollouts([sts('a', 'new'), sts('b', 'new'), sts('c', 'new')], (n) => have[n]), ['b', 'c']);
});

test('while one relay rolls (not updated or not Ready), every other restart waits', () => {
  const have: Record<string, CachedStatefulSet> = { a: cached('new', false), b: cached('old'), c: cached('old') };
  assert.deepEqual(heldRollouts([sts('a', 'new'), sts('b', 'new'), sts('c', 'new')], (n) => have[n]), ['b', 'c']);
  // a is done: the next one goes.
  have.a = cached('new');
  assert.deepEqual(heldRollouts([sts('a', 'new'), sts('b', 'new'), sts('c', 'new')], (n) => have[n]), ['c']);
});

test('a relay that is down already is restarted at once (a fix for a crash loop does not wait behind it)', () => {
  const have: Record<string, CachedStatefulSet> = { a: cached('old'), b: cached('old', false), c: cached('old') };
  assert.deepEqual(heldRollouts([sts('a', 'new'), sts('b', 'new'), sts('c', 'new')], (n) => have[n]), ['a', 'c']);
});

test('new relays and unchanged templates are never held', () => {
  const have: Record<string, CachedStatefulSet> = { a: cached('same', false) };
  assert.deepEqual(heldRollouts([sts('a', 'same'), sts('new-ip', 'x')], (n) => have[n]), []);
});

test('settled: generation observed, the pod updated and Ready', () => {
  assert.equal(isSettled(cached('h')), true);
  assert.equal(isSettled(cached('h', false)), false);
  assert.equal(isSettled({ metadata: { generation: 3 }, spec: { replicas: 1 }, status: { observedGeneration: 2, readyReplicas: 1, updatedReplicas: 1 } }), false);
});
