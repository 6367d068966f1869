// bench/README.md's headline is rendered from the results JSON: what a reader of the README sees
// (date, commit, CPU model, cores, load, LOADED runs, CPU ratio against its target, stalls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHeadline, replaceHeadline, HEADLINE_START, HEADLINE_END, type BenchResults } from '../../bench/lib/headline.ts';

const s = (values: number[]) => ({ median: [...values].sort((a, b) => a - b)[values.length >> 1]!, min: Math.min(...values), max: Math.max(...values), values });
const cmp = (pf: number[], mf: number[]) => ({ postfix: s(pf), mailfleet: s(mf), ratio: s(pf.map((p, i) => Math.round((mf[i]! / p) * 100) / 100)) });

const results: BenchResults = {
  date: '2026-12-06T20:01:02.000Z',
  command: 'npm run bench -- --reps 2',
  machine: { cpuModel: 'Intel(R) Xeon(R) Processor', cores: 2, node: 'v24.21.0', postfix: '3.7.11' },
  tree: { head: '0123456789abcdef', uncommitted: [] },
  loadAverage: [0.4, 1, 2],
  loadAverageEnd: [3, 2, 2],
  durationSeconds: 250,
  throughput: {
    '1k': {
      label: '1 KiB, one msg/conn',
      runs: [
        { system: 'postfix', rep: 1, e2e: 700, loadStart: 0.4, loadEnd: 2 },
        { system: 'mailfleet', rep: 1, e2e: 1400, loadStart: 1.9, loadEnd: 2.5, loaded: true },
      ],
      e2e: cmp([700], [1400]),
      accept: cmp([700], [1400]),
      target: 2,
      met: true,
      cpu: cmp([2], [0.6]),
      cpuTarget: 0.35,
      cpuMet: false,
    },
  },
  latency: {
    runs: [
      { system: 'postfix', rep: 1, commitP99: 1.5, e2eP99: 3, loadStart: 0.5, loadEnd: 0.6 },
      { system: 'mailfleet', rep: 1, commitP99: 90, e2eP99: 1.5, loadStart: 0.5, loadEnd: 0.6, stalled: true },
    ],
    e2eP50: cmp([0.5], [0.4]),
    e2eP99: cmp([3], [1.5]),
    acceptP99: cmp([8], [4]),
    commitP99: cmp([1.5], [90]),
    met: true,
    stalls: ['mailfleet #1: "." → 250 p99 90 ms > 2 × the median run\'s 2 ms'],
  },
};

test('the headline names the date, commit, CPU model, cores and load, and marks a LOADED run', () => {
  const h = renderHeadline(results, 'bench/results/2026-12-06.json');
  assert.match(h, /2026-12-06 20:01 UTC, commit 0123456/);
  assert.match(h, /Intel\(R\) Xeon\(R\) Processor, 2 cores/);
  assert.match(h, /at start 0\.4, 1, 2, at end 3, 2, 2/);
  assert.match(h, /1 of 4 runs started above load 1\.5/);
  assert.match(h, /\| 1k \| mailfleet \| 1 \| 1\.9 → 2\.5 ⚠ LOADED \|/);
});

test('CPU per message is shown beside Postfix\'s with its ratio and the issue\'s target; a stall fails visibly', () => {
  const h = renderHeadline(results, 'bench/results/2026-12-06.json');
  assert.match(h, /\| 1 KiB, one msg\/conn \| 700 \[700–700\] \| 1400 \[1400–1400\] \| \*\*2×\*\* \(2\) \| ≥ 2×: met \| 2 \[2–2\] \| 0\.6 \[0\.6–0\.6\] \| \*\*0\.3×\*\* \(0\.3\) \| ≤ 0\.35×: NOT met \|/);
  assert.match(h, /stall detector .*\*\*FAILED\*\*: mailfleet #1/);
  assert.match(h, /\| latency \| mailfleet \| 1 \| 0\.5 → 0\.6 \*\*STALL\*\* \|/);
});

test('only the block between the markers is replaced', () => {
  const readme = `# Bench\n\nintro\n\n${HEADLINE_START}\nold\n${HEADLINE_END}\n\n## Rest\nkept\n`;
  const out = replaceHeadline(readme, `${HEADLINE_START}\nnew\n${HEADLINE_END}`);
  assert.equal(out, `# Bench\n\nintro\n\n${HEADLINE_START}\nnew\n${HEADLINE_END}\n\n## Rest\nkept\n`);
  assert.match(replaceHeadline('# Bench\nbody\n', 'BLOCK'), /^# Bench\n\n## Headline\n\nBLOCK\nbody\n$/);
});

test('the headline says how many session threads the relay ran, each pair\'s 250 → sink p99 against Postfix\'s, and peak RSS against both figures', () => {
  const h = renderHeadline({ ...results, relaySessionThreads: { setting: 'auto', threads: 1 }, relayPeakRssMB: 195.4 }, 'bench/results/2026-12-06.json');
  assert.match(h, /Relay: `intake\.workerThreads` auto → 1 SMTP session thread beside the main thread\./);
  assert.match(h, /\| 250 → sink p99 \| .* \| ≤ Postfix's in every pair \(0\.5\): met \|/);
  assert.match(h, /Relay peak RSS \(VmHWM, max over runs\): 195\.4 MB \(target ≤ 220 MB, .*: met; issue 13's first figure, 150 MB: NOT met\)\./);
  const main = renderHeadline({ ...results, relaySessionThreads: { setting: 0, threads: 0 } }, 'x.json');
  assert.match(main, /Relay: `intake\.workerThreads` 0 → SMTP sessions on the main thread\./);
  const quota = renderHeadline({ ...results, relaySessionThreads: { setting: 'auto', threads: 0, cpuQuota: 1.5 } }, 'x.json');
  assert.match(quota, /Relay \(under a CPU quota of 1\.5\): `intake\.workerThreads` auto → SMTP sessions on the main thread\./);
});
