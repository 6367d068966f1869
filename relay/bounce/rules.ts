// Bounce classification rules as data. Order matters: the first matching rule wins, so specific
// provider phrasings come before the generic status-code rules. Config may prepend its own rules
// (config.delivery.bounceRules) to override any of these without a code change.

export const BOUNCE_CATEGORIES = [
  'unknown-user',
  'unknown-domain',
  'mailbox-full',
  'mailbox-disabled',
  'reputation',
  'rate-limited',
  'spam-content',
  'policy',
  'auth',
  'dns',
  'tls',
  'message-size',
  'connection',
  'expired',
  'hard',
  'soft',
] as const;
export type BounceCategory = (typeof BOUNCE_CATEGORIES)[number];

export type SmtpPhase = 'dns' | 'connect' | 'tls' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'eom' | 'policy';

export interface BounceRule {
  category: BounceCategory;
  /** Case-insensitive regular expression matched against the reply text. */
  text?: string;
  /** Enhanced status code prefix, e.g. "5.1.1" or "4.7." . */
  enhanced?: string;
  /** Basic reply code prefix, e.g. "55" or "421". */
  code?: string;
  phase?: SmtpPhase[];
}

/**
 * Wordings only a mailbox directory uses. A filter's "user unknown" or "no such user" are not
 * among them: those count as a bad address only when refused at RCPT or with an X.1.x status.
 */
export const UNMISTAKABLE_UNKNOWN_USER = /recipient name is not recognized|not listed in (the )?(Domino Directory|public Name)|doesn't have an? \S+ account|address couldn't be found|address not found|no valid recipients|(does not|doesn't) exist|invalid recipient|invalid final delivery userid|RecipientNotFound|no such (mailbox|account|recipient)|unknown recipient|account or domain may not exist/i;

export const DEFAULT_BOUNCE_RULES: readonly BounceRule[] = [
  // The relay's own DNS failures (NXDOMAIN, null MX, timeouts) stay 'dns' whatever their code: our
  // resolver's answer, not a receiver's verdict on the address (reports of "host unknown" from a
  // receiving MTA are 'unknown-domain' below).
  { category: 'dns', phase: ['dns'] },
  // Provider phrasings first: they are more specific than their (often generic) codes.
  { category: 'reputation', text: '\\[TS0[1-4]\\]|poor reputation|low reputation|reputation of the sending|sender reputation|IP reputation|blocked using|listed (on|in|at) .*(spamhaus|barracuda|spamcop|sorbs|dnsbl)|\\bRBL\\b|block list|blocklist|Spamhaus|S3150|\\bbanned sending IP\\b' },
  // "Too many recipients" (452 4.5.3) is a per-transaction limit (RFC 5321 §4.5.3.1.10), not a rate:
  // it must not pause the IP (backoff.ts suspends on rate-limited), so it stays soft/hard by code.
  // "Too many recipients this hour" (GoDaddy IB607) is a rate, though.
  { category: 'rate-limited', text: 'rate limit|rate-limit|too many (messages|connections|concurrent|emails)|unusual rate|temporarily deferred due to|\\[TSS0[1-9]\\]|try again later.*volume|exceeded.*(quota|limit) for (sending|messages)|throttl|too many recipients (this|per|an) (hour|minute|day)' },
  { category: 'mailbox-full', text: 'mailbox (is )?full|over ?quota|quota exceeded|exceeded (his|her|their|the) storage|insufficient (system )?storage|out of storage|mailbox size limit' },
  // The recipient's own settings refuse us (Facebook RCP-P2/P3): a policy, the address exists.
  { category: 'policy', text: 'recipient preferences|recipient.s privacy settings|\\bRCP-P[23]\\b' },
  // The sender's address or domain refused: nothing to do with the recipient (sisimai: rejected).
  { category: 'policy', text: 'sender address|sender domain|domain of sender|sender .{0,40}(rejected|does not exist|unknown|not allowed)|MAIL FROM.{0,40}(rejected|refused)|envelope sender' },
  // A disabled or suspended mailbox exists and may come back: not a hard bounce (sisimai: suspend).
  { category: 'mailbox-disabled', text: 'account (that you tried to reach )?(is |has been )?(disabled|suspended|locked|inactive|deactivated)|mailbox (is |has been )?(disabled|suspended|inactive|deactivated|locked)|temporar(il)?y locked|user (is )?(suspended|inactive|disabled)' },
  { category: 'unknown-user', text: "(user|mailbox|recipient|address|addressee)( \\S+)? (unknown|not found|does not exist|doesn't exist|unavailable|not exist|not listed)|unknown (user|recipient|mailbox|address|local.?part)|no such (user|mailbox|recipient|account|person|address)|no mailbox|account (that you tried to reach )?(does not exist|not exist)|invalid (recipient|mailbox|address|user)|not a valid (user|mailbox|recipient|address)|RecipientNotFound|User unknown|doesn't have an? \\S+ account|unrouteable address|address rejected: User|recipient name is not recognized|not listed in (the )?(Domino Directory|public Name)|no valid recipients|does not have an account|is not a known user|user not found|address not found|recipient not found|bad destination mailbox|the account or domain may not exist|mailbox name not allowed|invalid final delivery userid" },
  // The resolver's trouble, not the domain's absence.
  { category: 'dns', text: 'malformed or unexpected name server reply|name server (timeout|failure)|SERVFAIL|dns (lookup )?(failure|timeout|error)|temporary (dns|name resolution) (failure|error)' },
  { category: 'unknown-domain', text: 'host (or domain name )?not found|host unknown|unknown host|domain (name )?(not found|does not exist|unknown)|no such domain|NXDOMAIN|unrouteable (mail )?domain|no (valid )?(mx|mail exchanger)( record)?s? (found|for)|couldn.t find a mail exchanger|MX or SRV record indicated no SMTP service|domain .{0,60}does not accept mail|domain is not reachable|domain does not exist|\\S+\\.\\S+ does not exist', code: '5' },
  { category: 'unknown-domain', text: 'host (or domain name )?not found|host unknown|no such domain|domain (name )?(not found|does not exist)|NXDOMAIN|no mx record|couldn.t find a mail exchanger|MX or SRV record indicated no SMTP service', enhanced: '5.' },
  { category: 'expired', text: 'retry time(out)? (not reached|exceeded|expired)|message expired|too long (in|on) (the )?queue|could not be delivered (within|for)|delivery time (expired|exceeded)|retry timeout|message (has been )?(in|on) (the )?queue too long|expired after|maximum (delivery|queue) time|lifetime (exceeded|expired)' },
  { category: 'spam-content', text: 'spam|junk|content (rejected|filter)|message (content )?(rejected|refused) (as|due)|virus|malware|phish|suspicious (link|url|content)|URIBL|unsolicited' },
  { category: 'auth', text: 'DMARC|SPF|DKIM|not authenticated|authentication (required|failed)|unauthenticated|5\\.7\\.26|sender is not authorized|fails? (to pass )?(authentication|SPF|DKIM)' },
  { category: 'message-size', text: 'message (size|too large|too big)|exceeds (the )?(size|maximum)|size limit' },
  { category: 'tls', text: 'TLS|STARTTLS|MTA-STS|certificate|encryption required' },
  { category: 'policy', text: 'policy|not allowed|relay(ing)? (denied|not permitted|access denied)|access denied|administrative prohibition|blocked|refused by|rejected by|5\\.7\\.1\\b' },
  // Enhanced status codes (RFC 3463) when the text did not say more.
  { category: 'unknown-user', enhanced: '5.1.1' },
  { category: 'unknown-user', enhanced: '5.1.0' },
  { category: 'mailbox-disabled', enhanced: '5.2.1' },
  { category: 'unknown-user', enhanced: '5.1.6' },
  { category: 'unknown-domain', enhanced: '5.1.2' },
  { category: 'expired', enhanced: '4.4.7' },
  { category: 'expired', enhanced: '5.4.7' },
  { category: 'dns', enhanced: '5.1.10' },
  { category: 'dns', enhanced: '4.4.3' },
  { category: 'unknown-domain', enhanced: '5.4.4' },
  { category: 'dns', enhanced: '5.4.6' },
  { category: 'mailbox-full', enhanced: '4.2.2' },
  { category: 'mailbox-full', enhanced: '5.2.2' },
  { category: 'message-size', enhanced: '5.3.4' },
  { category: 'message-size', enhanced: '5.2.3' },
  { category: 'rate-limited', enhanced: '4.7.28' },
  { category: 'auth', enhanced: '5.7.26' },
  { category: 'auth', enhanced: '5.7.25' },
  { category: 'tls', enhanced: '5.7.10' },
  { category: 'tls', enhanced: '4.7.5' },
  { category: 'tls', enhanced: '5.7.5' },
  { category: 'policy', enhanced: '5.7.' },
  { category: 'policy', enhanced: '4.7.' },
  { category: 'connection', enhanced: '4.4.' },
  // 4.3.x: the receiving system's own trouble (full disk, not accepting mail) — plain soft.
  { category: 'soft', enhanced: '4.3.' },
  // Phases the relay itself fails in.
  { category: 'dns', phase: ['dns'] },
  { category: 'tls', phase: ['tls'] },
  { category: 'connection', phase: ['connect'] },
  { category: 'rate-limited', code: '421' },
  { category: 'hard', code: '5' },
  { category: 'soft', code: '4' },
];
