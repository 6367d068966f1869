// The panel-query walker shared by the live proofs (live.test.ts: relay processes; live-fleet.test.ts:
// relay pods on the test node): every panel query of every dashboard, its variables substituted as
// Grafana opens a dashboard by default ("All"), run as a range query over the scenario's window.
import { loadDashboards, metricsOf, panelQueries, parseLabelValues, plannedMetrics, queryVariables, substitute } from '../../monitoring/queries.ts';
import type { PrometheusServer } from '../support/prometheus.ts';

export interface ScenarioWindow {
  start: number;
  end: number;
}

/** Grafana's values for the variables: every option ("All"), as a dashboard opens by default. */
export function vars(w: ScenarioWindow): Record<string, string> {
  return { cluster: '.*', namespace: '.*', pool: '.*', ip: '.*', domain: '.*', __rate_interval: '10s', __range: `${Math.ceil(w.end - w.start) + 10}s` };
}

/**
 * Operator metrics only the pod scenario (live-fleet.test.ts) feeds: the process scenario's operator
 * reads no relays (they are processes, not pods behind an EndpointSlice), so it makes no control-loop
 * decisions and judges no domain or warm-up stage, and it runs no reputation loop (no DNSBL there).
 */
export const PODS_ONLY = {
  metrics: ['mailfleet_operator_decisions_total', 'mailfleet_operator_domain_state', 'mailfleet_operator_warmup_stage', 'mailfleet_operator_dnsbl_listed'],
  why: 'no relays for this operator to read, no DNSBL: proven on the pods by live-fleet.test.ts',
};

export interface PanelWalk {
  /** Panel queries that returned at least one non-NaN sample. */
  proven: string[];
  /** "dashboard › panel (refId): expr" of the queries that returned nothing. */
  empty: string[];
  /** Queries not run, with why (planned metrics, or `skipDashboard`'s reason). */
  skipped: string[];
}

/**
 * Runs every panel query over [w.start, w.end]. Queries over planned metrics are skipped, and so
 * are a dashboard's queries when `skipDashboard(uid)` gives a reason.
 */
export async function walkPanels(
  p: PrometheusServer,
  w: ScenarioWindow,
  skipDashboard: (uid: string) => string | undefined = () => undefined,
  /** A reason to skip one query (by the metrics it reads), when another suite proves it. */
  skipMetrics: (metrics: string[]) => string | undefined = () => undefined,
): Promise<PanelWalk> {
  const planned = plannedMetrics();
  const out: PanelWalk = { proven: [], empty: [], skipped: [] };
  for (const q of panelQueries(loadDashboards())) {
    const name = `${q.dashboardTitle} › ${q.panel} (${q.refId})`;
    const missing = metricsOf(q.expr).filter((m) => planned.has(m));
    if (missing.length) {
      out.skipped.push(`${name}: planned ${missing.join(', ')}`);
      continue;
    }
    const why = skipDashboard(q.dashboard) ?? skipMetrics(metricsOf(q.expr));
    if (why) {
      out.skipped.push(`${name}: ${why}`);
      continue;
    }
    const expr = substitute(q.expr, vars(w));
    const series = await p.queryRange(expr, Math.floor(w.start), Math.ceil(w.end), 1);
    const hasValue = series.some((s) => s.values!.some(([, v]) => v !== 'NaN'));
    if (hasValue) out.proven.push(name);
    else out.empty.push(`${name}: ${expr}`);
  }
  return out;
}

/** Every dashboard variable query (label_values) with no values; dashboards `skipDashboard` names are left out. */
export async function emptyVariables(p: PrometheusServer, w: ScenarioWindow, skipDashboard: (uid: string) => boolean = () => false): Promise<string[]> {
  const planned = plannedMetrics();
  const empty: string[] = [];
  for (const d of loadDashboards()) {
    if (skipDashboard(d.uid)) continue;
    for (const v of queryVariables(d)) {
      const { match, label } = parseLabelValues(v.query);
      if (metricsOf(match).some((m) => planned.has(m))) continue;
      const values = await p.labelValues(label, substitute(match, vars(w)));
      if (values.length === 0) empty.push(`${d.title}: $${v.name} (${v.query})`);
    }
  }
  return empty;
}
