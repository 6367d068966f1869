// Every panel query of the generated dashboards, with Grafana's variables substituted, so that a
// test (test/monitoring/live.test.ts) and the evidence script (monitoring/evidence.ts) can run
// them against a real Prometheus. Pure: dashboards JSON in, queries out.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface PanelQuery {
  dashboard: string;
  dashboardTitle: string;
  panel: string;
  row: string;
  unit: string;
  refId: string;
  expr: string;
  legend: string;
  thresholds: number[];
}

interface Json {
  uid: string;
  title: string;
  panels: { type: string; title: string; targets?: { expr: string; refId: string; legendFormat?: string }[]; fieldConfig?: { defaults?: { unit?: string; thresholds?: { steps: { value: number | null }[] } } } }[];
  templating: { list: { name: string; type: string; query?: string }[] };
}

export function panelQueries(dashboards: readonly Json[]): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const d of dashboards) {
    let row = '';
    for (const p of d.panels) {
      if (p.type === 'row') {
        row = p.title;
        continue;
      }
      for (const t of p.targets ?? []) {
        out.push({
          dashboard: d.uid, dashboardTitle: d.title, panel: p.title, row, refId: t.refId, expr: t.expr, legend: t.legendFormat ?? '',
          unit: p.fieldConfig?.defaults?.unit ?? '',
          thresholds: (p.fieldConfig?.defaults?.thresholds?.steps ?? []).flatMap((s) => (s.value === null ? [] : [s.value])),
        });
      }
    }
  }
  return out;
}

/** The query variables of a dashboard (name → label_values(...) query). */
export function queryVariables(d: Json): { name: string; query: string }[] {
  return d.templating.list.filter((v) => v.type === 'query').map((v) => ({ name: v.name, query: v.query! }));
}

/** Grafana's interpolation of the variables the dashboards use. */
export function substitute(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$(__rate_interval|__range|[a-z]+)\b|\$\{([a-z_]+)\}/g, (m, a: string | undefined, b: string | undefined) => {
    const name = a ?? b!;
    if (!(name in vars)) throw new Error(`no value for $${name} in ${expr}`);
    return vars[name]!;
  });
}

/** label_values(metric{selector}, label) → the selector to match and the label. */
export function parseLabelValues(query: string): { match: string; label: string } {
  const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(query);
  if (!m) throw new Error(`not a label_values() query: ${query}`);
  return { match: m[1]!, label: m[2]! };
}

/** Metric names a query reads (recording rules count as theirs). */
export function metricsOf(expr: string): string[] {
  const names: string[] = [...(expr.match(/\bmailfleet[_:][a-z0-9_:]+/g) ?? [])];
  if (/\bup\{/.test(expr)) names.push('up');
  return [...new Set(names)];
}

/** Metric names docs/observability.md reserves as *planned* (other branches add them). */
export function plannedMetrics(repoRoot = path.resolve(import.meta.dirname, '..')): Set<string> {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'observability.md'), 'utf8');
  return new Set([...doc.matchAll(/^\| `(mailfleet_[a-z_]+)` \|.*\*planned\*/gm)].map((m) => m[1]!));
}

export function loadDashboards(dir = path.resolve(import.meta.dirname, '..', 'charts', 'mailfleet', 'dashboards')): Json[] {
  return ['mailfleet-fleet', 'mailfleet-pool', 'mailfleet-domain', 'mailfleet-relay', 'mailfleet-operator'].map((f) => JSON.parse(readFileSync(path.join(dir, `${f}.json`), 'utf8')) as Json);
}
