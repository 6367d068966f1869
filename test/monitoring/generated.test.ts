// The chart ships generated monitoring files (dashboards JSON, Prometheus rules): they must be
// exactly what monitoring/ generates, as the CRDs are what operator/api generates.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { dashboardsDir, generatedFiles } from '../../monitoring/generate.ts';

test('charts/mailfleet dashboards and rules are up to date with monitoring/ (else: npm run dashboards)', () => {
  const files = generatedFiles();
  for (const [file, text] of files) {
    assert.ok(existsSync(file), `${path.relative(process.cwd(), file)} is missing: run npm run dashboards`);
    assert.equal(readFileSync(file, 'utf8'), text, `${path.relative(process.cwd(), file)} differs from monitoring/: run npm run dashboards`);
  }
  const stale = readdirSync(dashboardsDir).filter((f) => !files.has(path.join(dashboardsDir, f)));
  assert.deepEqual(stale, [], 'dashboards no longer generated: run npm run dashboards');
});

test('every metric the relay and the operator export is in the table of docs/observability.md', async () => {
  const { createRelayMetrics } = await import('../../relay/metrics.ts');
  const { createOperatorMetrics } = await import('../../operator/metrics.ts');
  const doc = readFileSync(path.join(import.meta.dirname, '..', '..', 'docs', 'observability.md'), 'utf8');
  const names = [
    ...(await createRelayMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()),
    ...(await createOperatorMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()),
  ].map((m) => m.name);
  assert.deepEqual(names.filter((n) => !doc.includes(`| \`${n}\` |`)), [], 'add them (labels, bound) to docs/observability.md');
});
