// Who may send where: the open-relay rule, as a pure function.
export type RecipientDecision = { ok: true } | { ok: false; code: number; enhanced: string; text: string; reason: string };

const ACCEPT: RecipientDecision = Object.freeze({ ok: true });

const normaliseDomain = (d: string): string => {
  const lower = d.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
};

/**
 * The accepted domains normalised once per list, not per recipient: the config's list lives until
 * a live reload replaces it (relay/config/live.ts), which this notices by identity.
 */
let normalised: { list: readonly string[]; set: ReadonlySet<string> } | undefined;
function acceptSet(list: readonly string[]): ReadonlySet<string> {
  if (normalised?.list !== list) normalised = { list, set: new Set(list.map(normaliseDomain)) };
  return normalised.set;
}

export function decideRecipient(input: {
  role: 'submission' | 'mx';
  authenticated: boolean;
  recipientDomain: string;
  acceptDomains: readonly string[];
  recipientsSoFar: number;
  maxRecipients: number;
}): RecipientDecision {
  if (input.recipientsSoFar >= input.maxRecipients) {
    return { ok: false, code: 452, enhanced: '4.5.3', text: `Too many recipients: at most ${input.maxRecipients} per message`, reason: 'too-many-recipients' };
  }
  if (input.authenticated && input.role === 'submission') return ACCEPT;
  if (input.acceptDomains.length > 0 && acceptSet(input.acceptDomains).has(normaliseDomain(input.recipientDomain))) return ACCEPT;
  if (input.role === 'submission') {
    return { ok: false, code: 530, enhanced: '5.7.0', text: 'Authentication required to send to this domain', reason: 'auth-required' };
  }
  return { ok: false, code: 550, enhanced: '5.7.1', text: 'Relaying denied: this server does not accept mail for that domain', reason: 'relay-denied' };
}
