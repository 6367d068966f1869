// Who may send where: the open-relay rule, as a pure function.
export type RecipientDecision = { ok: true } | { ok: false; code: number; enhanced: string; text: string; reason: string };

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
  if (input.authenticated && input.role === 'submission') return { ok: true };
  const domain = input.recipientDomain.toLowerCase().replace(/\.$/, '');
  if (input.acceptDomains.some((d) => d.toLowerCase().replace(/\.$/, '') === domain)) return { ok: true };
  if (input.role === 'submission') {
    return { ok: false, code: 530, enhanced: '5.7.0', text: 'Authentication required to send to this domain', reason: 'auth-required' };
  }
  return { ok: false, code: 550, enhanced: '5.7.1', text: 'Relaying denied: this server does not accept mail for that domain', reason: 'relay-denied' };
}
