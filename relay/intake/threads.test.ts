// intake.workerThreads resolved from the CPU the process may use; what a session thread loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayConfig } from '../config/load.ts';
import { localIntakeShared } from './listeners.ts';
import { AUTO_THREADS_WITHOUT_QUOTA, sessionThreadBootstrap, workerThreadCount, type SessionThreadInit } from './threads.ts';

test('auto: one session thread per whole CPU of the quota less the main thread; a number is taken as is', () => {
  assert.equal(workerThreadCount('auto', { cpus: 1, source: 'cgroup', quota: 0.5 }), 0);
  // 1.5 CPUs: a thread cost CPU and took no more mail (bench/README.md), so none.
  assert.equal(workerThreadCount('auto', { cpus: 2, source: 'cgroup', quota: 1.5 }), 0);
  assert.equal(workerThreadCount('auto', { cpus: 2, source: 'cgroup', quota: 2 }), 1);
  assert.equal(workerThreadCount('auto', { cpus: 3, source: 'cgroup', quota: 2.5 }), 1);
  assert.equal(workerThreadCount('auto', { cpus: 8, source: 'cgroup', quota: 8 }), 7);
  assert.equal(workerThreadCount(2, { cpus: 1, source: 'cgroup', quota: 1 }), 2);
  assert.equal(workerThreadCount(0, { cpus: 64, source: 'host' }), 0);
});

test('auto without a quota (no CPU limit) is capped: a 64-core node does not get 63 threads of ~20 MB each', () => {
  assert.equal(workerThreadCount('auto', { cpus: 64, source: 'host' }), AUTO_THREADS_WITHOUT_QUOTA);
  assert.equal(workerThreadCount('auto', { cpus: 2, source: 'host' }), 1);
});

test('a session thread loads the SMTP session code and nothing of the main thread\'s: no HTTP client, SQLite, zod, prom-client or yaml', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mf-thread-graph-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseRelayConfig({ hostname: 'relay.test', dataDir: dir, listeners: [{ name: 'sub', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none' }], acceptDomains: ['example.com'] });
  const shared = localIntakeShared(config);
  const init: SessionThreadInit = { index: 0, config, ports: { sub: 0 }, budget: shared.budget.shared, clients: new SharedArrayBuffer(4) };
  // Records every module the thread loads, and reports them when the thread says it listens.
  const probe = [
    'const loaded = [];',
    "require('node:module').registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });",
    "const { parentPort } = require('node:worker_threads');",
    'const post = parentPort.postMessage.bind(parentPort);',
    "parentPort.postMessage = (msg, transfer) => { if (msg?.t === 'ready') post({ t: 'loaded', loaded, builtins: process.moduleLoadList }); return post(msg, transfer); };",
  ].join('\n');
  const w = new Worker(`${probe}\n${sessionThreadBootstrap()}`, { eval: true, workerData: init });
  t.after(() => w.terminate());
  const [report] = (await once(w, 'message')) as [{ t: string; loaded: string[]; builtins: string[] }];
  assert.equal(report.t, 'loaded');
  assert.ok(report.loaded.some((u) => u.includes('/smtp-server/')), 'smtp-server was loaded');
  assert.ok(report.loaded.some((u) => u.endsWith('/relay/intake/smtp-server-logger.ts')), 'smtp-server got the thread\'s getLogger');
  assert.deepEqual(report.loaded.filter((u) => /\/node_modules\/(zod|prom-client|yaml|nodemailer)\/|^node:sqlite$/.test(u)), []);
  assert.deepEqual(report.builtins.filter((b) => /^NativeModule (http|https|zlib|sqlite)$/.test(b)), []);
});
