import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HEAP_GROWING_PERCENT, HEAP_GROWING_ENV, heapGrowingPercent } from './heap-growth.ts';

const MODULE = new URL('./heap-growth.ts', import.meta.url).href;
const CLI = fileURLToPath(new URL('../cli/mailfleet.ts', import.meta.url));

test('heap growth: the default when unset, the number asked for, and an error naming the variable otherwise', () => {
  assert.deepEqual(heapGrowingPercent({}), { percent: DEFAULT_HEAP_GROWING_PERCENT });
  assert.deepEqual(heapGrowingPercent({ [HEAP_GROWING_ENV]: '' }), { percent: DEFAULT_HEAP_GROWING_PERCENT });
  assert.deepEqual(heapGrowingPercent({ [HEAP_GROWING_ENV]: '0' }), { percent: 0 });
  assert.deepEqual(heapGrowingPercent({ [HEAP_GROWING_ENV]: ' 250 ' }), { percent: 250 });
  for (const bad of ['abc', '-5', '1.5', '2000', '1e2']) {
    const r = heapGrowingPercent({ [HEAP_GROWING_ENV]: bad });
    assert.ok('error' in r, bad);
    assert.match(r.error, new RegExp(`^${HEAP_GROWING_ENV} must be a whole number`));
  }
});

/** Major GCs (V8's --trace-gc "Mark-Compact" lines) of a workload that keeps promoting objects, under the image's heap cap. */
function majorGcs(percent: number): number {
  const script = `
    import { applyHeapGrowingPercent } from ${JSON.stringify(MODULE)};
    applyHeapGrowingPercent(${percent});
    const live = []; for (let i = 0; i < 200000; i++) live.push({ i, s: 'live' + i });
    const ring = new Array(200000);
    for (let i = 0; i < 4000000; i++) ring[i % 200000] = { i, s: 'ring' + i, a: [i] };
    globalThis.keep = [live, ring];`;
  const r = spawnSync(process.execPath, ['--trace-gc', '--max-semi-space-size=3', '--max-old-space-size=256', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.includes('Mark-Compact')).length;
}

test('heap growth: set at run time, V8 starts fewer major GCs for the same work', () => {
  const own = majorGcs(0);
  const doubled = majorGcs(DEFAULT_HEAP_GROWING_PERCENT);
  assert.ok(own >= 4, `the workload should need several major GCs under V8's own growth (saw ${own})`);
  assert.ok(doubled * 2 <= own, `100 % growth: ${doubled} major GCs against ${own} with V8's own factor`);
});

test('mailfleet relay refuses a malformed MAILFLEET_HEAP_GROWING_PERCENT with exit 2 and names it', () => {
  const r = spawnSync(process.execPath, [CLI, 'relay', '--config', '/nonexistent/relay.yaml'], { encoding: 'utf8', env: { ...process.env, [HEAP_GROWING_ENV]: 'lots' } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^mailfleet relay: MAILFLEET_HEAP_GROWING_PERCENT must be a whole number from 0 \(V8's own growth\) to 1000, not "lots"/);
});
