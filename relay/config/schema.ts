// The relay's configuration file: this schema is the contract between the relay and the
// operator, which renders a file of this shape into each pool's ConfigMap. The relay never
// imports operator code; the operator imports this module.
// Over 350 lines on purpose: the whole contract in one file, read top to bottom in the order of
// the file it describes (listeners, auth, delivery, retry, shaping, intake rate, domains, feedback).
import { z } from 'zod';
import { WARMUP_PRESET_NAMES } from '../warmup/presets.ts';

/** queue.commitDelayMs when the file says nothing (bench/README.md "Commit delay", issue 13). */
export const COMMIT_DELAY_MS_DEFAULT = 2;
/**
 * intake.workerThreads when the file says nothing: one session thread per CPU the process may use,
 * less the main thread's (relay/intake/threads.ts workerThreadCount). Measured on 2 CPUs
 * (bench/README.md "Session threads by default", issue 13): one session thread took
 * 28 % more mail than none, one message per connection and reused, at 4–10 % less CPU per
 * message, for ~30 MB more peak RSS.
 */
export const WORKER_THREADS_DEFAULT: number | 'auto' = 'auto';

// 0 asks the kernel for a free port (tests, side-by-side dev fleets).
const port = z.number().int().min(0).max(65535);
const hostname = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/, 'a DNS host name');
const domainName = hostname;
const filePath = z.string().min(1).describe('path of a file (secrets are read from files, never from this YAML)');

export const TlsFilesSchema = z
  .object({
    certFile: filePath,
    keyFile: filePath,
  })
  .strict();

export const ListenerSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes'),
    // submission: clients authenticate and may send anywhere.
    // mx: the public port-25 style listener; no AUTH, only mail for acceptDomains.
    role: z.enum(['submission', 'mx']).default('submission'),
    address: z.string().default('0.0.0.0'),
    port,
    // starttls: offered after EHLO (587, 2525); implicit: TLS from the first byte (465); none: plain.
    tls: z.enum(['starttls', 'implicit', 'none']).default('starttls'),
    // AUTH without TLS is only ever offered to loopback clients, and only when this is true.
    allowPlaintextAuthOnLoopback: z.boolean().default(false),
    // smtp-server holds the greeting 100 ms to catch early talkers; a useful spam signal on a
    // public MX, pure latency on authenticated submission.
    greetingDelayMs: z.number().int().min(0).max(30000).optional(),
    // Overrides limits.maxMessageBytes for this listener (an MX taking bounces needs less than submission).
    maxMessageBytes: z.number().int().min(1024).optional(),
    maxClients: z.number().int().min(1).default(1000),
  })
  .strict();

export const LimitsSchema = z
  .object({
    maxMessageBytes: z.number().int().min(1024).default(25 * 1024 * 1024),
    maxRecipients: z.number().int().min(1).default(100),
    // RFC 5321 §4.5.3.1.6: 1000 octets including CRLF.
    maxLineOctets: z.number().int().min(78).default(1000),
    // Silence allowed from a client between commands and inside DATA (Postfix smtpd_timeout: 300 s).
    idleTimeoutMs: z.number().int().min(1000).default(5 * 60 * 1000),
    // A command line, once started, must end within this; and a message body must keep at least
    // minDataRate bytes/s once this much time has passed (relay/intake/slow-clients.ts). Else
    // 421 4.4.2. An idle client between commands is the idle timeout's business.
    commandTimeoutMs: z.number().int().min(1000).default(60 * 1000),
    // Bytes per second (Postfix smtpd_min_data_rate: 500); 0 turns the check off.
    minDataRate: z.number().int().min(0).default(500),
    // Message bytes all intake sessions together may hold in memory (relay/intake/memory-budget.ts).
    // Bodies past 128 KiB, or that do not fit, are written to <dataDir>/intake-spool as they
    // arrive and stored in parts from there (relay/queue/body-parts.ts); only a body read back
    // whole takes its commit copy from this budget after the final "."
    // (relay/intake/incoming-body.ts). The relay's memory limit should leave room for about
    // twice this above its idle footprint (docs/resources.md).
    intakeMemoryBytes: z.number().int().min(1024 * 1024).default(32 * 1024 * 1024),
    // How long a received body waits for room in that budget before it is answered 451 4.3.1
    // (clients wait up to 10 minutes for the reply to ".", RFC 5321 4.5.3.2.6).
    intakeMemoryWaitMs: z.number().int().min(100).default(60 * 1000),
    // Cap on a whole connection, however busy, so no client pins a slot forever.
    sessionTimeoutMs: z.number().int().min(1000).default(30 * 60 * 1000),
    authFailures: z
      .object({
        max: z.number().int().min(1).default(5),
        windowSeconds: z.number().int().min(1).default(300),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const EgressIpSchema = z
  .object({
    address: z.union([z.ipv4(), z.ipv6()]),
    hostname: hostname.describe('PTR name of the address; said in EHLO'),
    weight: z.number().int().min(0).max(1000).default(100),
  })
  .strict();

export const RouteSchema = z
  .object({
    // Domains this route applies to; "*" matches every domain (a smarthost).
    domains: z.array(z.string().min(1)).min(1),
    host: z.string().min(1),
    port: port.default(25),
  })
  .strict();

export const RetrySchema = z
  .object({
    firstRetrySeconds: z.number().int().min(1).default(300),
    multiplier: z.number().min(1).default(2),
    maxRetrySeconds: z.number().int().min(1).default(3600),
    maxAgeSeconds: z.number().int().min(60).default(5 * 24 * 3600),
    // One "still trying" DSN per recipient once it has waited this long (Postfix delay_warning_time);
    // absent = no delay notices.
    delayNoticeSeconds: z.number().int().min(60).optional(),
  })
  .strict();

export const DkimKeySchema = z
  .object({
    selector: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, 'a DKIM selector'),
    algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256'),
    keyFile: filePath,
  })
  .strict();

// Gmail's Feedback-ID (support.google.com/mail/answer/6254652): "a:b:c:SenderId", added to bulk
// mail before DKIM signing. Identifiers come from the message, never per-message-unique values.
export const FeedbackIdSchema = z
  .object({
    senderId: z.string().regex(/^[A-Za-z0-9._-]{5,15}$/, '5 to 15 letters, digits, ".", "_" or "-"'),
    // Up to three identifiers, in order: "user" (the SMTP AUTH user), "class" (otp, transactional,
    // bulk), or "header:<Name>" (a header of the submitted message, e.g. header:X-Campaign).
    fields: z.array(z.union([z.enum(['user', 'class']), z.string().regex(/^header:[A-Za-z0-9-]+$/, '"header:<Header-Name>"')])).max(3).default([]),
    classes: z.array(z.enum(['otp', 'transactional', 'bulk'])).min(1).default(['bulk']),
  })
  .strict();

export const SendingDomainSchema = z
  .object({
    domain: domainName,
    dkim: z.array(DkimKeySchema).default([]),
    // Bounce domain: with returnPath configured, outgoing mail's MAIL FROM is a signed token here.
    returnPathDomain: domainName.optional(),
    // Events of this domain's mail POSTed to the customer (relay/events/webhooks.ts, docs/events.md).
    webhook: z
      .object({
        url: z.url({ protocol: /^https?$/ }),
        // HMAC-SHA256 key, read from a file (a Secret); the key id is sent so receivers can rotate.
        secretFile: filePath,
        keyId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash, underscore').default('k1'),
      })
      .strict()
      .optional(),
    // RFC 8058 one-click unsubscribe headers on this domain's bulk mail (needs feedback.unsubscribe).
    oneClickUnsubscribe: z.boolean().default(false),
    feedbackId: FeedbackIdSchema.optional(),
  })
  .strict();

const SUPPRESSION_REASON = z.enum(['hard-bounce', 'complaint', 'unsubscribe', 'manual']);

// What feedback becomes: the suppression list, events and webhooks, the tracking API
// (docs/suppression.md, docs/events.md). Defaults and their sources: relay/suppression/rules.ts.
export const FeedbackSchema = z
  .object({
    // Bearer token of the relay's HTTP API for suppressions, events and messages (a Secret's file).
    // Absent: those routes answer 401 to everyone.
    apiTokenFile: filePath.optional(),
    // The fleet's shared store. Absent: this relay's own SQLite is the list (mailfleet dev).
    postgres: z
      .object({
        // A file holding a libpq URL (postgresql://user:pass@host:5432/db?sslmode=...): the `uri` key
        // of a CloudNativePG <cluster>-app Secret, mounted.
        urlFile: filePath,
        // Pull interval when no NOTIFY arrives, and the retry interval while PostgreSQL is away.
        syncIntervalSeconds: z.number().min(0.05).max(3600).default(5),
      })
      .strict()
      .optional(),
    suppression: z
      .object({
        hardBounceExpiryDays: z.number().int().min(0).default(30),
        complaintExpiryDays: z.number().int().min(0).default(0),
        unsubscribeExpiryDays: z.number().int().min(0).default(0),
        softBounce: z
          .object({ count: z.number().int().min(1).max(100).default(3), windowDays: z.number().int().min(1).max(365).default(7) })
          .strict()
          .prefault({}),
        // Which reasons stop mail of each class.
        classes: z
          .object({
            otp: z.array(SUPPRESSION_REASON).default(['hard-bounce', 'manual']),
            transactional: z.array(SUPPRESSION_REASON).default(['hard-bounce', 'complaint', 'manual']),
            bulk: z.array(SUPPRESSION_REASON).default(['hard-bounce', 'complaint', 'unsubscribe', 'manual']),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    // Events (and dead letters) kept this long in the relay's own store for the tracking API;
    // with PostgreSQL, its table is the fleet's record (its retention is the database's business).
    events: z
      .object({ retentionDays: z.number().int().min(1).max(3650).default(30) })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        // At least once: retried with backoff for this long, then dead-lettered (and counted).
        maxAgeSeconds: z.number().int().min(86400).default(3 * 86400),
        firstRetrySeconds: z.number().int().min(1).default(30),
        maxRetrySeconds: z.number().int().min(1).default(3600),
        batchSize: z.number().int().min(1).max(1000).default(100),
        timeoutMs: z.number().int().min(100).default(10000),
      })
      .strict()
      .prefault({}),
    // The one-click unsubscribe endpoint (RFC 8058), served over HTTPS with the relay's tls files.
    unsubscribe: z
      .object({
        // Public base URL the links point at, e.g. https://unsubscribe.example.com
        baseUrl: z.url({ protocol: /^https?$/ }),
        // HMAC key of the links' tokens (a Secret's file).
        secretFile: filePath,
        address: z.string().default('0.0.0.0'),
        port: port.default(8443),
        // Plain HTTP instead of HTTPS: only behind a TLS-terminating proxy, and in tests.
        plainHttp: z.boolean().default(false),
        // The certificate of baseUrl's host when it is not the top-level tls (the submission
        // certificate names the SMTP host, the links another one).
        tls: TlsFilesSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

// Signed VERP return paths (relay/returnpath/token.ts, docs/bounces.md).
export const ReturnPathSchema = z
  .object({
    // JSON {"keys":[{id, secret, acceptUntil?}]} from a Secret; the first key signs (relay/returnpath/keys.ts).
    keysFile: filePath,
    // The pool's name, digested into each token so a bounce names the pool that sent the mail.
    pool: z.string().max(63).default(''),
    // Tokens older than this are not trusted: a replayed old return path is refused.
    validityDays: z.number().int().min(1).max(365).default(30),
    // Local parts at each bounce domain that take feedback-loop (ARF) reports.
    feedbackLocalParts: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a lower-case local part')).default(['fbl']),
  })
  .strict();

// Reply-text patterns in rules: checked here so a bad pattern is a config error, not a crash.
const regexString = z
  .string()
  .min(1)
  .refine((s) => {
    try {
      new RegExp(s, 'i');
      return true;
    } catch {
      return false;
    }
  }, 'a valid regular expression');

// A bounce classification rule (relay/bounce/rules.ts); config rules are tried before the built-in ones.
// The classifier's categories (relay/bounce/rules.ts BOUNCE_CATEGORIES; a test keeps the two equal).
const BounceCategorySchema = z.enum([
  'unknown-user', 'unknown-domain', 'mailbox-full', 'mailbox-disabled', 'reputation', 'rate-limited', 'spam-content', 'policy', 'auth',
  'dns', 'tls', 'message-size', 'connection', 'expired', 'hard', 'soft',
]);

export const BounceRuleSchema = z
  .object({
    category: BounceCategorySchema,
    text: regexString.optional(),
    enhanced: z.string().regex(/^[245]\.\d{1,3}(\.(\d{1,3})?)?$|^[245]\.$/, 'an enhanced status code or prefix, e.g. "5.1.1" or "4.7."').optional(),
    code: z.string().regex(/^[245]\d{0,2}$/, 'a reply code or prefix, e.g. "550" or "4"').optional(),
    phase: z.array(z.enum(['dns', 'connect', 'tls', 'ehlo', 'mail', 'rcpt', 'data', 'eom', 'policy'])).optional(),
  })
  .strict();

// Per (source IP, provider) limits (relay/scheduler). Field names match the operator's
// SendingPool limits.providers so it can render them one to one; unset fields inherit from the
// "default" provider entry, then from the built-in profile (docs/shaping.md).
export const ProviderShapingSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a provider name: lower-case letters, digits and dashes'),
    // MX host suffixes that identify the provider (the MX rollup); built-in providers need none.
    mxSuffixes: z.array(z.string().min(1)).default([]),
    maxConnections: z.number().int().min(1).max(1000).optional(),
    newConnectionsPerMinute: z.number().int().min(1).max(100000).optional(),
    messagesPerConnection: z.number().int().min(1).max(10000).optional(),
    messagesPerSecond: z.number().min(0.001).max(100000).optional(),
    // Token-bucket size; defaults to one second's worth of messagesPerSecond (at least 1).
    burst: z.number().int().min(1).max(1000000).optional(),
  })
  .strict();

// An adaptive backoff rule: a reply matching every given field triggers the action for that
// (source IP, provider). Config rules are tried before the built-in ones (relay/bounce/backoff.ts).
export const BackoffRuleSchema = z
  .object({
    // The classifier's category of the reply (relay/bounce/rules.ts), e.g. "reputation".
    category: BounceCategorySchema.optional(),
    code: z.string().regex(/^[245]\d{0,2}$/, 'a reply code or prefix, e.g. "421" or "4"').optional(),
    enhanced: z.string().regex(/^[245]\.\d{1,3}(\.(\d{1,3})?)?$|^[245]\.$/, 'an enhanced status code or prefix, e.g. "4.7.28" or "4.7."').optional(),
    text: regexString.optional(),
    // Only for replies from these providers; absent = any provider.
    providers: z.array(z.string().min(1)).optional(),
    // suspend: no mail from that IP to that provider for durationSeconds; throttle: lower its rate
    // and connections for durationSeconds; bounce: the recipient bounces even on a 4xx; ignore:
    // no action (overrides a built-in rule).
    action: z.enum(['suspend', 'throttle', 'bounce', 'ignore']),
    durationSeconds: z.number().int().min(1).max(7 * 86400).default(3600),
    messagesPerMinute: z.number().min(0.01).max(100000).default(1),
    maxConnections: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

// Warm-up caps of one source IP (the operator writes them from its warm-up plan). Counted in
// recipients handed to receivers per UTC hour and UTC day, durably.
const CapsSchema = z
  .object({
    hourly: z.number().int().min(0).optional(),
    daily: z.number().int().min(0).optional(),
  })
  .strict();
// A warm-up plan (relay/warmup/plan.ts): the relay works out today's cap from it, the state
// below and its own per-day history, and moves to the next day's cap at UTC midnight by itself.
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a UTC date, YYYY-MM-DD').refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), 'a real date');
export const WarmupStepSchema = z
  .object({
    day: z.number().int().min(0).max(3650),
    dailyLimit: z.number().int().min(1),
    providers: z.array(z.object({ name: z.string().min(1), dailyLimit: z.number().int().min(1) }).strict()).optional(),
  })
  .strict();
export const WarmupPlanSchema = z
  .object({
    preset: z.enum(WARMUP_PRESET_NAMES).optional(),
    steps: z.array(WarmupStepSchema).min(1).max(1000).optional(),
    // Recipients an IP must send on a UTC day for it to count as a warm-up day; default half of that day's cap.
    minDailyVolume: z.number().int().min(1).optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if ((p.preset === undefined) === (p.steps === undefined)) ctx.addIssue({ code: 'custom', path: ['steps'], message: 'set exactly one of preset or steps' });
    p.steps?.forEach((s, i) => {
      const prev = p.steps![i - 1];
      if (prev && s.day <= prev.day) ctx.addIssue({ code: 'custom', path: ['steps', i, 'day'], message: 'days must be strictly increasing' });
    });
  });
// Days counted elsewhere (the operator's status, an administrator's correction): the relay adds
// the days it counts itself after countedThrough.
// `stage` and `providerStages`: the operator's warm-up decision (operator/control/warmup-loop.ts:
// advance after a healthy day, hold, step back toward a provider that pushed back). The operator
// decides, the relay enforces: with `stage` set, the relay's own day counting no longer moves the
// stage (it still counts the days, for status); without it (`mailfleet dev`, a relay without an
// operator) the plan's days decide as before. A stage past the last step means warm (no cap).
export const WarmupStateSchema = z
  .object({
    countedDays: z.number().int().min(0).default(0),
    countedThrough: isoDate.optional(),
    startedOn: isoDate.optional(),
    stage: z.number().int().min(0).max(1000).optional(),
    // This IP's stage toward one provider (the relay's MX rollup name), below `stage` after a step
    // back: that provider gets the cap the plan gives it (or the whole IP's cap) at that stage.
    providerStages: z.array(z.object({ provider: z.string().min(1), stage: z.number().int().min(0).max(1000) }).strict()).optional(),
  })
  .strict();
export const WarmupSchema = CapsSchema.extend({
  // One of delivery.egressIps; omitted when the relay binds no source address (its mail leaves
  // through NAT or an egress gateway) and the caps are those of that one address.
  address: z.union([z.ipv4(), z.ipv6()]).optional(),
  providers: z.array(CapsSchema.extend({ name: z.string().min(1) }).strict()).default([]),
  // With a plan, the daily caps are the lower of `daily` (if set) and the plan's cap for today.
  plan: WarmupPlanSchema.optional(),
  state: WarmupStateSchema.optional(),
}).strict();

// IP reputation (the operator's DNSBL monitor, a person, or this relay's own reading of replies;
// docs/reputation.md). A quarantined source IP sends nothing: its mail leaves from the relay's
// other IPs or waits in the queue (never dropped). A blocked (IP, provider) pair sends nothing
// to that provider only.
const egressRef = z.union([z.ipv4(), z.ipv6()]).optional().describe('one of delivery.egressIps; omitted when the relay binds no source address');
const isoTime = z.iso.datetime({ offset: true });
export const QuarantineSchema = z
  .object({
    address: egressRef,
    reason: z.string().min(1).max(300),
    since: isoTime.optional(),
  })
  .strict();
export const BlockedProviderSchema = z
  .object({
    address: egressRef,
    provider: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a provider name: lower-case letters, digits and dashes'),
    reason: z.string().min(1).max(300),
    since: isoTime.optional(),
  })
  .strict();
// Synchronous signal: receivers' refusals naming a blocklist or the IP's reputation, for this
// many distinct recipients within the window, block that (IP, provider) for blockSeconds.
export const BlocklistSignalSchema = z
  .object({
    // 0 turns the relay's own reaction off (the built-in throttle backoff rule still applies).
    recipients: z.number().int().min(0).max(10_000).default(3),
    windowSeconds: z.number().int().min(60).max(7 * 86400).default(3600),
    blockSeconds: z.number().int().min(60).max(7 * 86400).default(6 * 3600),
  })
  .strict();

export const ShapingSchema = z
  .object({
    providers: z.array(ProviderShapingSchema).default([]),
    backoffRules: z.array(BackoffRuleSchema).default([]),
    warmup: z.array(WarmupSchema).default([]),
    // Share of each provider's connections (and of delivery.concurrency) that only otp mail may
    // use, so a bulk backlog never holds every slot.
    otpShare: z.number().min(0).max(0.9).default(0.2),
    quarantine: z.array(QuarantineSchema).default([]),
    blockedProviders: z.array(BlockedProviderSchema).default([]),
    blocklistSignal: BlocklistSignalSchema.prefault({}),
    // When every source IP of this relay is quarantined, fail /readyz so the pool's Service sends
    // new mail (otp included) to its other relays; what this relay holds waits here. The operator
    // sets it only while another relay of the pool is healthy (else mail is accepted and waits).
    quarantineLeavesService: z.boolean().default(false),
  })
  .strict();

// Hand-off of a quarantined relay's mail to a healthy relay of its pool (docs/reputation.md
// "Hand-off"). While every source IP of this relay is quarantined and quarantineLeavesService
// says another relay is healthy, queued mail of every class goes by authenticated SMTP to a peer
// (one of the pool's other healthy relays, by its stable name), which delivers it from its own IP
// under its own caps. Our record is written only after the peer's 250 (its fsync): at least once, never lost. The same
// secret lets peers in: user "mailfleet-handoff" with the file's contents as password.
export const HandoffSchema = z
  .object({
    // Shared by the pool's relays; absent: this relay neither hands off nor accepts hand-offs.
    secretFile: filePath.optional(),
    peers: z.array(z.object({ host: z.string().min(1), port: port.default(587) }).strict()).default([]),
    // The peer's submission listener must see TLS before AUTH (its certificate is the pool's own,
    // often not for the Service name): opportunistic by default, verify when it names the host.
    tls: z.enum(['opportunistic', 'verify', 'none']).default('opportunistic'),
    maxConnections: z.number().int().min(1).max(100).default(4),
    // A peer that refuses or cannot be reached: the mail stays here and is offered again after this.
    retrySeconds: z.number().int().min(1).max(3600).default(10),
  })
  .strict();

// Intake burst control: a pool-wide token bucket and per-credential ones, checked at MAIL FROM.
const RateSchema = z
  .object({
    messagesPerSecond: z.number().min(0.001),
    burst: z.number().int().min(1).optional(),
  })
  .strict();
// Where SMTP sessions run (relay/intake/threads.ts). The queue and delivery stay on the main
// thread, which alone commits; a session thread answers 250 only after the main thread's
// durable ack for that message.
export const IntakeSchema = z
  .object({
    // Worker threads running the submission listeners' SMTP sessions (one port, shared through
    // SO_REUSEPORT). 0: every session on the main thread (one thread in all). auto: the CPUs the
    // process may use (the cgroup quota, i.e. the pod's limits.cpu, rounded up; else the host's
    // cores) minus one for the main thread. MX-role listeners always stay on the main thread.
    workerThreads: z.union([z.literal('auto'), z.number().int().min(0).max(64)]).default(WORKER_THREADS_DEFAULT),
  })
  .strict();

// The durable queue's commit (relay/queue/commit.ts, docs/queue-durability.md).
export const QueueSchema = z
  .object({
    // Like PostgreSQL's commit_delay: when a commit's turn comes while at least commitSiblings
    // other SMTP sessions are receiving DATA, wait up to this long for them to finish so one
    // write + fsync covers their messages too (relay CPU per message grows with commits per
    // message: bench/README.md "Cost per inbound connection"). Every 250 still comes only after
    // the fsync of its message; the wait adds up to this much to those 250s. Never for a batch
    // with otp mail, never at shutdown, and not with intake.workerThreads > 0 (the main thread
    // does not see the session threads' DATA). 0: no wait (a batch is written at the end of the
    // event-loop turn its DATA ended in).
    commitDelayMs: z.number().int().min(0).max(100).default(COMMIT_DELAY_MS_DEFAULT),
    // Like PostgreSQL's commit_siblings: how many other sessions must be mid-DATA for the commit
    // to wait (with fewer, waiting costs latency and saves little).
    commitSiblings: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

export const IntakeRateSchema = z
  .object({
    pool: RateSchema.optional(),
    // Applies to every authenticated user without an entry in `users`.
    perCredential: RateSchema.optional(),
    users: z.array(RateSchema.extend({ user: z.string().min(1) }).strict()).default([]),
    // tempfail: 451 4.7.1 with a retry hint; queue: accept, and hold the message back in the queue
    // until the bucket would have let it in.
    whenOver: z.enum(['tempfail', 'queue']).default('tempfail'),
  })
  .strict();

export const DeliverySchema = z
  .object({
    enabled: z.boolean().default(true),
    dnsServers: z.array(z.string().min(1)).optional(),
    routes: z.array(RouteSchema).default([]),
    egressIps: z.array(EgressIpSchema).default([]),
    maxConnectionsPerHost: z.number().int().min(1).default(10),
    maxMessagesPerConnection: z.number().int().min(1).default(100),
    connectTimeoutMs: z.number().int().min(100).default(30000),
    concurrency: z.number().int().min(1).default(50),
    // Message bytes the attempts in flight may hold in memory: past it, an attempt with a body
    // over 256 KiB waits for another to finish before reading its message (relay/delivery/body-memory.ts).
    // 16 MiB: one message at the 25 MiB size limit at a time (with its transient copies in SQLite).
    bodyMemoryBytes: z.number().int().min(1024 * 1024).default(16 * 1024 * 1024),
    bounceRules: z.array(BounceRuleSchema).default([]),
    // MX hosts that resolve to loopback, private or link-local addresses are not contacted (they
    // would let a sender reach services inside the cluster); labs and tests on 127.0.0.x set true.
    // Routes (smarthosts) are the operator's own choice and never filtered.
    allowPrivateMx: z.boolean().default(false),
  })
  .strict();

export const RelayConfigSchema = z
  .object({
    // Name said in the greeting and EHLO replies.
    hostname: hostname.default('localhost'),
    dataDir: z.string().min(1),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .prefault({}),
    http: z
      .object({
        address: z.string().default('0.0.0.0'),
        port: port.default(8080),
        // Bearer token(s) of the HTTP API (/v1/*), one per line; re-read when the file changes.
        // /healthz, /readyz and /metrics stay open. Absent: the API is open (mailfleet dev).
        apiTokenFile: filePath.optional(),
      })
      .strict()
      .prefault({}),
    listeners: z.array(ListenerSchema).min(1),
    tls: TlsFilesSchema.optional(),
    auth: z
      .object({ credentialsFile: filePath.optional() })
      .strict()
      .prefault({}),
    // Domains accepted without AUTH (the MX role): bounce and feedback-loop domains.
    acceptDomains: z.array(domainName).default([]),
    limits: LimitsSchema.prefault({}),
    intake: IntakeSchema.prefault({}),
    queue: QueueSchema.prefault({}),
    intakeRate: IntakeRateSchema.prefault({}),
    delivery: DeliverySchema.prefault({}),
    shaping: ShapingSchema.prefault({}),
    retry: RetrySchema.prefault({}),
    domains: z.array(SendingDomainSchema).default([]),
    feedback: FeedbackSchema.prefault({}),
    // Set by the operator when this relay's IP leaves its pool (or the pool is deleted): new
    // connections get 421 4.3.2 and /readyz fails (so the Service sends clients to the other
    // relays), while delivery goes on until the queue is empty; /v1/stats reports both, and the
    // operator removes the relay only then.
    draining: z.boolean().default(false),
    // Sending domains whose bulk mail is held in the queue, never attempted, until the domain is
    // taken off this list (the operator's guardrail, docs/control-loop.md). otp and transactional
    // mail of the domain keeps flowing; nothing held is lost or counted as an attempt.
    pausedDomains: z.array(domainName).default([]),
    returnPath: ReturnPathSchema.optional(),
    handoff: HandoffSchema.prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.handoff.peers.length > 0 && !cfg.handoff.secretFile) ctx.addIssue({ code: 'custom', path: ['handoff', 'secretFile'], message: 'required when handoff.peers is set (peers accept a hand-off only with the shared secret)' });
    cfg.domains.forEach((d, i) => {
      if (d.oneClickUnsubscribe && !cfg.feedback.unsubscribe) {
        ctx.addIssue({ code: 'custom', path: ['domains', i, 'oneClickUnsubscribe'], message: 'needs feedback.unsubscribe (the endpoint the links point at)' });
      }
    });
    if (cfg.feedback.unsubscribe && !cfg.feedback.unsubscribe.plainHttp && !cfg.tls && !cfg.feedback.unsubscribe.tls) {
      ctx.addIssue({ code: 'custom', path: ['feedback', 'unsubscribe'], message: 'HTTPS needs feedback.unsubscribe.tls or the top-level tls.certFile and tls.keyFile (or plainHttp behind a TLS proxy)' });
    }
    const names = new Set<string>();
    const binds = new Set<string>();
    cfg.listeners.forEach((l, i) => {
      if (names.has(l.name)) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'name'], message: `duplicate listener name "${l.name}"` });
      names.add(l.name);
      const bind = `${l.address}:${l.port}`;
      if (l.port !== 0 && binds.has(bind)) ctx.addIssue({ code: 'custom', path: ['listeners', i, 'port'], message: `another listener already binds ${bind}` });
      binds.add(bind);
      if (l.tls !== 'none' && !cfg.tls) {
        ctx.addIssue({ code: 'custom', path: ['listeners', i, 'tls'], message: `tls "${l.tls}" needs the top-level tls.certFile and tls.keyFile` });
      }
    });
    // Caps for an address mail never leaves from would silently do nothing.
    const egress = new Set(cfg.delivery.egressIps.map((e) => e.address));
    const seen = new Set<string>();
    cfg.shaping.warmup.forEach((w, i) => {
      const key = w.address ?? '(unbound)';
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['shaping', 'warmup', i, 'address'], message: `duplicate warm-up entry for ${key}` });
      seen.add(key);
      if (w.address !== undefined && !egress.has(w.address)) {
        ctx.addIssue({ code: 'custom', path: ['shaping', 'warmup', i, 'address'], message: `${w.address} is not one of delivery.egressIps` });
      }
      if (w.address === undefined && egress.size > 0) {
        ctx.addIssue({ code: 'custom', path: ['shaping', 'warmup', i, 'address'], message: 'required when delivery.egressIps is set (which of them?)' });
      }
    });
    const refs: [string, readonly { address?: string | undefined }[]][] = [['quarantine', cfg.shaping.quarantine], ['blockedProviders', cfg.shaping.blockedProviders]];
    for (const [field, entries] of refs) {
      entries.forEach((q, i) => {
        if (q.address !== undefined && !egress.has(q.address)) ctx.addIssue({ code: 'custom', path: ['shaping', field, i, 'address'], message: `${q.address} is not one of delivery.egressIps` });
        if (q.address === undefined && egress.size > 0) ctx.addIssue({ code: 'custom', path: ['shaping', field, i, 'address'], message: 'required when delivery.egressIps is set (which of them?)' });
      });
    }
  });

export type RelayConfig = z.infer<typeof RelayConfigSchema>;
export type RelayConfigInput = z.input<typeof RelayConfigSchema>;
export type ListenerConfig = RelayConfig['listeners'][number];
export type LimitsConfig = RelayConfig['limits'];
export type DeliveryConfig = RelayConfig['delivery'];
export type RetryConfig = RelayConfig['retry'];
export type ShapingConfig = RelayConfig['shaping'];
export type ProviderShaping = ShapingConfig['providers'][number];
export type BackoffRule = ShapingConfig['backoffRules'][number];
export type WarmupConfig = ShapingConfig['warmup'][number];
export type IntakeRateConfig = RelayConfig['intakeRate'];
export type QueueConfig = RelayConfig['queue'];
export type HandoffConfig = RelayConfig['handoff'];
export type FeedbackConfig = RelayConfig['feedback'];
export type ReturnPathConfig = NonNullable<RelayConfig['returnPath']>;
export type FeedbackIdConfig = z.infer<typeof FeedbackIdSchema>;
