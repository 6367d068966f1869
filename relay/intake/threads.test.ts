// intake.workerThreads resolved from the CPU the process may use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTO_THREADS_WITHOUT_QUOTA, workerThreadCount } from './threads.ts';

test('auto: one session thread per CPU of the quota less the main thread; a number is taken as is', () => {
  assert.equal(workerThreadCount('auto', { cpus: 1, source: 'cgroup', quota: 0.5 }), 0);
  assert.equal(workerThreadCount('auto', { cpus: 2, source: 'cgroup', quota: 1.5 }), 1);
  assert.equal(workerThreadCount('auto', { cpus: 8, source: 'cgroup', quota: 8 }), 7);
  assert.equal(workerThreadCount(2, { cpus: 1, source: 'cgroup', quota: 1 }), 2);
  assert.equal(workerThreadCount(0, { cpus: 64, source: 'host' }), 0);
});

test('auto without a quota (no CPU limit) is capped: a 64-core node does not get 63 threads of ~20 MB each', () => {
  assert.equal(workerThreadCount('auto', { cpus: 64, source: 'host' }), AUTO_THREADS_WITHOUT_QUOTA);
  assert.equal(workerThreadCount('auto', { cpus: 2, source: 'host' }), 1);
});
