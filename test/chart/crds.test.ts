// The chart's CRDs: a byte-for-byte copy of the generated crds/*.yaml (drift fails here), rendered
// unchanged apart from the chart's labels and the keep annotation, switchable with crds.enabled.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { byKind, chartDir, helmTemplate, helmTools, renderChart, run, validateWithModels, type K8sObject } from './helm.ts';
import { crdDrift, sourceCrdFiles, sourceDir } from './sync-crds.ts';

let helm = '';
let skipped = '';

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
});

async function sourceCrds(): Promise<K8sObject[]> {
  const out: K8sObject[] = [];
  for (const f of await sourceCrdFiles()) {
    for (const doc of parseAllDocuments(await readFile(path.join(sourceDir, f), 'utf8'))) {
      const v = doc.toJS() as K8sObject | null;
      if (v) out.push(v);
    }
  }
  return out;
}

/** The object without the metadata the chart adds (labels, annotations). */
function withoutChartMetadata(o: K8sObject): K8sObject {
  const { labels: _l, annotations: _a, ...metadata } = o.metadata;
  return { ...o, metadata };
}

describe('charts/mailfleet: CRDs', () => {
  test('files/crds/ is an up-to-date copy of crds/ (refresh: node test/chart/sync-crds.ts)', async (t) => {
    if ((await sourceCrdFiles()).length === 0) {
      return t.skip('crds/ holds no generated CRDs yet (npm run crds); nothing to compare');
    }
    assert.deepEqual(await crdDrift(), [], 'the chart ships stale CRDs: run node test/chart/sync-crds.ts');
  });

  test('rendered CRDs equal the generated ones plus labels and helm.sh/resource-policy: keep', async (t) => {
    if (skipped) return t.skip(skipped);
    const src = await sourceCrds();
    if (src.length === 0) return t.skip('crds/ holds no generated CRDs yet (npm run crds)');
    const rendered = byKind(await renderChart(helm), 'CustomResourceDefinition');
    assert.deepEqual(rendered.map((c) => c.metadata.name).sort(), src.map((c) => c.metadata.name).sort());
    for (const crd of rendered) {
      const v = await validateWithModels(crd);
      assert.ok(v.validated, `CRD ${crd.metadata.name} validated by kubernetes-models`);
      const original = src.find((s) => s.metadata.name === crd.metadata.name)!;
      // Deep equality catches anything helm's fromYaml/toYaml round trip would change
      // (numbers, quoted strings, CEL rules with YAML-special characters, defaults).
      assert.deepEqual(withoutChartMetadata(crd), withoutChartMetadata(original), `${crd.metadata.name} renders unchanged`);
      assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
      assert.equal(crd.metadata.labels?.['app.kubernetes.io/name'], 'mailfleet');
      assert.equal(crd.metadata.labels?.['app.kubernetes.io/managed-by'], 'Helm');
    }
  });

  test('crds.keep=false drops the annotation; crds.enabled=false renders no CRD', async (t) => {
    if (skipped) return t.skip(skipped);
    if ((await sourceCrdFiles()).length === 0) return t.skip('crds/ holds no generated CRDs yet (npm run crds)');
    const notKept = byKind(await renderChart(helm, ['--set', 'crds.keep=false']), 'CustomResourceDefinition');
    assert.ok(notKept.length > 0);
    for (const crd of notKept) assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], undefined);
    const disabled = await renderChart(helm, ['--set', 'crds.enabled=false']);
    assert.deepEqual(byKind(disabled, 'CustomResourceDefinition'), []);
    assert.ok(disabled.some((o) => o.kind === 'Deployment'), 'the rest of the chart still renders');
  });

  test('the packaged chart (helm package) carries and renders the CRDs', async (t) => {
    if (skipped) return t.skip(skipped);
    if ((await sourceCrdFiles()).length === 0) return t.skip('crds/ holds no generated CRDs yet (npm run crds)');
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'mailfleet-pkg-'));
    try {
      const r = await run(helm, ['package', chartDir, '-d', tmp]);
      assert.equal(r.code, 0, r.stderr);
      const tgz = r.stdout.trim().split(': ').pop()!;
      const fromPackage = byKind(await renderChart(helm, [], tgz), 'CustomResourceDefinition');
      const fromDir = byKind(await renderChart(helm), 'CustomResourceDefinition');
      assert.equal(fromPackage.length, (await sourceCrds()).length, '.helmignore must not drop files/crds');
      assert.deepEqual(fromPackage, fromDir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  test('template mechanics: multi-document files, labels merged, a non-CRD or broken file named in the error', async (t) => {
    if (skipped) return t.skip(skipped);
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'mailfleet-chart-'));
    try {
      const chart = path.join(tmp, 'mailfleet');
      const dir = path.join(chart, 'files', 'crds');
      // The chart without its real CRDs, and fixtures in their place.
      await cp(chartDir, chart, { recursive: true, filter: (s) => !s.startsWith(path.join(chartDir, 'files', 'crds')) });
      await mkdir(dir, { recursive: true });
      const crd = (name: string, extra = '') => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${name}s.example.test
${extra}spec:
  group: example.test
  names: { kind: ${name[0]!.toUpperCase()}${name.slice(1)}, plural: ${name}s, singular: ${name}, listKind: ${name[0]!.toUpperCase()}${name.slice(1)}List }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - rule: "self.a != 'yes' && size(self.b) <= 253"
                  message: "a: no: 'yes' # not a comment"
              properties:
                a: { type: string, default: "on" }
                b: { type: string, maxLength: 253 }
                c: { type: number, default: 0.5 }
`;
      await writeFile(path.join(dir, 'two.yaml'), `---\n${crd('alpha', '  labels: { team: mail }\n')}---\n${crd('beta')}`);
      const objs = byKind(await renderChart(helm, [], chart), 'CustomResourceDefinition');
      assert.deepEqual(objs.map((o) => o.metadata.name), ['alphas.example.test', 'betas.example.test']);
      assert.equal(objs[0]?.metadata.labels?.team, 'mail', 'labels of the source are kept');
      assert.equal(objs[0]?.metadata.labels?.['app.kubernetes.io/instance'], 'mf');
      const v = (objs[0] as unknown as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Record<string, unknown> } } } }[] } })
        .spec.versions[0]!.schema.openAPIV3Schema.properties.spec;
      assert.deepEqual(v['x-kubernetes-validations'], [{ rule: "self.a != 'yes' && size(self.b) <= 253", message: "a: no: 'yes' # not a comment" }]);
      assert.deepEqual(v.properties, { a: { type: 'string', default: 'on' }, b: { type: 'string', maxLength: 253 }, c: { type: 'number', default: 0.5 } });

      await writeFile(path.join(dir, 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n');
      let r = await helmTemplate(helm, [], chart);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /files\/crds\/cm\.yaml: expected kind CustomResourceDefinition, found ConfigMap/);
      await writeFile(path.join(dir, 'cm.yaml'), 'kind: [unclosed\n');
      r = await helmTemplate(helm, [], chart);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /files\/crds\/cm\.yaml: not valid YAML/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
