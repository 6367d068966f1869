// Flame graphs of a V8 .cpuprofile (node --cpu-prof): the folded-stack text that flamegraph.pl,
// inferno and speedscope read, and a self-contained SVG (one <rect> per frame, width = time,
// hover for the name and milliseconds) to open in a browser. Idle time is left out.
//   node bench/lib/flamegraph.ts FILE.cpuprofile   → FILE.folded and FILE.svg next to it
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function frameName(n: Node): string {
  const cf = n.callFrame;
  const fn = cf.functionName || '(anonymous)';
  if (!cf.url) return fn;
  const u = cf.url.startsWith('file://') ? relative(REPO, fileURLToPath(cf.url)) : cf.url;
  return `${fn} ${u.replace(/^.*node_modules\//, '')}:${cf.lineNumber + 1}`;
}

/** Folded stacks: "root;caller;callee µs" per distinct stack, idle and the root frame left out. */
export function foldProfile(file: string): Map<string, number> {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, prof.timeDeltas[i + 1] ?? 0));
  }
  const folded = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)' || us === 0) continue;
    const names: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!;
      if (parent.has(cur)) names.push(frameName(f).replaceAll(';', ','));
    }
    const key = names.reverse().join(';');
    folded.set(key, (folded.get(key) ?? 0) + us);
  }
  return folded;
}

interface Tree {
  name: string;
  us: number;
  children: Map<string, Tree>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function colour(name: string): string {
  // Warm colours for our code, cooler for dependencies and Node internals, grey for native.
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = name.includes(' relay/') || name.includes(' cli/') ? 20 + (h % 30) : name.includes(' node:') ? 200 + (h % 30) : name.includes(':') ? 50 + (h % 30) : 0;
  return name.includes(':') ? `hsl(${hue},70%,${60 + (h % 15)}%)` : `hsl(0,0%,${70 + (h % 15)}%)`;
}

export function flameSvg(folded: Map<string, number>, title: string): string {
  const root: Tree = { name: 'all', us: 0, children: new Map() };
  for (const [stack, us] of folded) {
    root.us += us;
    let t = root;
    for (const name of stack.split(';')) {
      let c = t.children.get(name);
      if (!c) t.children.set(name, (c = { name, us: 0, children: new Map() }));
      c.us += us;
      t = c;
    }
  }
  const width = 1400;
  const rowH = 16;
  const rects: string[] = [];
  let depth = 0;
  const draw = (t: Tree, x: number, level: number) => {
    const w = (t.us / Math.max(1, root.us)) * width;
    if (w < 0.3) return;
    depth = Math.max(depth, level);
    const label = `${t.name} (${(t.us / 1000).toFixed(1)} ms, ${((t.us / Math.max(1, root.us)) * 100).toFixed(1)} %)`;
    const chars = Math.floor((w - 4) / 6.5);
    const text = chars >= 3 ? (t.name.length <= chars ? t.name : `${t.name.slice(0, chars - 2)}..`) : '';
    rects.push(
      `<g><title>${esc(label)}</title><rect x="${x.toFixed(1)}" y="LEVEL${level}" width="${w.toFixed(1)}" height="${rowH - 1}" fill="${colour(t.name)}"/>` +
        (text ? `<text x="${(x + 3).toFixed(1)}" y="TEXT${level}">${esc(text)}</text>` : '') +
        '</g>',
    );
    let cx = x;
    for (const c of [...t.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      draw(c, cx, level + 1);
      cx += (c.us / Math.max(1, root.us)) * width;
    }
  };
  draw(root, 0, 0);
  const top = 30;
  const height = top + (depth + 1) * rowH + 10;
  // Root at the bottom, callees above it, as flamegraph.pl draws them.
  const body = rects
    .join('\n')
    .replace(/y="LEVEL(\d+)"/g, (_, l: string) => `y="${height - 10 - (Number(l) + 1) * rowH}"`)
    .replace(/y="TEXT(\d+)"/g, (_, l: string) => `y="${height - 10 - (Number(l) + 1) * rowH + 11.5}"`);
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
<text x="4" y="18" font-size="14">${esc(title)} — ${(root.us / 1000).toFixed(0)} ms busy (idle left out); hover a frame for its time</text>
${body}
</svg>
`;
}

/** Writes FILE.folded and FILE.svg next to a .cpuprofile; returns their paths. */
export function writeFlameGraph(file: string): { folded: string; svg: string } {
  const folded = foldProfile(file);
  const base = file.replace(/\.cpuprofile$/, '');
  writeFileSync(`${base}.folded`, [...folded].map(([k, us]) => `${k} ${us}`).join('\n') + '\n');
  writeFileSync(`${base}.svg`, flameSvg(folded, basename(file)));
  return { folded: `${base}.folded`, svg: `${base}.svg` };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/lib/flamegraph.ts FILE.cpuprofile');
    process.exit(2);
  }
  const out = writeFlameGraph(file);
  console.log(`${out.folded}\n${out.svg}`);
}
