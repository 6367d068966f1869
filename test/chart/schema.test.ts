// values.schema.json: helm refuses bad values with a message naming the field, and the schema
// and values.yaml describe the same keys (a key added to one but not the other fails here).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, helmTemplate, helmTools, run } from './helm.ts';

let helm = '';
let skipped = '';

before(async () => {
  const tools = await helmTools();
  if ('skipped' in tools) skipped = tools.skipped;
  else helm = tools.helm;
});

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  description?: string;
}

/** [--set arguments, what helm's message must say] */
const refused: [string[], RegExp][] = [
  [['--set', 'replicaCount=-1'], /at '\/replicaCount': minimum: got -1, want 0/],
  [['--set', 'replicaCount=two'], /at '\/replicaCount': got string, want integer/],
  [['--set', 'image.pullPolicy=Sometimes'], /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/],
  [['--set', 'image.digest=latest'], /at '\/image\/digest': 'latest' does not match pattern/],
  [['--set', 'watchNamespace=Team_A'], /at '\/watchNamespace': 'Team_A' does not match pattern/],
  [['--set', 'leaderElection.leaseDuration=15s'], /at '\/leaderElection': additional properties 'leaseDuration' not allowed/],
  [['--set', 'crds.enabled=yes'], /at '\/crds\/enabled': got string, want boolean/],
  [['--set', 'crds.kep=false'], /at '\/crds': additional properties 'kep' not allowed/],
  [['--set', 'dnsServers[0]=dns.example'], /at '\/dnsServers\/0': 'dns.example' does not match pattern/],
  [['--set', 'metrics.port=70000'], /at '\/metrics\/port': maximum: got 70,000, want 65,535|at '\/metrics\/port': maximum/],
  [['--set', 'serviceMonitor.interval=30 seconds'], /at '\/serviceMonitor\/interval': '30 seconds' does not match pattern/],
  [['--set', 'podDisruptionBudget.minAvailable=half'], /at '\/podDisruptionBudget\/minAvailable'/],
  [['--set', 'replicas=2'], /additional properties 'replicas' not allowed/],
];

const accepted: string[][] = [
  ['--set', 'watchNamespace=team-a', '--set', 'dnsServers[0]=10.0.0.10', '--set', 'dnsServers[1]=127.0.0.1:5353', '--set', 'dnsServers[2]=[fd00::53]:53'],
  ['--set', 'podDisruptionBudget.enabled=true', '--set', 'podDisruptionBudget.maxUnavailable=50%'],
  ['--set', 'serviceMonitor.interval=1m30s', '--set', 'image.tag=0.2.0-rc.1'],
];

describe('charts/mailfleet: values.schema.json', () => {
  for (const [args, message] of refused) {
    test(`refuses ${args.filter((a) => a !== '--set').join(' ')}`, async (t) => {
      if (skipped) return t.skip(skipped);
      const r = await helmTemplate(helm, args);
      assert.notEqual(r.code, 0, `helm accepted ${args.join(' ')}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, message);
    });
  }

  test('accepts valid non-default values', async (t) => {
    if (skipped) return t.skip(skipped);
    for (const args of accepted) {
      const r = await helmTemplate(helm, args);
      assert.equal(r.code, 0, `helm refused ${args.join(' ')}:\n${r.stderr}`);
    }
  });

  test('helm lint reports a bad values file', async (t) => {
    if (skipped) return t.skip(skipped);
    const r = await run(helm, ['lint', chartDir, '--set', 'logLevel=loud', '--set', 'leaderElection.leaseDuration=15s']);
    assert.notEqual(r.code, 0);
    assert.match(`${r.stdout}${r.stderr}`, /at '\/logLevel': value must be one of/);
    assert.match(`${r.stdout}${r.stderr}`, /at '\/leaderElection': additional properties 'leaseDuration' not allowed/);
  });

  test('every key of values.yaml is in the schema, and every schema property has a default in values.yaml', async () => {
    const schema = JSON.parse(await readFile(path.join(chartDir, 'values.schema.json'), 'utf8')) as Schema;
    const values = parse(await readFile(path.join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const problems: string[] = [];
    const walk = (s: Schema, v: unknown, at: string): void => {
      const props = s.properties;
      if (!props) return;
      // Objects closed by the schema must document each key; open maps (labels, resources…) need not.
      const obj = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
      for (const [k, sub] of Object.entries(props)) {
        if (k === 'global') continue;
        if (obj && !(k in obj) && s.additionalProperties === false) problems.push(`${at}${k}: in the schema, missing from values.yaml`);
        if (obj && k in obj) walk(sub, obj[k], `${at}${k}.`);
      }
      if (obj && s.additionalProperties === false) {
        for (const k of Object.keys(obj)) if (!(k in props)) problems.push(`${at}${k}: in values.yaml, missing from the schema`);
      }
    };
    walk(schema, values, '');
    assert.deepEqual(problems, []);
  });
});
