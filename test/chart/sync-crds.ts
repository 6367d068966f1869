// Keeps charts/mailfleet/files/crds/ a byte-for-byte copy of the generated crds/*.yaml.
//   node test/chart/sync-crds.ts          copy (and delete copies whose source is gone)
//   node test/chart/sync-crds.ts --check  exit 1 and list the differences, change nothing
// crds.test.ts runs the check, so a chart that ships stale CRDs fails the suite.
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chartDir, repoRoot } from './helm.ts';

export const sourceDir = path.join(repoRoot, 'crds');
export const chartCrdDir = path.join(chartDir, 'files', 'crds');

async function yamlFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export async function sourceCrdFiles(): Promise<string[]> {
  return yamlFiles(sourceDir);
}

/** Every way the chart's copy differs from crds/, one line each; empty when in sync. */
export async function crdDrift(): Promise<string[]> {
  const src = await yamlFiles(sourceDir);
  const copy = await yamlFiles(chartCrdDir);
  const problems: string[] = [];
  for (const f of src) {
    if (!copy.includes(f)) {
      problems.push(`charts/mailfleet/files/crds/${f} is missing (crds/${f} exists)`);
      continue;
    }
    const [a, b] = await Promise.all([readFile(path.join(sourceDir, f)), readFile(path.join(chartCrdDir, f))]);
    if (!a.equals(b)) problems.push(`charts/mailfleet/files/crds/${f} differs from crds/${f}`);
  }
  for (const f of copy) {
    if (!src.includes(f)) problems.push(`charts/mailfleet/files/crds/${f} has no source crds/${f} (stale copy)`);
  }
  return problems;
}

export async function syncCrds(): Promise<string[]> {
  const src = await yamlFiles(sourceDir);
  await mkdir(chartCrdDir, { recursive: true });
  const changed = await crdDrift();
  for (const f of src) await copyFile(path.join(sourceDir, f), path.join(chartCrdDir, f));
  for (const f of await yamlFiles(chartCrdDir)) {
    if (!src.includes(f)) await rm(path.join(chartCrdDir, f));
  }
  return changed;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const drift = await crdDrift();
    for (const d of drift) console.error(d);
    if (drift.length > 0) console.error('run: node test/chart/sync-crds.ts');
    process.exitCode = drift.length > 0 ? 1 : 0;
  } else {
    const changed = await syncCrds();
    console.log(changed.length > 0 ? changed.map((c) => `synced: ${c}`).join('\n') : 'charts/mailfleet/files/crds is up to date');
  }
}
