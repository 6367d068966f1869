import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CRD_DIR, renderCrdFiles } from './generate-crds.ts';
import { sendingPoolCrd, mailDomainCrd, type JsonSchema } from './crd.ts';

test('committed crds/*.yaml match the zod schemas (run `npm run crds` after changing operator/api)', async () => {
  for (const [name, text] of renderCrdFiles()) {
    const committed = await readFile(join(CRD_DIR, name), 'utf8').catch(() => '(missing)');
    assert.equal(committed, text, `crds/${name} is stale: run npm run crds and commit the result`);
  }
});

// The apiserver's structural-schema rules, checked here so a bad generator change fails fast
// instead of only in the cluster suite.
function walk(node: JsonSchema, path: string, visit: (n: JsonSchema, p: string) => void): void {
  visit(node, path);
  const props = node.properties as Record<string, JsonSchema> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) walk(v, `${path}.${k}`, visit);
  if (node.items && typeof node.items === 'object') walk(node.items as JsonSchema, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object')
    walk(node.additionalProperties as JsonSchema, `${path}{}`, visit);
}

for (const crd of [sendingPoolCrd(), mailDomainCrd()]) {
  const version = (crd.spec as { versions: JsonSchema[] }).versions[0]!;
  const root = (version.schema as { openAPIV3Schema: JsonSchema }).openAPIV3Schema;
  const kind = (crd.spec as { names: { kind: string } }).names.kind;

  test(`${kind}: schema is structural`, () => {
    walk(root, '', (n, p) => {
      const intOrString = n['x-kubernetes-int-or-string'] === true;
      assert.ok(n.type || intOrString || n['x-kubernetes-preserve-unknown-fields'], `${p || '(root)'} has no type`);
      assert.ok(!(n.properties && n.additionalProperties), `${p}: properties and additionalProperties together`);
      for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
        for (const b of (n[key] as JsonSchema[] | undefined) ?? []) {
          if (!intOrString) assert.equal(b.type, undefined, `${p}.${key}: a branch must not set type`);
        }
      }
      for (const k of Object.keys(n)) assert.ok(!k.startsWith('$') && !k.startsWith('x-mailfleet'), `${p}: stray key ${k}`);
      if (typeof n.exclusiveMinimum !== 'undefined') assert.equal(typeof n.exclusiveMinimum, 'boolean', p);
      if (n.type === 'integer') assert.match(String(n.format), /^int(32|64)$/, `${p}: integer without format`);
      if (typeof n.pattern === 'string') assert.doesNotMatch(n.pattern, /\(\?[=!<]/, `${p}: look-arounds are not RE2`);
    });
  });

  // `kubectl explain` shows a field's description; a field without one is a question every user
  // has to ask someone. Items of a list and values of a map are described by their field.
  test(`${kind}: every field has a description`, () => {
    const missing: string[] = [];
    walk(root, '', (n, p) => {
      // metadata is the apiserver's: a CRD may say nothing of it but its type.
      if (p === '' || p === '.metadata' || p.endsWith('[]') || p.endsWith('{}')) return;
      if (typeof n.description !== 'string' || n.description.trim() === '') missing.push(p);
    });
    assert.deepEqual(missing, [], `fields without a description (add .describe() in operator/api, then npm run crds)`);
  });

  test(`${kind}: status subresource, printer columns and short names`, () => {
    assert.deepEqual(version.subresources, { status: {} });
    const cols = version.additionalPrinterColumns as { name: string; priority?: number }[];
    assert.ok(cols.some((c) => c.name === 'Ready'));
    assert.ok(cols.some((c) => c.name === 'Age'));
    assert.ok(cols.some((c) => c.priority === 1));
    assert.ok(((crd.spec as { names: { shortNames: string[] } }).names.shortNames).length > 0);
  });
}

test('SendingPool CRD carries the required CEL rules', () => {
  const text = JSON.stringify(sendingPoolCrd());
  for (const needle of ['ip(a.address) == ip(b.address)', 'self == oldSelf', 'isSorted()', 'has(self.preset) != has(self.steps)']) {
    assert.ok(text.includes(needle), `missing CEL rule containing ${needle}`);
  }
  const cols = ((sendingPoolCrd().spec as { versions: JsonSchema[] }).versions[0]!.additionalPrinterColumns as { name: string }[]).map(
    (c) => c.name,
  );
  for (const c of ['Ready', 'IPs', 'Warm-up', 'Bounce rate', 'Age']) assert.ok(cols.includes(c), c);
});

test('toStructural: the rewrites the apiserver needs', async () => {
  const { toStructural, openApiSchema } = await import('./crd.ts');
  const { z } = await import('zod');
  const { quantity, ipAddress } = await import('./common.ts');
  const root = openApiSchema(
    z
      .object({
        spec: z
          .object({
            q: quantity.default('1Gi'),
            ip: ipAddress,
            n: z.number().int().min(0).max(10),
            big: z.number().int(),
            f: z.number().gt(0),
            lit: z.literal('x'),
            either: z.union([z.literal('a'), z.literal('b')]),
            m: z.record(z.string(), z.string()),
            nested: z.object({ a: z.number().int().default(1) }).prefault({}),
          })
          .strict(),
      })
      .strict(),
  );
  const p = ((root.properties as JsonSchema).spec as JsonSchema).properties as Record<string, JsonSchema>;
  assert.deepEqual(p.q!.anyOf, [{ type: 'integer' }, { type: 'string' }]);
  assert.equal(p.q!['x-kubernetes-int-or-string'], true);
  assert.equal(p.q!.default, '1Gi');
  assert.deepEqual(p.ip, { type: 'string', maxLength: 45, anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] });
  assert.deepEqual(p.n, { type: 'integer', minimum: 0, maximum: 10, format: 'int32' });
  assert.deepEqual(p.big, { type: 'integer', format: 'int64' });
  assert.deepEqual(p.f, { type: 'number', minimum: 0, exclusiveMinimum: true, format: 'double' });
  assert.deepEqual(p.lit, { type: 'string', enum: ['x'] });
  assert.deepEqual(p.either, { type: 'string', enum: ['a', 'b'] });
  assert.deepEqual(p.m, { type: 'object', additionalProperties: { type: 'string' } });
  // The apiserver validates a default as written, so nested defaults are filled in.
  assert.deepEqual(p.nested!.default, { a: 1 });
  assert.equal(((root.properties as JsonSchema).spec as JsonSchema).additionalProperties, undefined);
  assert.throws(() => toStructural({ anyOf: [{ type: 'string' }, { type: 'object' }] }), /cannot express a union/);
});
