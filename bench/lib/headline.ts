// bench/README.md's headline: rendered from a results JSON (bench/results/*.json), never typed.
// The bench rewrites it after a full comparison run; `node bench/lib/headline.ts FILE.json`
// rewrites it from any earlier run. Pure rendering here; the file write is at the edge (main).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Summary } from './util.ts';

export const HEADLINE_START = '<!-- bench:headline:start -->';
export const HEADLINE_END = '<!-- bench:headline:end -->';
/** A run starting above this 1-minute load average is marked (bench/run.ts LOADED_AT). */
export const LOADED_MARK = 1.5;
/**
 * The relay's peak RSS line under the throughput loads, at two threads (the main thread and the
 * one session thread `intake.workerThreads: auto` gives two CPUs). Issue 13 asked for 150 MB "or
 * justify a new figure"; docs/resources.md "Why 220 MB" is the justification: the main thread alone
 * peaks at up to 190 MB with the heap growth that buys 5–19 % CPU (143–158 MB without it), a
 * session thread adds Node's worker floor and the session modules (up to 30 MB), ~60 MB of it all
 * is the node binary's code pages, and it stays under the pod's default memory request (256Mi).
 */
export const RELAY_RSS_TARGET_MB = 220;

export interface Comparison {
  postfix: Summary;
  mailfleet: Summary;
  /** mailfleet/Postfix per pair (rep). */
  ratio: Summary;
}

interface RunMarks {
  system: string;
  rep: number;
  loadStart?: number;
  loadEnd?: number;
  loaded?: boolean;
}

export interface ThroughputResult {
  label?: string;
  runs: (RunMarks & { e2e: number; cpuMsPerMsg?: number; peakRssMB?: number; workerThreads?: number | 'auto' })[];
  e2e: Comparison;
  accept: Comparison;
  target: number;
  met: boolean;
  /** CPU ms per message, each system's cgroup (absent in runs before issue 13's accounting). */
  cpu?: Comparison;
  cpuTarget?: number;
  cpuMet?: boolean;
}

export interface ThreadsResult {
  scenario: string;
  label: string;
  messages: number;
  byThreads: { workerThreads: number | 'auto'; e2e: Summary; accept: Summary; cpuMsPerMsg: Summary; peakRssMB: Summary }[];
  runs: ThroughputResult['runs'];
}

export interface BenchResults {
  date: string;
  command?: string;
  machine?: { cpuModel?: string; cores?: number; cpus?: number; cgroupCpuQuota?: number; node?: string; postfix?: string };
  tree?: { head?: string; uncommitted?: string[] };
  loadAverage?: number[];
  loadAverageEnd?: number[];
  durationSeconds?: number;
  throughput?: Record<string, ThroughputResult>;
  latency?: {
    runs: (RunMarks & { commitP99: number; e2eP99: number; stalled?: boolean })[];
    e2eP50: Comparison;
    e2eP99: Comparison;
    acceptP99: Comparison;
    commitP99?: Comparison;
    met: boolean;
    stalls?: string[];
  };
  otp?: { p50: number; p99: number; sent: number; delivered: number; backlogClass: string; bulkQueued: number }[];
  threads?: ThreadsResult;
  relayPeakRssMB?: number;
  /** intake.workerThreads of the comparison's relay runs, and what it resolved to on this machine. */
  relaySessionThreads?: { setting: number | 'auto'; threads: number; cpuQuota?: number };
}

const r2 = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? '—' : String(Math.round(n * 10 ** d) / 10 ** d));
const range = (s: Summary | undefined, d = 1, unit = '') =>
  !s || !s.values?.length ? '—' : `${r2(s.median, d)}${unit} [${r2(s.min, d)}–${r2(s.max, d)}]`;
const ratios = (s: Summary | undefined) => (!s || !s.values?.length ? '—' : `**${r2(s.median)}×** (${s.values.map((v) => r2(v)).join(', ')})`);
const load = (r: RunMarks) =>
  r.loadStart === undefined ? '—' : `${r2(r.loadStart)} → ${r2(r.loadEnd)}${r.loaded || r.loadStart > LOADED_MARK ? ' ⚠ LOADED' : ''}`;
const verdict = (met: boolean | undefined) => (met === undefined ? '—' : met ? 'met' : 'NOT met');

/** The markdown between the markers, from one results JSON. */
export function renderHeadline(res: BenchResults, source: string): string {
  const m = res.machine ?? {};
  const when = `${res.date.slice(0, 10)} ${res.date.slice(11, 16)} UTC`;
  const head = res.tree?.head ? res.tree.head.slice(0, 7) : 'unknown commit';
  const dirty = res.tree?.uncommitted?.length ? ` + uncommitted ${res.tree.uncommitted.join(', ')}` : '';
  const allRuns: RunMarks[] = [
    ...Object.values(res.throughput ?? {}).flatMap((t) => t.runs),
    ...(res.latency?.runs ?? []),
    ...(res.threads?.runs ?? []),
  ];
  const loaded = allRuns.filter((r) => r.loaded || (r.loadStart ?? 0) > LOADED_MARK).length;
  const lines: string[] = [
    HEADLINE_START,
    `<!-- written by the bench from ${source}; \`node bench/lib/headline.ts ${source}\` rewrites it. Do not edit by hand. -->`,
    '',
    `**${when}, commit ${head}${dirty}** — ${m.cpuModel ?? 'CPU model not recorded'}, ${m.cores ?? m.cpus ?? '?'} cores` +
      `${m.cgroupCpuQuota !== undefined ? ` (cgroup quota ${m.cgroupCpuQuota} CPUs)` : ''}, node ${m.node ?? '?'}, Postfix ${m.postfix ?? '?'}; ` +
      `\`${res.command ?? 'npm run bench'}\`${res.durationSeconds !== undefined ? `, ${res.durationSeconds} s` : ''}. ` +
      (res.relaySessionThreads ? `Relay${res.relaySessionThreads.cpuQuota !== undefined ? ` (under a CPU quota of ${res.relaySessionThreads.cpuQuota})` : ''}: \`intake.workerThreads\` ${res.relaySessionThreads.setting} → ${res.relaySessionThreads.threads === 0 ? 'SMTP sessions on the main thread' : `${res.relaySessionThreads.threads} SMTP session thread${res.relaySessionThreads.threads > 1 ? 's' : ''} beside the main thread`}. ` : '') +
      `Load average (1, 5, 15 min) at start ${res.loadAverage?.map((x) => r2(x)).join(', ') ?? '—'}, at end ${res.loadAverageEnd?.map((x) => r2(x)).join(', ') ?? '—'}` +
      `${allRuns.some((r) => r.loadStart !== undefined) ? `; ${loaded} of ${allRuns.length} runs started above load ${LOADED_MARK} (⚠ LOADED)` : '; per-run load not recorded (run before issue 13)'}.`,
    '',
    '| scenario | Postfix e2e msg/s | mailfleet e2e msg/s | ratio per pair | target | Postfix CPU ms/msg | mailfleet CPU ms/msg | CPU ratio per pair | target |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, t] of Object.entries(res.throughput ?? {})) {
    lines.push(
      `| ${t.label ?? name} | ${range(t.e2e.postfix, 0)} | ${range(t.e2e.mailfleet, 0)} | ${ratios(t.e2e.ratio)} | ≥ ${t.target}×: ${verdict(t.met)} | ` +
        `${range(t.cpu?.postfix, 2)} | ${range(t.cpu?.mailfleet, 2)} | ${ratios(t.cpu?.ratio)} | ${t.cpuTarget !== undefined ? `≤ ${t.cpuTarget}×: ${verdict(t.cpuMet)}` : 'not measured'} |`,
    );
  }
  const l = res.latency;
  if (l) {
    lines.push(
      '',
      '| latency at 100 msg/s, 1 KiB | Postfix | mailfleet | |',
      '|---|---|---|---|',
      `| 250 → sink p99 | ${range(l.e2eP99.postfix, 2, ' ms')} | ${range(l.e2eP99.mailfleet, 2, ' ms')} | ≤ Postfix's in every pair (${l.e2eP99.ratio.values.map((v) => r2(v)).join(', ')}): ${verdict(l.met)} |`,
      `| connect → 250 p99 | ${range(l.acceptP99.postfix, 2, ' ms')} | ${range(l.acceptP99.mailfleet, 2, ' ms')} | |`,
      `| "." → 250 p99 | ${range(l.commitP99?.postfix, 2, ' ms')} | ${range(l.commitP99?.mailfleet, 2, ' ms')} | stall detector (a run > 2× its system's median): ${l.stalls === undefined ? 'not run' : l.stalls.length ? `**FAILED**: ${l.stalls.join('; ')}` : 'passed'} |`,
    );
  }
  for (const o of res.otp ?? []) {
    lines.push('', `OTP under ${o.bulkQueued} queued \`${o.backlogClass}\`: 250 → sink p50 ${r2(o.p50)} ms, p99 **${r2(o.p99)} ms** (target ≤ 50 ms: ${verdict(o.p99 <= 50 && o.delivered === o.sent)}), ${o.delivered}/${o.sent} delivered.`);
  }
  if (res.relayPeakRssMB !== undefined) {
    lines.push('', `Relay peak RSS (VmHWM, max over runs): ${r2(res.relayPeakRssMB, 1)} MB (target ≤ ${RELAY_RSS_TARGET_MB} MB, docs/resources.md "Why ${RELAY_RSS_TARGET_MB} MB": ${verdict(res.relayPeakRssMB <= RELAY_RSS_TARGET_MB)}; issue 13's first figure, 150 MB: ${verdict(res.relayPeakRssMB <= 150)}).`);
  }
  const th = res.threads;
  if (th) {
    lines.push('', `| threads: ${th.label}, ${th.messages} messages, relay alone | e2e msg/s | accept msg/s | CPU ms/msg | peak RSS MB |`, '|---|---|---|---|---|');
    for (const b of th.byThreads) lines.push(`| intake.workerThreads ${b.workerThreads} | ${range(b.e2e, 0)} | ${range(b.accept, 0)} | ${range(b.cpuMsPerMsg, 3)} | ${range(b.peakRssMB, 1)} |`);
  }
  if (allRuns.some((r) => r.loadStart !== undefined)) {
    lines.push('', '<details><summary>Every run: load average (1 min) at its start → end</summary>', '');
    lines.push('| scenario | system | # | load |', '|---|---|---|---|');
    for (const [name, t] of Object.entries(res.throughput ?? {})) for (const r of t.runs) lines.push(`| ${name} | ${r.system} | ${r.rep} | ${load(r)} |`);
    for (const r of l?.runs ?? []) lines.push(`| latency | ${r.system} | ${r.rep} | ${load(r)}${r.stalled ? ' **STALL**' : ''} |`);
    for (const r of th?.runs ?? []) lines.push(`| threads ${r.workerThreads ?? ''} | ${r.system} | ${r.rep} | ${load(r)} |`);
    lines.push('', '</details>');
  }
  lines.push('', HEADLINE_END);
  return lines.join('\n');
}

/** The README with the block between the markers replaced (markers added under the first heading when absent). */
export function replaceHeadline(readme: string, block: string): string {
  const a = readme.indexOf(HEADLINE_START);
  const b = readme.indexOf(HEADLINE_END);
  if (a >= 0 && b > a) return readme.slice(0, a) + block + readme.slice(b + HEADLINE_END.length);
  const nl = readme.indexOf('\n');
  return `${readme.slice(0, nl + 1)}\n## Headline\n\n${block}\n${readme.slice(nl + 1)}`;
}

// `node bench/lib/headline.ts bench/results/FILE.json`: rewrite the headline from that run.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/headline.ts bench/results/FILE.json');
    process.exit(2);
  }
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  const readme = join(repo, 'bench/README.md');
  const res = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  writeFileSync(readme, replaceHeadline(readFileSync(readme, 'utf8'), renderHeadline(res, relative(repo, file))));
  console.log(`bench/README.md headline rewritten from ${file}`);
}
