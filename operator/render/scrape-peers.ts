// Who may scrape the relays' metrics port besides the operator: NetworkPolicyPeer objects given on
// the command line (`--relay-metrics-from`, rendered by the chart from relayMetrics.allowFrom).
export interface NetworkPolicyPeer {
  namespaceSelector?: Record<string, unknown>;
  podSelector?: Record<string, unknown>;
  ipBlock?: { cidr: string; except?: string[] };
}

const KEYS = new Set(['namespaceSelector', 'podSelector', 'ipBlock']);

/** Parses a JSON array of NetworkPolicyPeers; an error names the flag and the entry at fault. */
export function parseScrapePeers(text: string, flag = '--relay-metrics-from'): NetworkPolicyPeer[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${flag}: not JSON (${(err as Error).message}); expected an array of NetworkPolicyPeer objects, e.g. [{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]`);
  }
  if (!Array.isArray(value)) throw new Error(`${flag}: expected a JSON array of NetworkPolicyPeer objects`);
  return value.map((p, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p) || Object.keys(p).length === 0) throw new Error(`${flag}[${i}]: expected an object with namespaceSelector, podSelector or ipBlock`);
    for (const k of Object.keys(p)) if (!KEYS.has(k)) throw new Error(`${flag}[${i}].${k}: unknown field (a NetworkPolicyPeer has namespaceSelector, podSelector, ipBlock)`);
    for (const k of ['namespaceSelector', 'podSelector'] as const) {
      const sel = (p as Record<string, unknown>)[k];
      if (sel !== undefined && (typeof sel !== 'object' || sel === null || Array.isArray(sel))) throw new Error(`${flag}[${i}].${k}: expected a label selector object`);
    }
    const ip = (p as NetworkPolicyPeer).ipBlock;
    if (ip !== undefined && typeof ip?.cidr !== 'string') throw new Error(`${flag}[${i}].ipBlock.cidr: expected a CIDR string`);
    return p as NetworkPolicyPeer;
  });
}
