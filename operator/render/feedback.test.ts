// The feedback render (operator/render/feedback.ts): relay config `feedback` and domains[].webhook /
// oneClickUnsubscribe, the Secrets mounted for them, the unsubscribe port on Service and
// NetworkPolicy, and which changes leave the pod template alone (they apply live).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { RelayConfigSchema } from '../../relay/config/schema.ts';
import { pool, domain } from './fixtures.test-helper.ts';
import { renderPoolChildren, ANNOTATION_TEMPLATE_HASH, ANNOTATION_CONFIG_HASH, type RenderedObject } from './index.ts';

const spec = (o: RenderedObject) => o.spec as Record<string, any>;
const feedback = {
  postgres: { secretRef: { name: 'fleet-db-app' } },
  unsubscribe: { host: 'unsubscribe.example.com', tlsSecretRef: { name: 'unsubscribe-tls' } },
};
const hooked = (url = 'https://hooks.example.com/mailfleet') =>
  domain({ webhook: { url, secretRef: { name: 'example-com-webhook' } }, oneClickUnsubscribe: true });

test('relay config: feedback section and the domain\'s webhook and one-click fields, accepted by the relay schema', () => {
  const objs = renderPoolChildren(pool({ feedback }), [hooked()]);
  const cm = objs.find((o) => o.kind === 'ConfigMap')!;
  for (const text of Object.values(cm.data as Record<string, string>)) {
    const cfg = RelayConfigSchema.parse(parse(text));
    assert.equal(cfg.feedback.apiTokenFile, '/etc/mailfleet/api/token');
    assert.equal(cfg.feedback.apiTokenFile, cfg.http.apiTokenFile, 'one token for the whole API');
    assert.equal(cfg.feedback.postgres?.urlFile, '/etc/mailfleet/feedback/postgres-url');
    assert.equal(cfg.feedback.unsubscribe?.baseUrl, 'https://unsubscribe.example.com');
    assert.equal(cfg.feedback.unsubscribe?.port, 8443);
    assert.equal(cfg.feedback.unsubscribe?.secretFile, '/etc/mailfleet/feedback/unsubscribe-key');
    assert.deepEqual(cfg.feedback.unsubscribe?.tls, { certFile: '/etc/mailfleet/unsubscribe-tls/tls.crt', keyFile: '/etc/mailfleet/unsubscribe-tls/tls.key' });
    assert.equal(cfg.domains[0]!.webhook?.url, 'https://hooks.example.com/mailfleet');
    assert.equal(cfg.domains[0]!.webhook?.secretFile, '/etc/mailfleet/feedback/webhooks/example-com-webhook/secret');
    assert.equal(cfg.domains[0]!.oneClickUnsubscribe, true);
  }
});

test('StatefulSet mounts the token, the feedback Secrets (projected, read-only) and the unsubscribe certificate', () => {
  const sts = renderPoolChildren(pool({ feedback }), [hooked()]).find((o) => o.kind === 'StatefulSet')!;
  const pod = spec(sts).template.spec;
  const vol = (n: string) => pod.volumes.find((v: { name: string }) => v.name === n);
  assert.deepEqual(vol('api-token').secret, { secretName: 'bulk-relay-api', defaultMode: 0o440 });
  assert.deepEqual(vol('feedback').projected.sources, [
    { secret: { name: 'fleet-db-app', items: [{ key: 'uri', path: 'postgres-url' }] } },
    { secret: { name: 'bulk-unsubscribe-key', items: [{ key: 'key', path: 'unsubscribe-key' }] } },
    { secret: { name: 'example-com-webhook', items: [{ key: 'secret', path: 'webhooks/example-com-webhook/secret' }] } },
  ]);
  assert.equal(vol('unsubscribe-tls').secret.secretName, 'unsubscribe-tls');
  const mounts = pod.containers[0].volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[];
  for (const n of ['api-token', 'feedback', 'unsubscribe-tls']) assert.equal(mounts.find((m) => m.name === n)?.readOnly, true, n);
  assert.ok(pod.containers[0].ports.some((p: { name: string; containerPort: number }) => p.name === 'unsubscribe' && p.containerPort === 8443));
});

test('the pool Service exposes 443 → 8443 and the NetworkPolicy opens 8443 to anyone', () => {
  const objs = renderPoolChildren(pool({ feedback }), [hooked()]);
  const svc = objs.find((o) => o.kind === 'Service' && o.metadata.name === 'bulk')!;
  assert.deepEqual(spec(svc).ports.find((p: { name: string }) => p.name === 'unsubscribe'), { name: 'unsubscribe', port: 443, targetPort: 8443, protocol: 'TCP' });
  const np = objs.find((o) => o.kind === 'NetworkPolicy')!;
  const open = spec(np).ingress.find((r: { from?: unknown }) => !r.from);
  assert.ok(open.ports.some((p: { port: number }) => p.port === 8443));
});

test('without spec.feedback: only the API token (no unsubscribe port, no feedback volume)', () => {
  const objs = renderPoolChildren(pool(), [domain()]);
  const cfg = RelayConfigSchema.parse(parse(Object.values(objs.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>)[0]!));
  assert.deepEqual({ ...cfg.feedback, suppression: undefined, events: undefined, webhooks: undefined }, { apiTokenFile: '/etc/mailfleet/api/token', suppression: undefined, events: undefined, webhooks: undefined });
  const pod = spec(objs.find((o) => o.kind === 'StatefulSet')!).template.spec;
  assert.deepEqual(pod.volumes.map((v: { name: string }) => v.name).filter((n: string) => ['feedback', 'unsubscribe-tls'].includes(n)), []);
  assert.ok(!spec(objs.find((o) => o.kind === 'Service' && o.metadata.name === 'bulk')!).ports.some((p: { name: string }) => p.name === 'unsubscribe'));
});

test('a webhook URL change or one-click toggle changes the ConfigMap, not the pod template (applied live)', () => {
  const a = renderPoolChildren(pool({ feedback }), [hooked('https://hooks.example.com/a')]);
  const b = renderPoolChildren(pool({ feedback }), [domain({ webhook: { url: 'https://hooks.example.com/b', secretRef: { name: 'example-com-webhook' } }, oneClickUnsubscribe: false })]);
  const sts = (objs: RenderedObject[]) => objs.find((o) => o.kind === 'StatefulSet')!;
  assert.notDeepEqual(a.find((o) => o.kind === 'ConfigMap')!.data, b.find((o) => o.kind === 'ConfigMap')!.data);
  assert.equal(sts(a).metadata.annotations![ANNOTATION_TEMPLATE_HASH], sts(b).metadata.annotations![ANNOTATION_TEMPLATE_HASH]);
  assert.equal(spec(sts(a)).template.metadata.annotations[ANNOTATION_CONFIG_HASH], spec(sts(b)).template.metadata.annotations[ANNOTATION_CONFIG_HASH]);
});
