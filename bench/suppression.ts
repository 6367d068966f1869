// The suppression list at a million entries, on this disk: `node bench/suppression.ts [entries]`.
// 1. Import: a CSV of N addresses through the same code as `mailfleet suppressions import` and
//    POST /v1/suppressions/import (csv-parse, 500 rows per transaction), with the event-loop delay
//    and lookup latency while it runs.
// 2. The `mailfleet suppressions import` process itself (what a user waits for).
// 3. Lookups: the check the delivery engine makes before every attempt, for addresses on the
//    list and not, with p50/p99/max latency, while nothing else runs.
// 4. Export of the whole list as CSV.
// Prints one JSON document (bench/README.md has the numbers of a run).
import { mkdtempSync, rmSync, createWriteStream, createReadStream, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { parseRelayConfig } from '../relay/config/load.ts';
import { Feedback } from '../relay/feedback/feedback.ts';
import { suppressionCsv } from '../relay/suppression/csv.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const LOOKUPS = 200_000;
const dir = mkdtempSync(join(tmpdir(), 'mailfleet-suppression-bench-'));

async function writeCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  out.write('address,scope,reason\n');
  const reasons = ['hard-bounce', 'complaint', 'unsubscribe', 'manual'];
  for (let i = 0; i < N; i++) {
    const line = `user${i}.${(i * 2654435761) % 100000}@domain${i % 5000}.example,${i % 3 === 0 ? 'shop.example' : '*'},${reasons[i % 4]}\n`;
    if (!out.write(line)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

try {
  const csv = join(dir, 'list.csv');
  await writeCsv(csv);
  const config = parseRelayConfig({ dataDir: join(dir, 'relay'), listeners: [{ name: 'x', port: 0, tls: 'none' }] });
  const feedback = new Feedback({ config });
  const rssBefore = process.memoryUsage().rss;
  // What an import through the relay's API costs the relay's other work: event-loop delay, and
  // the latency of lookups made while it runs (the delivery engine does not stop for it).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const during: number[] = [];
  const probe = setInterval(() => {
    const i = Math.floor(Math.random() * N);
    const t = performance.now();
    feedback.suppressions.check(`user${i}.${(i * 2654435761) % 100000}@domain${i % 5000}.example`, 'shop.example', 'bulk', Date.now());
    during.push(performance.now() - t);
  }, 5);
  const imp = await feedback.importCsv(createReadStream(csv), { now: Date.now() });
  clearInterval(probe);
  loop.disable();
  during.sort((a, b) => a - b);
  const rssAfter = process.memoryUsage().rss;

  // Lookups: half on the list (random), half not.
  const lat: number[] = [];
  let hits = 0;
  for (let k = 0; k < LOOKUPS; k++) {
    const i = Math.floor(Math.random() * N);
    const addr = k % 2 === 0 ? `user${i}.${(i * 2654435761) % 100000}@domain${i % 5000}.example` : `nobody${i}@domain${i % 5000}.example`;
    const t = performance.now();
    if (feedback.suppressions.check(addr, 'shop.example', 'bulk', Date.now())) hits++;
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);

  const tExp = performance.now();
  let bytes = 0;
  await pipeline(suppressionCsv(feedback.suppressions.iterate()), new Writable({ write(c: Buffer, _e, cb) { bytes += c.length; cb(); } }));
  const exportSeconds = (performance.now() - tExp) / 1000;
  feedback.close();

  // The CLI as a user runs it, on a fresh data dir.
  const t0 = performance.now();
  const cli = spawnSync(process.execPath, [new URL('../cli/mailfleet.ts', import.meta.url).pathname, 'suppressions', 'import', csv, '-d', join(dir, 'cli')], { encoding: 'utf8' });
  const cliSeconds = (performance.now() - t0) / 1000;
  if (cli.status !== 0) throw new Error(`CLI import failed: ${cli.stderr}`);

  console.log(JSON.stringify({
    entries: N,
    import: { seconds: +imp.seconds.toFixed(2), perSecond: Math.round(imp.imported / imp.seconds), imported: imp.imported, rssGrowthMB: +((rssAfter - rssBefore) / 1048576).toFixed(1) },
    duringImport: {
      eventLoopDelayMs: { p50: +(loop.percentile(50) / 1e6).toFixed(1), p99: +(loop.percentile(99) / 1e6).toFixed(1), max: +(loop.max / 1e6).toFixed(1) },
      lookups: { count: during.length, p50us: +(pct(during, 50) * 1000).toFixed(1), p99us: +(pct(during, 99) * 1000).toFixed(1) },
    },
    cliImport: { seconds: +cliSeconds.toFixed(2), output: cli.stdout.trim() },
    dbMB: +(['', '-wal'].reduce((n, s) => n + (statSync(join(dir, 'relay', 'feedback', `feedback.db${s}`), { throwIfNoEntry: false })?.size ?? 0), 0) / 1048576).toFixed(1),
    lookups: { count: LOOKUPS, hits, p50us: +(pct(lat, 50) * 1000).toFixed(1), p99us: +(pct(lat, 99) * 1000).toFixed(1), maxUs: +(lat[lat.length - 1]! * 1000).toFixed(1) },
    export: { seconds: +exportSeconds.toFixed(2), bytes },
    node: process.version,
  }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
