// The manifests in examples/ against both halves of the API: the zod schemas (what the operator
// enforces) and the generated CRD schema (what the apiserver enforces, minus CEL, which only a
// real apiserver evaluates; the cluster suite applies the same files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { sendingPoolCrd, mailDomainCrd, defaulted, type JsonSchema } from './crd.ts';
import { parseMailDomain, parseSendingPool, MailDomainSchema, SendingPoolSchema } from './index.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const crds = { SendingPool: sendingPoolCrd(), MailDomain: mailDomainCrd() };
const openApi = (crd: JsonSchema) =>
  ((crd.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] }).versions[0]!.schema.openAPIV3Schema);

/** OpenAPI v3.0 (boolean exclusive bounds) → the JSON Schema draft ajv speaks. */
function forAjv(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(forAjv);
  if (typeof node !== 'object' || node === null) return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) if (!k.startsWith('x-kubernetes-')) out[k] = forAjv(v);
  for (const [ex, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (out[ex] === true) {
      out[ex] = out[bound];
      delete out[bound];
    }
  }
  // The apiserver prunes unknown fields silently; kubectl's strict validation and zod refuse them.
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('ipv4', (s: string) => isIPv4(s));
ajv.addFormat('ipv6', (s: string) => isIPv6(s));
ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
for (const f of ['int32', 'int64', 'double']) ajv.addFormat(f, true);
const validators = {
  SendingPool: ajv.compile(forAjv(openApi(crds.SendingPool)) as object),
  MailDomain: ajv.compile(forAjv(openApi(crds.MailDomain)) as object),
};

function check(doc: { kind?: string }): { zod: string[]; crd: string[] } {
  const kind = doc.kind as keyof typeof validators;
  assert.ok(kind in validators, `unknown kind ${doc.kind}`);
  const parsed = kind === 'SendingPool' ? parseSendingPool(doc) : parseMailDomain(doc);
  const validate = validators[kind];
  const crdOk = validate(doc);
  return {
    zod: parsed.ok ? [] : parsed.problems,
    crd: crdOk ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`),
  };
}

async function docs(file: string): Promise<{ kind?: string }[]> {
  const text = await readFile(file, 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS());
}

test('the generated CRDs are valid CustomResourceDefinitions', () => {
  for (const crd of Object.values(crds)) new CustomResourceDefinition(structuredClone(crd) as never).validate();
});

for (const name of ['sendingpool.yaml', 'maildomain.yaml', 'egress/hostnetwork.yaml', 'egress/multus.yaml', 'egress/cilium.yaml']) {
  test(`examples/${name} is accepted by zod and by the CRD schema`, async () => {
    for (const doc of await docs(join(EXAMPLES, name))) assert.deepEqual(check(doc), { zod: [], crd: [] });
  });
}

test('the CRD defaults and the zod defaults fill in the same values', async () => {
  // Checked against kube-apiserver 1.34 once by hand; this keeps them from drifting.
  for (const name of ['sendingpool.yaml', 'maildomain.yaml', 'egress/hostnetwork.yaml', 'egress/multus.yaml', 'egress/cilium.yaml']) {
    for (const doc of await docs(join(EXAMPLES, name))) {
      const kind = doc.kind as keyof typeof crds;
      const minimal = structuredClone(doc) as { spec: Record<string, unknown> };
      // Drop every optional top-level spec field so the defaults have work to do.
      for (const k of Object.keys(minimal.spec)) if (!['ips', 'submission', 'domain', 'poolRef', 'egress'].includes(k)) delete minimal.spec[k];
      const byApiserver = (defaulted(openApi(crds[kind]), minimal) as { spec: unknown }).spec;
      const schema = kind === 'SendingPool' ? SendingPoolSchema : MailDomainSchema;
      const byZod = (schema.parse(minimal) as { spec: unknown }).spec;
      assert.deepEqual(byApiserver, byZod, name);
    }
  }
});

const celMessages = Object.values(crds).flatMap((crd) => {
  const found: string[] = [];
  JSON.stringify(crd, (k, v) => {
    if (k === 'x-kubernetes-validations') for (const r of v as { message: string }[]) found.push(r.message);
    return v;
  });
  return found;
});

test('every CEL rule has an invalid example', async () => {
  const expects: string[] = [];
  for (const f of await readdir(join(EXAMPLES, 'invalid'))) {
    if (!f.endsWith('.yaml')) continue;
    const m = /^# expect: (.+)$/m.exec(await readFile(join(EXAMPLES, 'invalid', f), 'utf8'));
    if (m) expects.push(m[1]!);
  }
  for (const msg of celMessages) assert.ok(expects.some((e) => msg.includes(e)), `no invalid example expects "${msg}"`);
});

const invalid = (await readdir(join(EXAMPLES, 'invalid'))).filter((f) => f.endsWith('.yaml')).sort();
for (const f of invalid) {
  test(`examples/invalid/${f} is refused`, async () => {
    const text = await readFile(join(EXAMPLES, 'invalid', f), 'utf8');
    const expect = /^# expect: (.+)$/m.exec(text)?.[1];
    assert.ok(expect, 'needs a "# expect: <message substring>" line');
    const all = await docs(join(EXAMPLES, 'invalid', f));
    for (const earlier of all.slice(0, -1)) assert.deepEqual(check(earlier), { zod: [], crd: [] }, 'earlier documents must be valid');
    const last = all.at(-1)!;
    const isCel = celMessages.some((m) => m.includes(expect));
    if (all.length > 1) {
      // A transition rule: only the apiserver sees oldSelf. The new object alone is valid.
      assert.ok(isCel, `"${expect}" is not a CEL rule message`);
      return;
    }
    const { zod, crd } = check(last);
    assert.ok(zod.length > 0, 'zod accepted it');
    if (isCel) {
      // zod mirrors each CEL rule with the same message.
      assert.ok(zod.some((p) => p.includes(expect)), `zod said ${JSON.stringify(zod)}`);
    } else {
      assert.ok(crd.length > 0, 'the CRD schema accepted it');
    }
  });
}
