// Reads a V8 .cpuprofile (node --cpu-prof) and summarizes where the time went: top functions by
// self time and by inclusive time, and self time per area (node internals, a package, relay code,
// GC, idle). `node bench/lib/profile.ts FILE.cpuprofile` prints the summary of one profile.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  where: string;
  area: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  /** Sampled time that was not idle. */
  busyMs: number;
  topSelf: HotSpot[];
  topInclusive: HotSpot[];
  areas: { area: string; ms: number; pct: number }[];
}

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function where(cf: CallFrame): string {
  if (!cf.url) return '(native)';
  let u = cf.url;
  if (u.startsWith('file://')) u = relative(REPO, fileURLToPath(u));
  return `${u}:${cf.lineNumber + 1}`;
}

export function areaOf(cf: CallFrame): string {
  const fn = cf.functionName;
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'v8/native (program)';
  if (fn === '(root)') return 'root';
  const url = cf.url;
  if (!url) return 'native builtins (incl. node:sqlite, crypto)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return `npm:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('file://')) {
    const rel = relative(REPO, fileURLToPath(url));
    const parts = rel.split('/');
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return url;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  // Self time per node from the samples and their time deltas (µs).
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0;
    selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const root = prof.nodes.find((n) => !parent.has(n.id))!;

  const key = (cf: CallFrame) => `${cf.functionName || '(anonymous)'}\0${where(cf)}`;
  const selfByFn = new Map<string, { cf: CallFrame; us: number }>();
  const inclByFn = new Map<string, { cf: CallFrame; us: number }>();
  const areaUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;

  // Iterative DFS computing inclusive time; recursion counted once per stack.
  const incl = new Map<number, number>();
  const order: number[] = [];
  const stack = [root.id];
  while (stack.length) {
    const id = stack.pop()!;
    order.push(id);
    for (const c of byId.get(id)!.children ?? []) stack.push(c);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const n = byId.get(order[i]!)!;
    let t = selfUs.get(n.id) ?? 0;
    for (const c of n.children ?? []) t += incl.get(c) ?? 0;
    incl.set(n.id, t);
  }
  const walk = (id: number, active: Map<string, number>) => {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    const s = selfUs.get(id) ?? 0;
    totalUs += s;
    const area = areaOf(cf);
    if (area === 'idle') idleUs += s;
    areaUs.set(area, (areaUs.get(area) ?? 0) + s);
    const k = key(cf);
    const se = selfByFn.get(k) ?? { cf, us: 0 };
    se.us += s;
    selfByFn.set(k, se);
    const seen = active.get(k) ?? 0;
    if (seen === 0) {
      const ie = inclByFn.get(k) ?? { cf, us: 0 };
      ie.us += incl.get(id) ?? 0;
      inclByFn.set(k, ie);
    }
    active.set(k, seen + 1);
    for (const c of n.children ?? []) walk(c, active);
    active.set(k, seen);
  };
  walk(root.id, new Map());

  const busyUs = Math.max(1, totalUs - idleUs);
  const skip = new Set(['idle', 'root']);
  const toSpots = (m: Map<string, { cf: CallFrame; us: number }>) =>
    [...m.values()]
      .filter((e) => !skip.has(areaOf(e.cf)) && e.cf.functionName !== '(program)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({
        fn: e.cf.functionName || '(anonymous)',
        where: where(e.cf),
        area: areaOf(e.cf),
        ms: Math.round(e.us / 1000),
        pct: Math.round((e.us / busyUs) * 1000) / 10,
      }));
  return {
    file,
    wallMs: Math.round((prof.endTime - prof.startTime) / 1000),
    busyMs: Math.round(busyUs / 1000),
    topSelf: toSpots(selfByFn),
    topInclusive: toSpots(inclByFn).filter((s) => s.fn !== '(root)'),
    areas: [...areaUs.entries()]
      .filter(([a]) => !skip.has(a))
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: Math.round(us / 1000), pct: Math.round((us / busyUs) * 1000) / 10 })),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines: string[] = [];
  lines.push(`profile ${s.file}: wall ${s.wallMs} ms, busy (not idle) ${s.busyMs} ms`);
  lines.push('self time by area (% of busy):');
  for (const a of s.areas.slice(0, 15)) lines.push(`  ${a.pct.toFixed(1).padStart(5)}%  ${String(a.ms).padStart(6)} ms  ${a.area}`);
  lines.push('top functions by self time:');
  for (const h of s.topSelf) lines.push(`  ${h.pct.toFixed(1).padStart(5)}%  ${String(h.ms).padStart(6)} ms  ${h.fn}  ${h.where}`);
  lines.push('top functions by inclusive time:');
  for (const h of s.topInclusive) lines.push(`  ${h.pct.toFixed(1).padStart(5)}%  ${String(h.ms).padStart(6)} ms  ${h.fn}  ${h.where}`);
  return lines.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/profile.ts FILE.cpuprofile [top]');
    process.exit(2);
  }
  console.log(formatProfile(summarizeProfile(file, Number(process.argv[3] ?? 25))));
}
