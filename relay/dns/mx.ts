// Pure MX interpretation (RFC 5321 §5.1, RFC 7505): records → ordered list of hosts to try.

export interface MxRecord {
  exchange: string;
  priority: number;
}

export type MxDecision =
  | { kind: 'hosts'; hosts: string[] }
  /** RFC 7505: the domain says it accepts no mail. */
  | { kind: 'null-mx' };

/** Lowest preference first; hosts of equal preference in random order (spreads load, RFC 5321 §5.1). */
export function orderMx(records: readonly MxRecord[], random: () => number = Math.random): MxDecision {
  const real = records.filter((r) => r.exchange !== '' && r.exchange !== '.');
  // A null MX is only meaningful alone; next to real MX records it is a misconfiguration we route around.
  if (real.length === 0 && records.length > 0) return { kind: 'null-mx' };
  const byPref = new Map<number, string[]>();
  for (const r of real) {
    const host = r.exchange.replace(/\.$/, '').toLowerCase();
    const list = byPref.get(r.priority) ?? [];
    if (!list.includes(host)) list.push(host);
    byPref.set(r.priority, list);
  }
  const hosts: string[] = [];
  for (const pref of [...byPref.keys()].sort((a, b) => a - b)) {
    const group = byPref.get(pref)!;
    for (let i = group.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [group[i], group[j]] = [group[j]!, group[i]!];
    }
    hosts.push(...group.filter((h) => !hosts.includes(h)));
  }
  return { kind: 'hosts', hosts };
}
