// Feedback on a real kube-apiserver: a SendingPool with spec.feedback and a MailDomain with a
// webhook and one-click unsubscribe give a ConfigMap and StatefulSets carrying the rendered fields
// and mounts, the operator's own Secrets (API token, the links' key) made once, the unsubscribe
// port on the pool Service; a webhook URL change reaches the ConfigMap without touching the pod
// template (the relay applies it live).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { RelayConfigSchema } from '../../relay/config/schema.ts';
import type { RunningOperator } from '../../operator/main.ts';
import type { KubeObject } from '../../operator/runtime/kube.ts';
import { ANNOTATION_TEMPLATE_HASH } from '../../operator/render/index.ts';
import { clusterEnv, operatorOn, waitFor, samplePool, condition, DOMAIN_REF, POOL_REF, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'feedback';
let e: Env;
let op: RunningOperator | undefined;

before(async () => {
  if (skip) return;
  e = env as Env;
  op = await operatorOn(e, [NS], { namespace: NS });
});

after(async () => {
  await op?.stop();
  if (!skip) await e.cluster.stop();
});

const secret = (name: string, data: Record<string, string>, type = 'Opaque'): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS }, type, stringData: data }) as KubeObject;
const configs = async () => {
  const cm = await e.kube.find<KubeObject & { data?: Record<string, string> }>('v1', 'ConfigMap', NS, 'fb-relay-config');
  return Object.values(cm?.data ?? {}).map((t) => RelayConfigSchema.parse(parse(t)));
};
const statefulSets = async () => (await e.kube.list('apps/v1', 'StatefulSet', NS, 'mailfleet.io/pool=fb')).items as (KubeObject & { spec: any })[];
const secretData = async (name: string) => (await e.kube.find<KubeObject & { data?: Record<string, string> }>('v1', 'Secret', NS, name))?.data;

test('the rendered feedback fields and mounts on the apiserver; a webhook change re-renders the ConfigMap, not the pods', { skip }, async () => {
  // A CloudNativePG <cluster>-app Secret as the operator of that database makes it.
  await e.kube.create(secret('fleet-db-app', { uri: 'postgresql://app:pw@fleet-db-rw.feedback:5432/app', username: 'app', password: 'pw' }, 'kubernetes.io/basic-auth'));
  await e.kube.create(secret('unsubscribe-tls', { 'tls.crt': 'x', 'tls.key': 'y' }));
  await e.kube.create(samplePool('fb', NS, {
    feedback: { postgres: { secretRef: { name: 'fleet-db-app' } }, unsubscribe: { host: 'unsubscribe.shop.test', tlsSecretRef: { name: 'unsubscribe-tls' } } },
  }));
  await e.kube.create({
    apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', metadata: { name: 'shop', namespace: NS },
    spec: { domain: 'shop.test', poolRef: { name: 'fb' }, webhook: { url: 'https://hooks.shop.test/a', secretRef: { name: 'shop-webhook' } }, oneClickUnsubscribe: true },
  } as KubeObject);

  // The webhook's Secret is missing: the pool says which field names it.
  await waitFor('Ready=False SecretNotFound naming the MailDomain field', async () => {
    const c = condition(await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'fb'), 'Ready');
    return c?.status === 'False' && c.reason === 'SecretNotFound' && c.message.includes('MailDomain shop spec.webhook.secretRef.name: Secret "shop-webhook" not found');
  });
  await e.kube.create(secret('shop-webhook', { secret: 'k' }));
  await waitFor('Ready no longer SecretNotFound', async () => condition(await e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, NS, 'fb'), 'Ready')?.reason !== 'SecretNotFound');

  const first = await waitFor('the ConfigMap with the webhook', async () => {
    const c = await configs();
    return c.length === 2 && c.every((x) => x.domains[0]?.webhook?.url === 'https://hooks.shop.test/a') ? c : undefined;
  });
  for (const c of first) {
    assert.equal(c.feedback.postgres?.urlFile, '/etc/mailfleet/feedback/postgres-url');
    assert.equal(c.feedback.apiTokenFile, '/etc/mailfleet/api/token');
    assert.equal(c.feedback.unsubscribe?.baseUrl, 'https://unsubscribe.shop.test');
    assert.equal(c.domains[0]!.oneClickUnsubscribe, true);
  }
  const sets = await waitFor('two StatefulSets mounting the feedback Secrets', async () => {
    const s = await statefulSets();
    return s.length === 2 && s.every((x) => x.spec.template.spec.volumes.some((v: { name: string }) => v.name === 'feedback')) ? s : undefined;
  });
  for (const s of sets) {
    const vols = s.spec.template.spec.volumes as Record<string, any>[];
    const sources = vols.find((v) => v.name === 'feedback')!.projected.sources.map((x: { secret: { name: string } }) => x.secret.name);
    assert.deepEqual(sources, ['fleet-db-app', 'fb-unsubscribe-key', 'shop-webhook']);
    assert.equal(vols.find((v) => v.name === 'api-token')!.secret.secretName, 'fb-relay-api');
    assert.equal(vols.find((v) => v.name === 'unsubscribe-tls')!.secret.secretName, 'unsubscribe-tls');
    const mounts = s.spec.template.spec.containers[0].volumeMounts as { name: string; readOnly?: boolean }[];
    assert.ok(['api-token', 'feedback', 'unsubscribe-tls'].every((n) => mounts.find((m) => m.name === n)?.readOnly === true));
  }
  const svc = await e.kube.get('v1', 'Service', NS, 'fb') as KubeObject & { spec: { ports: { name: string; port: number; targetPort: number }[] } };
  assert.deepEqual(svc.spec.ports.find((p) => p.name === 'unsubscribe'), { name: 'unsubscribe', port: 443, targetPort: 8443, protocol: 'TCP' });

  // The operator's Secrets: 32 random bytes each, made once.
  const token = await waitFor('the API token Secret', () => secretData('fb-relay-api'));
  const linksKey = await waitFor('the links key Secret', () => secretData('fb-unsubscribe-key'));
  assert.equal(Buffer.from(Buffer.from(token.token!, 'base64').toString().trim(), 'base64url').length, 32);
  assert.equal(Buffer.from(Buffer.from(linksKey.key!, 'base64').toString().trim(), 'base64url').length, 32);

  const hashes = new Map(sets.map((s) => [s.metadata!.name!, s.metadata!.annotations![ANNOTATION_TEMPLATE_HASH]]));
  await e.kube.mergePatch({ ...DOMAIN_REF, namespace: NS, name: 'shop' }, { spec: { webhook: { url: 'https://hooks.shop.test/b' } } });
  await waitFor('the ConfigMap with the new webhook URL', async () => (await configs()).every((x) => x.domains[0]?.webhook?.url === 'https://hooks.shop.test/b'));
  for (const s of await statefulSets()) assert.equal(s.metadata!.annotations![ANNOTATION_TEMPLATE_HASH], hashes.get(s.metadata!.name!), 'pod template unchanged: applied live');
  assert.deepEqual(await secretData('fb-relay-api'), token, 'a re-render never rotates the token');
  assert.deepEqual(await secretData('fb-unsubscribe-key'), linksKey);

  // The apiserver refuses a webhook that is not HTTPS (CEL).
  await assert.rejects(e.kube.mergePatch({ ...DOMAIN_REF, namespace: NS, name: 'shop' }, { spec: { webhook: { url: 'http://hooks.shop.test/c' } } }), /webhook\.url must be an https:\/\/ URL/);
});
