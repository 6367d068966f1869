// Bounce classification rules as data. Order matters: the first matching rule wins, so specific
// provider phrasings come before the generic status-code rules. Config may prepend its own rules
// (config.delivery.bounceRules) to override any of these without a code change.

export const BOUNCE_CATEGORIES = [
  'unknown-user',
  'mailbox-full',
  'reputation',
  'rate-limited',
  'spam-content',
  'policy',
  'auth',
  'dns',
  'tls',
  'message-size',
  'connection',
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

export const DEFAULT_BOUNCE_RULES: readonly BounceRule[] = [
  // Provider phrasings first: they are more specific than their (often generic) codes.
  { category: 'reputation', text: '\\[TS0[1-4]\\]|poor reputation|low reputation|reputation of the sending|sender reputation|IP reputation|blocked using|listed (on|in|at) .*(spamhaus|barracuda|spamcop|sorbs|dnsbl)|\\bRBL\\b|block list|blocklist|Spamhaus|S3150|\\bbanned sending IP\\b' },
  // "Too many recipients" (452 4.5.3) is a per-transaction limit (RFC 5321 §4.5.3.1.10), not a rate:
  // it must not pause the IP (backoff.ts suspends on rate-limited), so it stays soft/hard by code.
  { category: 'rate-limited', text: 'rate limit|rate-limit|too many (messages|connections|concurrent|emails)|unusual rate|temporarily deferred due to|\\[TSS0[1-9]\\]|try again later.*volume|exceeded.*(quota|limit) for (sending|messages)|throttl' },
  { category: 'mailbox-full', text: 'mailbox (is )?full|over ?quota|quota exceeded|exceeded (his|her|their|the) storage|insufficient (system )?storage|out of storage|mailbox size limit' },
  { category: 'unknown-user', text: "(user|mailbox|recipient|address)( \\S+)? (unknown|not found|does not exist|doesn't exist|unavailable|not exist)|no such (user|mailbox|recipient)|account (that you tried to reach )?(does not exist|is disabled|has been disabled)|invalid (recipient|mailbox)|RecipientNotFound|User unknown|doesn't have an? \\S+ account|unrouteable address|address rejected: User" },
  { category: 'spam-content', text: 'spam|junk|content (rejected|filter)|message (content )?(rejected|refused) (as|due)|virus|malware|phish|suspicious (link|url|content)|URIBL|unsolicited' },
  { category: 'auth', text: 'DMARC|SPF|DKIM|not authenticated|authentication (required|failed)|unauthenticated|5\\.7\\.26|sender is not authorized|fails? (to pass )?(authentication|SPF|DKIM)' },
  { category: 'message-size', text: 'message (size|too large|too big)|exceeds (the )?(size|maximum)|size limit' },
  { category: 'tls', text: 'TLS|STARTTLS|MTA-STS|certificate|encryption required' },
  { category: 'policy', text: 'policy|not allowed|relay(ing)? (denied|not permitted|access denied)|access denied|administrative prohibition|blocked|refused by|rejected by|5\\.7\\.1\\b' },
  // Enhanced status codes (RFC 3463) when the text did not say more.
  { category: 'unknown-user', enhanced: '5.1.1' },
  { category: 'unknown-user', enhanced: '5.1.6' },
  { category: 'dns', enhanced: '5.1.2' },
  { category: 'dns', enhanced: '5.1.10' },
  { category: 'dns', enhanced: '4.4.3' },
  { category: 'dns', enhanced: '5.4.4' },
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
