import { test } from 'node:test';
import assert from 'node:assert/strict';
import { covers, domainRenderInputs } from './controller.ts';

test('covers: every rendered field present and equal; fields others added are ignored', () => {
  const desired = { metadata: { name: 'p', labels: { a: '1' } }, spec: { ports: [{ port: 587, protocol: 'TCP' }] } };
  const actual = { metadata: { name: 'p', labels: { a: '1', extra: 'x' }, uid: 'u' }, spec: { ports: [{ port: 587, protocol: 'TCP', targetPort: 10587 }], clusterIP: '10.0.0.5' } };
  assert.equal(covers(actual, desired), true);
  assert.equal(covers({ ...actual, metadata: { ...actual.metadata, labels: { a: '2' } } }, desired), false, 'a changed value (drift) means apply');
  assert.equal(covers({ ...actual, spec: { ports: [] } }, desired), false, 'a list of another length means apply');
  assert.equal(covers({ metadata: actual.metadata }, desired), false, 'a missing field means apply');
  assert.equal(covers(actual, { spec: { clusterIP: undefined } }), true, 'undefined in the rendered object is not sent, so not compared');
});

test('domainRenderInputs: a new domain\'s first key changes nothing the pool renders; a rotation, a spec change or a deletion does', () => {
  const fresh = {
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'MailDomain',
    metadata: { name: 'd', namespace: 'ns', uid: 'u1', resourceVersion: '1' },
    spec: { domain: 'd.test', poolRef: { name: 'p' }, dkim: { selector: 'mailfleet', algorithm: 'rsa2048', rotateAfter: '4320h', gracePeriod: '168h' }, returnPath: { subdomain: 'bounces' }, dmarc: { policy: 'none' } },
  };
  const active = { selector: 'mailfleet', algorithm: 'rsa2048', secretName: 'd-dkim-mailfleet', state: 'Active', createdAt: '2026-11-29T00:00:00Z' };
  const keyed = { ...fresh, metadata: { ...fresh.metadata, resourceVersion: '2' }, status: { selectors: [active], lastCheckedAt: '2026-11-29T00:00:01Z' } };
  assert.equal(domainRenderInputs(keyed), domainRenderInputs(fresh), 'the first key lands under the Secret name already rendered');

  const retiring = { ...keyed, status: { selectors: [active, { selector: 'old', algorithm: 'rsa2048', secretName: 'd-dkim-old', state: 'Retiring' }] } };
  assert.equal(domainRenderInputs(retiring), domainRenderInputs(keyed), 'a Retiring key is published in DNS, not signed with');

  const rotated = { ...keyed, status: { selectors: [{ ...active, state: 'Retiring' }, { ...active, selector: 'mailfleet-20261130', secretName: 'd-dkim-mailfleet-20261130' }] } };
  assert.notEqual(domainRenderInputs(rotated), domainRenderInputs(keyed), 'a rotation signs with another key');
  assert.notEqual(domainRenderInputs({ ...keyed, spec: { ...keyed.spec, returnPath: { subdomain: 'rp' } } }), domainRenderInputs(keyed), 'a spec change');
  assert.notEqual(domainRenderInputs({ ...keyed, metadata: { ...keyed.metadata, deletionTimestamp: '2026-11-29T00:00:02Z' } }), domainRenderInputs(keyed), 'a deletion');
});

test('another writer\'s status change re-queues the pool: the reputation loop\'s quarantine record reaches the state (ip-state.ts) and the relay config only through that reconcile', async () => {
  const { sendingPoolController } = await import('./controller.ts');
  // 'spec' would drop status-only updates of the primary (operator/runtime/manager.ts).
  assert.notEqual(sendingPoolController({} as never).primaryUpdates, 'spec');
});
