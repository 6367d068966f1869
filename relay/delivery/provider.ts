// The provider metrics label: the scheduler's MX rollup (relay/scheduler/providers.ts), except that
// unrecognised hosts keep the label "other" and failures before any MX "none", as dashboards and
// tests written before the scheduler expect; the scheduler and the stats endpoint say "default".
import { rollupProvider, type ProviderPattern } from '../scheduler/providers.ts';

export function providerOf(mxHost: string | undefined, custom?: readonly ProviderPattern[]): string {
  if (!mxHost) return 'none';
  const p = rollupProvider(mxHost, custom);
  return p === 'default' ? 'other' : p;
}
