// `npm run dashboards:evidence [DIR]`: runs the live scenario of test/monitoring/live.test.ts
// (`npm run dashboards:evidence:pods` draws them from the pod scenario instead: live-fleet.test.ts
// with MAILFLEET_EVIDENCE_DIR, root and the test node)
// (relays, operator, a real Prometheus), runs every panel query of every dashboard and draws the
// results — one PNG per dashboard, panels where the dashboard JSON puts them, lines as inline SVG,
// thresholds dashed — through headless Chromium (Debian `chromium`). This is NOT Grafana (it cannot
// be installed here): it shows what each panel's query returns, laid out as the dashboard is.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDashboards, metricsOf, plannedMetrics, substitute } from '../../monitoring/queries.ts';
import type { Sample } from '../support/prometheus.ts';
import { runScenario, startFleet, type ScenarioWindow } from './fleet.ts';
import { PODS_ONLY } from './panels.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));
const COLORS = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0', '#508642', '#cca300'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v);
  const n = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toPrecision(3).replace(/\.?0+$/, ''));
  if (unit === 'percentunit') return `${n(v * 100)}%`;
  if (unit === 's') return v !== 0 && Math.abs(v) < 1 ? `${n(v * 1000)} ms` : `${n(v)} s`;
  if (unit === 'bytes' || unit === 'Bps') {
    const k = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < k.length - 1) (v /= 1024), i++;
    return `${n(v)} ${k[i]}${unit === 'Bps' ? '/s' : ''}`;
  }
  if (unit.startsWith('suffix:')) return `${n(v)}${unit.slice(7)}`;
  return n(v);
}

interface PanelJson {
  type: string;
  title: string;
  description?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string; legendFormat?: string }[];
  fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps: { value: number | null; color: string }[] } } };
}

interface Drawn {
  legend: string;
  points: [number, number][];
}

function legendOf(format: string | undefined, metric: Record<string, string>): string {
  if (!format || format === '__auto') return Object.entries(metric).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}=${v}`).join(', ') || 'value';
  return format.replace(/\{\{\s*([a-zA-Z_]+)\s*\}\}/g, (_m, k: string) => metric[k] ?? '');
}

function svgPlot(series: Drawn[], unit: string, thresholds: { value: number; color: string }[], w: number, h: number, x0: number, x1: number): string {
  const pad = { l: 64, r: 8, t: 6, b: 18 };
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values, ...thresholds.map((t) => t.value).filter((t) => t <= Math.max(...values, 0) * 1.5 || values.length === 0));
  if (!Number.isFinite(hi) || hi === lo) hi = lo + 1;
  hi += (hi - lo) * 0.05;
  const X = (t: number) => pad.l + ((t - x0) / Math.max(1, x1 - x0)) * (w - pad.l - pad.r);
  const Y = (v: number) => h - pad.b - ((v - lo) / (hi - lo)) * (h - pad.t - pad.b);
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = lo + f * (hi - lo);
    return `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#2c3235"/><text x="${pad.l - 4}" y="${Y(v) + 3}" text-anchor="end">${esc(formatValue(v, unit))}</text>`;
  });
  const times = ([[x0, 'start'], [(x0 + x1) / 2, 'middle'], [x1, 'end']] as const).map(([t, anchor]) => `<text x="${X(t)}" y="${h - 4}" text-anchor="${anchor}">${new Date(t * 1000).toISOString().slice(11, 19)}</text>`);
  const th = thresholds.filter((t) => t.value >= lo && t.value <= hi).map((t) => `<line x1="${pad.l}" x2="${w - pad.r}" y1="${Y(t.value)}" y2="${Y(t.value)}" stroke="${t.color}" stroke-dasharray="6 4" stroke-width="1.5"/>`);
  const lines = series.map((s, i) => {
    const d = s.points.filter(([, v]) => Number.isFinite(v)).map(([t, v], k) => `${k ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"/>`;
  });
  return `<svg width="${w}" height="${h}" font-size="10" fill="#ccccdc">${grid.join('')}${times.join('')}${th.join('')}${lines.join('')}</svg>`;
}

const THRESHOLD_COLORS: Record<string, string> = { orange: '#ff9830', red: '#f2495c', yellow: '#fade2a' };

/**
 * `notFed`: metrics this scenario cannot feed, with why (drawn as a note instead of "no data"): the
 * process scenario's PODS_ONLY; nothing for the pod scenario.
 */
export async function renderDashboards(query: (expr: string) => Promise<Sample[]>, window: ScenarioWindow, outDir: string, note: string, notFed?: { metrics: string[]; why: string }): Promise<string[]> {
  if (!CHROMIUM) throw new Error('chromium is not installed (apt-get install chromium)');
  const planned = plannedMetrics();
  const vars = { cluster: '.*', namespace: '.*', pool: '.*', ip: '.*', domain: '.*', __rate_interval: '10s', __range: `${Math.ceil(window.end - window.start) + 10}s` };
  const UNIT = 30; // Grafana's grid row height in px
  const WIDTH = 1600;
  const col = WIDTH / 24;
  const tmp = mkdtempSync(path.join(tmpdir(), 'mailfleet-evidence-'));
  const written: string[] = [];
  try {
    for (const d of loadDashboards() as unknown as { uid: string; title: string; panels: PanelJson[] }[]) {
      const boxes: string[] = [];
      let bottom = 0;
      for (const p of d.panels) {
        const g = p.gridPos;
        bottom = Math.max(bottom, g.y + g.h);
        const [left, top, w, h] = [g.x * col, g.y * UNIT + 70, g.w * col - 6, g.h * UNIT - 6];
        if (p.type === 'row') {
          boxes.push(`<div class="row" style="left:${left}px;top:${top}px;width:${w}px">${esc(p.title)}</div>`);
          continue;
        }
        const unit = p.fieldConfig?.defaults?.unit ?? '';
        const thresholds = (p.fieldConfig?.defaults?.thresholds?.steps ?? []).flatMap((s) => (s.value === null ? [] : [{ value: s.value, color: THRESHOLD_COLORS[s.color] ?? s.color }]));
        const isPlanned = (t: { expr: string }) => metricsOf(t.expr).some((m) => planned.has(m));
        const missing = [...new Set((p.targets ?? []).flatMap((t) => metricsOf(t.expr).filter((m) => planned.has(m))))];
        const live = (p.targets ?? []).filter((t) => !isPlanned(t));
        let body: string;
        if (live.length === 0) {
          body = `<div class="planned">planned metric, not exported yet:<br>${missing.map(esc).join('<br>')}</div>`;
        } else if (notFed && live.every((t) => metricsOf(t.expr).some((m) => notFed.metrics.includes(m)))) {
          body = `<div class="planned">${esc(notFed.why)}</div>`;
        } else {
          const drawn: Drawn[] = [];
          for (const t of live) {
            for (const s of await query(substitute(t.expr, vars))) {
              drawn.push({ legend: legendOf(t.legendFormat, s.metric), points: (s.values ?? []).map(([ts, v]) => [ts, Number(v)]) });
            }
          }
          const last = (s: Drawn) => [...s.points].reverse().find(([, v]) => Number.isFinite(v))?.[1];
          if (drawn.length === 0) body = '<div class="planned">no data</div>';
          else if (p.type === 'stat') {
            body = `<div class="stats">${drawn.map((s, i) => `<div><span class="big" style="color:${COLORS[i % COLORS.length]}">${esc(formatValue(last(s) ?? NaN, unit))}</span><span>${esc(s.legend)}</span></div>`).join('')}</div>`;
          } else {
            const legendH = Math.min(4, drawn.length) * 14 + 4;
            body = svgPlot(drawn, unit, thresholds, w - 12, h - 30 - legendH, window.start, window.end) +
              `<div class="legend">${drawn.slice(0, 8).map((s, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.legend)} <b>${esc(formatValue(last(s) ?? NaN, unit))}</b></span>`).join('')}${drawn.length > 8 ? `<span>+${drawn.length - 8} more</span>` : ''}</div>`;
          }
        }
        const title = esc(p.title) + (missing.length && live.length ? ` <span class="planned-note">(not drawn: planned ${missing.map(esc).join(', ')})</span>` : '');
        boxes.push(`<div class="panel" style="left:${left}px;top:${top}px;width:${w}px;height:${h}px"><div class="title">${title}</div>${body}</div>`);
      }
      const height = bottom * UNIT + 90;
      const html = `<!doctype html><html><head><meta charset="utf-8"><style>
        body{margin:0;background:#111217;color:#ccccdc;font:12px sans-serif;position:relative;width:${WIDTH}px;height:${height}px}
        h1{font-size:18px;margin:0;padding:10px 12px 0} .note{padding:2px 12px;color:#8e8e8e}
        .panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;padding:4px 6px;box-sizing:border-box;overflow:hidden}
        .title{font-weight:600;margin-bottom:2px} .row{position:absolute;font-weight:600;font-size:14px;border-bottom:1px solid #2c3235}
        .legend{display:flex;flex-wrap:wrap;gap:2px 12px;font-size:10px} .legend i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
        .planned{color:#8e8e8e;font-style:italic;padding:12px} .planned-note{color:#8e8e8e;font-weight:normal;font-style:italic;font-size:10px} .stats{display:flex;gap:24px;padding:8px} .stats div{display:flex;flex-direction:column} .big{font-size:28px;font-weight:600}
      </style></head><body><h1>${esc(d.title)}</h1><div class="note">${esc(note)}</div>${boxes.join('')}</body></html>`;
      const page = path.join(tmp, `${d.uid}.html`);
      writeFileSync(page, html);
      const png = path.join(outDir, `${d.uid}.png`);
      const r = spawnSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--window-size=${WIDTH},${height}`, `--screenshot=${png}`, `file://${page}`], { encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0 || !existsSync(png)) throw new Error(`chromium failed for ${d.uid}: ${r.stderr}`);
      written.push(png);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return written;
}

if (import.meta.main) {
  const outDir = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..', '..', 'docs', 'dashboards'));
  mkdirSync(outDir, { recursive: true });
  const fleet = await startFleet();
  try {
    const window = await runScenario(fleet);
    const note = `Not Grafana: each panel's PromQL (variables = All, $__rate_interval = 10s) run against a real Prometheus scraping the test fleet of test/monitoring/fleet.ts ` +
      `(${new Date(window.start * 1000).toISOString().slice(0, 19)}Z, ${Math.round(window.end - window.start)} s: normal traffic, bounce storm for storm.test, deferral spike at yahoo, backoff at outlook).`;
    const files = await renderDashboards((e) => fleet.prometheus.queryRange(e, Math.floor(window.start), Math.ceil(window.end), 1), window, outDir, note, PODS_ONLY);
    console.log(`wrote ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  } finally {
    await fleet.stop();
  }
}
