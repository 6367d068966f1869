// Shared pieces of the mailfleet dashboards: variables (kubernetes-mixin's datasource, cluster,
// namespace, plus pool, IP and sending domain), selectors, and a panel helper that sets units,
// threshold lines at the alert lines and links to the runbook and to the next dashboard down.
import * as cog from '@grafana/grafana-foundation-sdk/cog';
import {
  DashboardBuilder, DashboardLinkBuilder, DashboardLinkType, DatasourceVariableBuilder, QueryVariableBuilder, RowBuilder,
  ThresholdsConfigBuilder, ThresholdsMode, VariableHide, VariableRefresh, VariableSort, type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import {
  BigValueGraphMode, GraphThresholdsStyleConfigBuilder, GraphThresholdsStyleMode, LegendDisplayMode, LegendPlacement, StackingConfigBuilder, StackingMode,
  VizLegendOptionsBuilder, VizOrientation,
} from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/** Default runbook location; the chart replaces it with prometheusRule.runbookBaseUrl. */
export const RUNBOOK_BASE = 'https://github.com/mailfleet/mailfleet/blob/main/docs/runbooks';

export const UID = {
  fleet: 'mailfleet-fleet',
  pool: 'mailfleet-pool',
  domain: 'mailfleet-domain',
  relay: 'mailfleet-relay',
  operator: 'mailfleet-operator',
} as const;

/** Relay series of the selected cluster and namespaces. */
export const RELAY = 'job="mailfleet-relay",cluster=~"$cluster",namespace=~"$namespace"';
export const RELAY_POOL = `${RELAY},pool=~"$pool"`;
export const RELAY_IP = `${RELAY_POOL},source_ip=~"$ip"`;
export const RELAY_DOMAIN = `${RELAY},sending_domain=~"$domain"`;
export const OPERATOR = 'job="mailfleet",cluster=~"$cluster",namespace=~"$namespace"';
/**
 * The operator's series about pools, on the relay dashboards (whose $namespace lists the relays'
 * namespaces, not the operator's). Its reputation series name a pool "namespace/name".
 */
export const OPERATOR_JOB = 'job="mailfleet",cluster=~"$cluster"';
export const OPERATOR_POOLS = `${OPERATOR_JOB},pool=~"$namespace/.*"`;
export const OPERATOR_IP = `${OPERATOR_JOB},pool=~"$namespace/$pool",ip=~"$ip"`;
export const FINAL = 'result=~"delivered|bounced|expired"';

export type Variable = 'pool' | 'ip' | 'domain';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

function queryVar(name: string, label: string, query: string, opts: { multi?: boolean; hide?: boolean } = {}) {
  const v = new QueryVariableBuilder(name)
    .label(label)
    .query(query)
    .definition(query)
    .datasource(DATASOURCE)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .includeAll(true)
    .allValue('.*')
    .multi(opts.multi ?? true)
    .current({ text: 'All', value: '$__all' });
  return opts.hide ? v.hide(VariableHide.HideVariable) : v;
}

/** A dashboard with the common variables, the mailfleet dashboards dropdown and sensible time settings. */
export function dashboard(uid: string, title: string, description: string, vars: Variable[], source: 'relay' | 'operator' = 'relay'): DashboardBuilder {
  const job = source === 'relay' ? 'mailfleet-relay' : 'mailfleet';
  const b = new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['mailfleet'])
    .editable()
    .time({ from: 'now-6h', to: 'now' })
    .refresh('1m')
    .timezone('utc')
    .link(new DashboardLinkBuilder('mailfleet').type(DashboardLinkType.Dashboards).tags(['mailfleet']).asDropdown(true).includeVars(true).keepTime(true))
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus').regex(''))
    // Shown only when a cluster label exists (several clusters in one Prometheus).
    .withVariable(queryVar('cluster', 'Cluster', `label_values(up{job="${job}"}, cluster)`, { multi: false }))
    .withVariable(queryVar('namespace', 'Namespace', `label_values(up{job="${job}",cluster=~"$cluster"}, namespace)`));
  if (vars.includes('pool')) b.withVariable(queryVar('pool', 'Pool', `label_values(mailfleet_relay_ready{${RELAY}}, pool)`));
  if (vars.includes('ip')) b.withVariable(queryVar('ip', 'Source IP', `label_values(mailfleet_delivery_attempts_total{${RELAY_POOL}}, source_ip)`));
  if (vars.includes('domain')) b.withVariable(queryVar('domain', 'Sending domain', `label_values(mailfleet_delivery_domain_attempts_total{${RELAY},sending_domain!="other"}, sending_domain)`));
  return b;
}

export interface Threshold {
  value: number;
  color: 'orange' | 'red' | 'yellow';
}

export interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  targets: { expr: string; legend?: string }[];
  kind?: 'timeseries' | 'stat';
  /** Lines drawn at the alert/pause/review levels. */
  thresholds?: Threshold[];
  min?: number;
  max?: number;
  /** Alert whose runbook the panel links to. */
  runbook?: string;
  /** The next dashboard down. */
  drill?: { uid: string; title: string };
  width?: number;
  height?: number;
  stack?: boolean;
}

function links(p: PanelSpec) {
  const out: cog.Builder<import('@grafana/grafana-foundation-sdk/dashboard').DashboardLink>[] = [];
  if (p.drill) out.push(new DashboardLinkBuilder(`${p.drill.title} →`).type(DashboardLinkType.Link).url(`/d/${p.drill.uid}?\${__url_time_range}&\${__all_variables}`));
  if (p.runbook) out.push(new DashboardLinkBuilder(`Runbook: ${p.runbook}`).type(DashboardLinkType.Link).url(`${RUNBOOK_BASE}/${p.runbook}.md`).targetBlank(true));
  return out;
}

function thresholds(p: PanelSpec) {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    // Grafana's base step has a null value (JSON null).
    { value: null as unknown as number, color: 'green' },
    ...(p.thresholds ?? []).map((t) => ({ value: t.value, color: t.color })),
  ]);
}

function targets(p: PanelSpec) {
  return p.targets.map((t, i) => new DataqueryBuilder().expr(t.expr).legendFormat(t.legend ?? '__auto').refId(String.fromCharCode(65 + i)));
}

export function panel(p: PanelSpec) {
  const w = p.width ?? (p.kind === 'stat' ? 6 : 12);
  const h = p.height ?? (p.kind === 'stat' ? 5 : 8);
  if (p.kind === 'stat') {
    const s = new StatBuilder().datasource(DATASOURCE).title(p.title).description(p.description).unit(p.unit).thresholds(thresholds(p)).graphMode(BigValueGraphMode.Area)
      .orientation(VizOrientation.Auto).links(links(p)).height(h).span(w);
    for (const t of targets(p)) s.withTarget(t);
    if (p.min !== undefined) s.min(p.min);
    if (p.max !== undefined) s.max(p.max);
    return s;
  }
  const b = new TimeseriesBuilder().datasource(DATASOURCE).title(p.title).description(p.description).unit(p.unit).thresholds(thresholds(p))
    .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(p.thresholds?.length ? GraphThresholdsStyleMode.Dashed : GraphThresholdsStyleMode.Off))
    .legend(new VizLegendOptionsBuilder().displayMode(LegendDisplayMode.Table).placement(LegendPlacement.Bottom).showLegend(true).calcs(['lastNotNull', 'max']))
    .fillOpacity(p.stack ? 40 : 10).lineWidth(1).links(links(p)).height(h).span(w);
  if (p.stack) b.stacking(new StackingConfigBuilder().mode(StackingMode.Normal).group('A'));
  for (const t of targets(p)) b.withTarget(t);
  if (p.min !== undefined) b.min(p.min);
  if (p.max !== undefined) b.max(p.max);
  return b;
}

export const row = (title: string) => new RowBuilder(title);

export function build(b: DashboardBuilder): Dashboard {
  return b.build();
}
