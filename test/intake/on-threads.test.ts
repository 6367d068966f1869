// The intake suites again in the relay's other shapes: the default ('auto': one session thread per
// CPU less one, so one on two cores and none on one) runs them in the suites themselves; here every
// submission session on the main thread (intake.workerThreads: 0, what a pod limited to one CPU
// runs) and on two worker threads sharing each port. The 250-after-fsync, smuggling, AUTH and
// kill -9 guarantees must hold on every shape. The harness reads MAILFLEET_TEST_WORKER_THREADS
// (test/support); this runs the suites as a child.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SUITES = ['test/intake/crash.test.ts', 'test/intake/smtp.test.ts', 'test/intake/operations.test.ts'];

/** The runner marks its children (NODE_TEST_CONTEXT); a nested run without that mark is a run of its own. */
function childEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MAILFLEET_TEST_WORKER_THREADS: String(threads) };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

for (const [threads, shape] of [[0, 'on the main thread'], [2, 'on two worker threads']] as const) {
  test(`the intake suites pass with sessions ${shape}`, { timeout: 600_000 }, async () => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=dot', ...SUITES], {
      cwd: ROOT, env: childEnv(threads), stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `intake suites with workerThreads ${threads} failed:\n${out.slice(-8000)}`);
    // A run that found no tests would pass too: the dot reporter prints one mark per test.
    assert.ok((out.match(/\./g) ?? []).length >= 20, `too few tests ran:\n${out.slice(-2000)}`);
  });
}
