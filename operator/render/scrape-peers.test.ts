// The relays' NetworkPolicy admits their metrics port to the operator and to the scrapers the
// chart names (relayMetrics.allowFrom → --relay-metrics-from), and to nobody else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { pool } from './fixtures.test-helper.ts';
import { renderNetworkPolicy } from './pool.ts';
import { parseScrapePeers } from './scrape-peers.ts';

const KPS = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } }];

test('the metrics port is open to the operator and the configured scrapers only; submission ports stay open', () => {
  const np = renderNetworkPolicy(pool(), { operatorNamespace: 'mailfleet-system', metricsScrapers: parseScrapePeers(JSON.stringify(KPS)) });
  new NetworkPolicy(structuredClone(np) as never).validate();
  const ingress = (np.spec as { ingress: { from?: unknown[]; ports: { port: number }[] }[] }).ingress;
  const to8080 = ingress.filter((r) => r.ports.some((p) => p.port === 8080));
  assert.deepEqual(to8080.map((r) => r.from), [
    [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'mailfleet-system' } } }],
    KPS,
  ]);
  assert.ok(ingress.some((r) => r.from === undefined && !r.ports.some((p) => p.port === 8080)), 'submission ports from anywhere');
});

test('without scrapers the policy is as before: the operator alone reaches the metrics port', () => {
  const np = renderNetworkPolicy(pool(), { operatorNamespace: 'mailfleet-system', metricsScrapers: [] });
  const ingress = (np.spec as { ingress: { from?: unknown[]; ports: { port: number }[] }[] }).ingress;
  assert.equal(ingress.filter((r) => r.ports.some((p) => p.port === 8080)).length, 1);
});

test('a bad --relay-metrics-from names the flag and the entry', () => {
  assert.throws(() => parseScrapePeers('{nope'), /--relay-metrics-from: not JSON/);
  assert.throws(() => parseScrapePeers('{}'), /--relay-metrics-from: expected a JSON array/);
  assert.throws(() => parseScrapePeers('[{"namespaceSelector":{},"ports":[]}]'), /--relay-metrics-from\[0\]\.ports: unknown field/);
  assert.throws(() => parseScrapePeers('[{}]'), /--relay-metrics-from\[0\]: expected an object/);
  assert.throws(() => parseScrapePeers('[{"ipBlock":{}}]'), /--relay-metrics-from\[0\]\.ipBlock\.cidr/);
  assert.deepEqual(parseScrapePeers('[]'), []);
});
