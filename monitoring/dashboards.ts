// Every mailfleet dashboard, top-down: Fleet overview → Pool / IP detail → Sending domain →
// Relay internals, and the Operator. Written with Grafana's foundation SDK; `npm run dashboards`
// writes them to charts/mailfleet/dashboards/ (the chart ships them as ConfigMaps).
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { sendingDomain } from './dashboards/domain.ts';
import { fleetOverview } from './dashboards/fleet.ts';
import { operatorDashboard } from './dashboards/operator.ts';
import { poolDetail } from './dashboards/pool.ts';
import { relayInternals } from './dashboards/relay.ts';

export function dashboards(): (Dashboard & { uid: string })[] {
  return [fleetOverview(), poolDetail(), sendingDomain(), relayInternals(), operatorDashboard()] as (Dashboard & { uid: string })[];
}
