// `mailfleet render`: the objects the operator would apply, from files, with no cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { RelayConfigSchema } from '../relay/config/schema.ts';
import { configVersion } from '../relay/config/version.ts';
import { parseSendingPool, parseMailDomain } from '../operator/api/index.ts';
import { renderPoolChildren } from '../operator/render/pool.ts';
import { PLACEHOLDER_UID } from '../operator/render/preview.ts';

const run = promisify(execFile);
const CLI = new URL('./mailfleet.ts', import.meta.url).pathname;
const EX = new URL('../examples/', import.meta.url).pathname;

async function render(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'render', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('the examples: every child of the pool, each relay config with its warm-up plan and state, and the DKIM Secret', async () => {
  const r = await render('-f', join(EX, 'sendingpool.yaml'), '-f', join(EX, 'maildomain.yaml'));
  assert.equal(r.code, 0, r.stderr);
  const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string> });
  assert.deepEqual(objects.map((o) => o.kind), ['ConfigMap', 'Service', 'Service', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'StatefulSet', 'StatefulSet', 'Secret', 'Secret']);
  assert.equal(objects[8]!.metadata.name, 'transactional-return-path-keys');
  // The same pure render the operator runs (the uid the apiserver would assign aside).
  const pool = parseSendingPool({ ...parse(readFileSync(join(EX, 'sendingpool.yaml'), 'utf8')), metadata: { name: 'transactional', namespace: 'default', uid: PLACEHOLDER_UID } });
  const domain = parseMailDomain({ ...parse(readFileSync(join(EX, 'maildomain.yaml'), 'utf8')), metadata: { name: 'example-com', namespace: 'default', uid: PLACEHOLDER_UID } });
  assert.ok(pool.ok && domain.ok);
  assert.deepEqual(objects.slice(0, 8), JSON.parse(JSON.stringify(renderPoolChildren(pool.value, [domain.value]))));
  const cm = objects[0]!;
  const configs = Object.values(cm.data!).map((t) => RelayConfigSchema.parse(parse(t)));
  assert.deepEqual(configs.map((c) => c.shaping.warmup[0]!.plan!.steps![0]), [{ day: 0, dailyLimit: 500 }, { day: 0, dailyLimit: 500 }]);
  assert.deepEqual(configs.map((c) => c.shaping.warmup[0]!.state), [{ countedDays: 0 }, { countedDays: 0 }]);
  assert.deepEqual(configs.map((c) => c.domains.map((d) => d.domain)), [['example.com'], ['example.com']]);
  const secret = objects[9]!;
  assert.equal(secret.metadata.name, 'example-com-dkim-mf1');
  assert.match(Buffer.from(secret.data!['private.pem']!, 'base64').toString(), /PLACEHOLDER/);
  // Deterministic: the same files print the same bytes (a pull request shows only real changes).
  assert.equal((await render('-f', join(EX, 'sendingpool.yaml'), '-f', join(EX, 'maildomain.yaml'))).stdout, r.stdout);
  // Each StatefulSet's config version is what the relay will report (status.ips[].configVersion).
  assert.match(configVersion(Object.values(cm.data!)[0]!), /^[0-9a-f]{16}$/);
});

test('-o json prints a v1 List; --keys-dir supplies the DKIM key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-render-'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(join(dir, 'example-com-dkim-mf1.pem'), pem);
  const r = await render('-f', join(EX, 'sendingpool.yaml'), '-f', join(EX, 'maildomain.yaml'), '-o', 'json', '--keys-dir', dir);
  assert.equal(r.code, 0, r.stderr);
  const list = JSON.parse(r.stdout) as { kind: string; items: { kind: string; data?: Record<string, string> }[] };
  assert.equal(list.kind, 'List');
  const secret = list.items.find((o) => o.kind === 'Secret' && o.data?.['private.pem'])!;
  assert.equal(Buffer.from(secret.data!['private.pem']!, 'base64').toString(), pem);
  assert.match(Buffer.from(secret.data!['public.txt']!, 'base64').toString(), /^MIIBIjAN/);
});

test('an invalid object: exit 2, naming the file, the object and the field', async () => {
  const r = await render('-f', join(EX, 'invalid', 'bad-ip-address.yaml'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad-ip-address\.yaml \(document 1\): SendingPool bad-ip: spec\.ips\[0\]\.address/);
  assert.equal(r.stdout, '');
});

test('usage errors name the flag', async () => {
  assert.match((await render()).stderr, /-f FILE is required/);
  const bad = await render('-f', join(EX, 'sendingpool.yaml'), '-o', 'xml');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /-o: expected yaml or json, got "xml"/);
  assert.match((await render('-f', join(EX, 'nope.yaml'))).stderr, /-f .*nope\.yaml: cannot read the file/);
});

test('a MailDomain whose pool is not in the files: its Secret, and a note saying so', async () => {
  const r = await render('-f', join(EX, 'maildomain.yaml'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /SendingPool transactional is not in the files/);
  assert.deepEqual(parseAllDocuments(r.stdout).map((d) => (d.toJS() as { kind: string }).kind), ['Secret']);
});

test('feedback: the relay config, mounts and unsubscribe port of a pool with spec.feedback and a domain with a webhook', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-render-feedback-'));
  const file = join(dir, 'feedback.yaml');
  writeFileSync(file, `apiVersion: mailfleet.io/v1alpha1
kind: SendingPool
metadata: { name: news }
spec:
  ips: [{ address: 203.0.113.20, hostname: mta20.example.net }]
  submission: { ports: [{ name: submission, port: 587, tls: none }] }
  feedback:
    postgres: { secretRef: { name: fleet-db-app } }
    unsubscribe: { host: unsubscribe.example.com, tlsSecretRef: { name: unsubscribe-tls } }
---
apiVersion: mailfleet.io/v1alpha1
kind: MailDomain
metadata: { name: example-com }
spec:
  domain: example.com
  poolRef: { name: news }
  webhook: { url: "https://hooks.example.com/mailfleet", secretRef: { name: example-com-webhook } }
  oneClickUnsubscribe: true
`);
  const r = await render('-f', file);
  assert.equal(r.code, 0, r.stderr);
  const objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: any });
  const cfg = RelayConfigSchema.parse(parse(Object.values(objects.find((o) => o.kind === 'ConfigMap')!.data!)[0]!));
  assert.equal(cfg.feedback.postgres?.urlFile, '/etc/mailfleet/feedback/postgres-url');
  assert.equal(cfg.feedback.unsubscribe?.baseUrl, 'https://unsubscribe.example.com');
  assert.deepEqual(cfg.domains[0]!.webhook, { url: 'https://hooks.example.com/mailfleet', secretFile: '/etc/mailfleet/feedback/webhooks/example-com-webhook/secret', keyId: 'k1' });
  const sts = objects.find((o) => o.kind === 'StatefulSet')!;
  assert.deepEqual(sts.spec.template.spec.volumes.map((v: { name: string }) => v.name).filter((n: string) => ['api-token', 'feedback', 'unsubscribe-tls'].includes(n)), ['api-token', 'feedback', 'unsubscribe-tls']);
  const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'news')!;
  assert.ok(svc.spec.ports.some((p: { name: string; port: number }) => p.name === 'unsubscribe' && p.port === 443));
});
