import { test } from 'node:test';
import assert from 'node:assert/strict';
import { covers } from './controller.ts';

test('covers: every rendered field present and equal; fields others added are ignored', () => {
  const desired = { metadata: { name: 'p', labels: { a: '1' } }, spec: { ports: [{ port: 587, protocol: 'TCP' }] } };
  const actual = { metadata: { name: 'p', labels: { a: '1', extra: 'x' }, uid: 'u' }, spec: { ports: [{ port: 587, protocol: 'TCP', targetPort: 10587 }], clusterIP: '10.0.0.5' } };
  assert.equal(covers(actual, desired), true);
  assert.equal(covers({ ...actual, metadata: { ...actual.metadata, labels: { a: '2' } } }, desired), false, 'a changed value (drift) means apply');
  assert.equal(covers({ ...actual, spec: { ports: [] } }, desired), false, 'a list of another length means apply');
  assert.equal(covers({ metadata: actual.metadata }, desired), false, 'a missing field means apply');
  assert.equal(covers(actual, { spec: { clusterIP: undefined } }), true, 'undefined in the rendered object is not sent, so not compared');
});
