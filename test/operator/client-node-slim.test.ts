// The operator process loads @kubernetes/client-node without its generated API
// (operator/runtime/client-node-slim.ts): the module graph holds none of its ~1,600 model files,
// the process is ~50 MB smaller, and KubeConfig and the ListWatch informer (with a label selector:
// the one thing the slimmed serializer does) still work against the real apiserver. Both run in a
// child process, as `mailfleet operator` and the bench's operator do: the redirects must be in
// place before anything loads client-node, which this test process has already done.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { clusterEnv, createNamespace, waitFor, type Env } from './harness.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** Runs `code` as an ES module in a child node (this one's binary); resolves with its stdout lines as they come. */
function child(code: string, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-slim-'));
  const file = join(dir, 'child.ts');
  writeFileSync(file, code);
  const c = spawn(process.execPath, ['--expose-gc', file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let err = '';
  let buf = '';
  c.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  c.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => c.once('exit', (code) => {
    rmSync(dir, { recursive: true, force: true });
    res(code);
  }));
  return { lines, stderr: () => err, exited, kill: () => c.kill() };
}

const graph = (slim: boolean) => `
import { registerHooks } from 'node:module';
${slim ? `(await import(${JSON.stringify(join(ROOT, 'operator/runtime/client-node-slim.ts'))})).slimClientNode();` : ''}
const urls = [];
registerHooks({ resolve(s, c, next) { const r = next(s, c); urls.push(r.url); return r; } });
const before = process.memoryUsage().rss;
await import(${JSON.stringify(join(ROOT, 'operator/main.ts'))});
globalThis.gc();
const m = process.memoryUsage();
const cn = urls.filter((u) => u.includes('/@kubernetes/client-node/'));
console.log(JSON.stringify({ clientNode: cn.length, models: cn.filter((u) => u.includes('/gen/models/')).length, apis: cn.filter((u) => u.includes('/gen/apis/') && !u.endsWith('/exception.js')).length, rssMB: Math.round((m.rss - before) / 2 ** 20), heapMB: Math.round(m.heapUsed / 2 ** 20) }));
`;

test('the operator\'s module graph holds none of client-node\'s generated API with the redirects, and is smaller', async () => {
  const run = async (slim: boolean) => {
    const c = child(graph(slim));
    assert.equal(await c.exited, 0, c.stderr());
    return JSON.parse(c.lines[0]!) as { clientNode: number; models: number; apis: number; rssMB: number; heapMB: number };
  };
  const full = await run(false);
  const slim = await run(true);
  assert.ok(full.models > 1000, `without the redirects the whole client loads (${full.models} model files)`);
  assert.equal(slim.models, 0, 'no model file');
  assert.equal(slim.apis, 0, 'no generated API client');
  assert.ok(slim.clientNode < 100, `${slim.clientNode} client-node modules`);
  // Measured 126 vs 172-181 MB RSS, 26 vs 41 MB heap; the margin allows for a loaded machine.
  assert.ok(slim.heapMB <= full.heapMB - 8, `heap after GC: ${slim.heapMB} MB with the redirects, ${full.heapMB} MB without`);
});

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
after(async () => {
  if (!('skipped' in env)) await env.cluster.stop();
});

test('with the redirects, KubeConfig and a label-selected informer list and watch on the real apiserver', { skip }, async () => {
  const e = env as Env;
  const NS = 'slim';
  await createNamespace(e.kube, NS);
  await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before', namespace: NS, labels: { pick: 'yes' } }, data: {} });
  await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'other', namespace: NS, labels: { pick: 'no' } }, data: {} });
  const c = child(`
(await import(${JSON.stringify(join(ROOT, 'operator/runtime/client-node-slim.ts'))})).slimClientNode();
const { Kube } = await import(${JSON.stringify(join(ROOT, 'operator/runtime/kube.ts'))});
const { ResilientInformer } = await import(${JSON.stringify(join(ROOT, 'operator/runtime/informer.ts'))});
const inf = new ResilientInformer(Kube.fromFile(process.env.KUBECONFIG), { apiVersion: 'v1', kind: 'ConfigMap', namespace: ${JSON.stringify(NS)}, labelSelector: 'pick=yes',
  onEvent: (t, o) => console.log(t + ' ' + o.metadata.name), onError: (err) => console.error(String(err)) });
await inf.start();
`, { KUBECONFIG: e.kubeconfig });
  try {
    await waitFor('the listed ConfigMap', () => c.lines.includes('add before') || c.stderr().includes('Error'), 20_000);
    assert.ok(c.lines.includes('add before'), c.stderr());
    // After the list: the watch, which sends the label selector through the slimmed serializer.
    await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after', namespace: NS, labels: { pick: 'yes' } }, data: {} });
    await e.kube.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-other', namespace: NS, labels: { pick: 'no' } }, data: {} });
    await waitFor('the watched ConfigMap', () => c.lines.includes('add after'), 20_000);
    await e.kube.mergePatch({ apiVersion: 'v1', kind: 'ConfigMap', namespace: NS, name: 'after' }, { data: { k: 'v' } });
    await waitFor('its update', () => c.lines.includes('update after'), 20_000);
    assert.ok(!c.lines.some((l) => l.endsWith(' other') || l.endsWith(' after-other')), `only pick=yes: ${c.lines.join(', ')}`);
    assert.equal(c.stderr(), '', 'no informer error');
  } finally {
    c.kill();
    await c.exited;
  }
});
