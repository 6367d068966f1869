// SendingPool: a set of dedicated sending IPs, each served by one relay pod, plus the
// submission endpoint clients send through. Defaults come from published provider numbers
// (deliverability facts): SES review/pause thresholds, KumoMTA-style per-provider shaping.
// Over 350 lines on purpose: the whole kind in one file, each field beside its description
// (kubectl explain) and its CEL rule, is what keeps the CRD and zod from drifting apart.
import { z } from 'zod';
import { withRules } from './cel.ts';
import { cidr, dnsLabel, dnsName, ipAddress, localObjectReference, objectMeta, quantity, resourceRequirements, API_VERSION } from './common.ts';
import { conditionsField } from './conditions.ts';
import { WARMUP_PRESET_NAMES } from './warmup-presets.ts';
import { canonicalIp } from './ip.ts';
import { DEFAULT_PROVIDER_SHAPING as RELAY_PROVIDER_DEFAULTS } from '../../relay/scheduler/provider-defaults.ts';
import { ReputationOverrideSchema } from '../reputation/lists.ts';
import { IpReputationStatusFields } from '../reputation/status-schema.ts';
import { FeedbackSpecSchema } from './feedback.ts';

export const SENDINGPOOL_KIND = 'SendingPool';
export const SENDINGPOOL_PLURAL = 'sendingpools';
export const SENDINGPOOL_SINGULAR = 'sendingpool';
export const SENDINGPOOL_SHORT_NAMES = ['sp', 'spool'];

/** Pool names end up inside StatefulSet, Pod and label values (63 chars) with a per-IP suffix. */
export const MAX_POOL_NAME_LENGTH = 30;
export const MAX_IPS_PER_POOL = 64;

export const WarmupStepSchema = z
  .object({
    day: z
      .number()
      .int()
      .min(0)
      .max(365)
      .describe('Warm-up day from which dailyLimit applies (0 = the first). A warm-up day is a UTC day on which the IP sent at least minDailyVolume; see docs/shaping.md.'),
    dailyLimit: z.number().int().min(1).max(100_000_000).describe('Recipients per UTC day the IP may send from this day on.'),
    providers: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/).describe('A provider name (google, microsoft, yahoo, apple, … or one of limits.providers).'),
            dailyLimit: z.number().int().min(1).max(100_000_000).describe('Recipients per UTC day toward this provider from this day on.'),
          })
          .strict(),
      )
      .max(20)
      .optional()
      .describe('Per-provider daily caps from this day on, within dailyLimit; absent = only the IP-wide cap.'),
  })
  .strict();

export const WarmupSchema = withRules(
  z
    .object({
      preset: z.enum(WARMUP_PRESET_NAMES).optional().describe('A named curve; see docs/resources.md.'),
      steps: withRules(z.array(WarmupStepSchema).min(1).max(100), [
        {
          rule: 'self.all(a, self.exists_one(b, b.day == a.day)) && self.map(s, s.day).isSorted()',
          message: 'warmup.steps: days must be strictly increasing',
          check: (steps) => steps.every((s, i) => i === 0 || s.day > steps[i - 1]!.day),
        },
        {
          rule: 'self.all(a, self.all(b, a.day < b.day ? a.dailyLimit < b.dailyLimit : true))',
          message: 'warmup.steps: dailyLimit must be strictly increasing',
          check: (steps) => steps.every((s, i) => i === 0 || s.dailyLimit > steps[i - 1]!.dailyLimit),
        },
      ])
        .optional()
        .describe('A custom curve: from each step\'s day on, its dailyLimit applies; past the last step\'s day the IP is warm.'),
      minDailyVolume: z
        .number()
        .int()
        .min(1)
        .max(100_000_000)
        .optional()
        .describe('Recipients the IP must send on a UTC day for that day to count as a warm-up day; default half of that day\'s cap.'),
    })
    .strict()
    .describe('How this IP ramps up. Omit for an IP that is already warm.'),
  [
    {
      rule: 'has(self.preset) != has(self.steps)',
      message: 'warmup: set exactly one of preset or steps',
      check: (w) => (w.preset !== undefined) !== (w.steps !== undefined),
    },
  ],
);

export const PoolIpSchema = z
  .object({
    address: ipAddress.describe('The dedicated sending address.'),
    hostname: dnsName.describe('PTR name of the address; the relay says it in EHLO. Forward and reverse DNS must match.'),
    weight: z.number().int().min(0).max(1000).default(100).describe('Share of the pool traffic this IP gets once warm.'),
    warmup: WarmupSchema.optional(),
    nodeName: dnsName.optional().describe('hostNetwork mode: the node that holds this address; the pod is pinned to it.'),
  })
  .strict();

const MODES = ['none', 'hostNetwork', 'multus', 'ciliumEgressGateway'] as const;

export const EgressSchema = withRules(
  z
    .object({
      mode: withRules(z.enum(MODES).default('none'), [
        {
          rule: 'self == oldSelf',
          message: 'egress.mode is immutable; create a new SendingPool to change how it reaches the internet',
        },
      ]).describe(
        'none: the pod network (and its NAT) is used as is. hostNetwork: each pod runs on the node holding its IP. ' +
          'multus: each pod gets its IP on a secondary interface. ciliumEgressGateway: Cilium SNATs each pod to its IP.',
      ),
      hostNetwork: z.object({}).strict().optional().describe('Settings for hostNetwork mode (pin nodes with ips[].nodeName).'),
      multus: z
        .object({
          networkName: dnsName
            .optional()
            .describe('An existing NetworkAttachmentDefinition in the namespace; when unset the operator renders one.'),
          master: z.string().min(1).max(15).optional().describe('Host interface the macvlan/ipvlan attaches to (rendered NAD only).'),
          plugin: z.enum(['macvlan', 'ipvlan']).default('macvlan').describe('CNI plugin of the rendered NetworkAttachmentDefinition.'),
          prefixLength: z.number().int().min(1).max(128).default(24).describe('Prefix length of the egress subnet.'),
          gateway: ipAddress.optional().describe('Default gateway through the secondary interface.'),
        })
        .strict()
        .optional()
        .describe('Settings for multus mode: the secondary network each relay pod gets its address on.'),
      ciliumEgressGateway: z
        .object({
          nodeSelector: z
            .record(z.string().max(317), z.string().max(63))
            .describe('matchLabels of the gateway node(s) that hold the egress IPs.'),
          destinationCIDRs: z.array(cidr).min(1).max(32).default(['0.0.0.0/0']).describe('Destinations whose traffic leaves through the egress IP.'),
          excludedCIDRs: z.array(cidr).max(32).optional().describe('Destinations within destinationCIDRs that do not (e.g. in-cluster ranges).'),
        })
        .strict()
        .optional()
        .describe('Settings for ciliumEgressGateway mode: one CiliumEgressGatewayPolicy per IP.'),
    })
    .strict()
    .describe('How relay traffic reaches the internet from its dedicated IP. If the mode\'s add-on is missing, no relay is started (Ready=False EgressUnavailable).'),
  [
    {
      rule: "(self.mode == 'multus') == has(self.multus)",
      message: 'egress.multus must be set when mode is multus, and only then',
      fieldPath: '.multus',
      check: (e) => (e.mode === 'multus') === (e.multus !== undefined),
    },
    {
      rule: "(self.mode == 'ciliumEgressGateway') == has(self.ciliumEgressGateway)",
      message: 'egress.ciliumEgressGateway must be set when mode is ciliumEgressGateway, and only then',
      fieldPath: '.ciliumEgressGateway',
      check: (e) => (e.mode === 'ciliumEgressGateway') === (e.ciliumEgressGateway !== undefined),
    },
    {
      rule: "!has(self.hostNetwork) || self.mode == 'hostNetwork'",
      message: 'egress.hostNetwork is only allowed when mode is hostNetwork',
      fieldPath: '.hostNetwork',
      check: (e) => e.hostNetwork === undefined || e.mode === 'hostNetwork',
    },
    {
      rule: '!has(self.multus) || has(self.multus.networkName) || has(self.multus.master)',
      message: 'egress.multus: set networkName (an existing NetworkAttachmentDefinition) or master (to render one)',
      fieldPath: '.multus',
      check: (e) => e.mode !== 'multus' || e.multus?.networkName !== undefined || e.multus?.master !== undefined,
    },
  ],
);

export const SubmissionPortSchema = z
  .object({
    name: dnsLabel.max(15).describe('Port name (unique in the pool), used for the Service and container port.'),
    port: z.number().int().min(1).max(65535).describe('Port clients connect to on the submission Service; below 1024 the relay listens 10000 higher.'),
    tls: z.enum(['starttls', 'implicit', 'none']).default('starttls').describe('implicit = TLS from the first byte (465).'),
    nodePort: z.number().int().min(30000).max(32767).optional().describe('Fixed node port for NodePort and LoadBalancer Services.'),
  })
  .strict();

export const SubmissionSchema = withRules(
  z
    .object({
      serviceType: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).default('ClusterIP').describe('Type of the submission Service.'),
      serviceAnnotations: z.record(z.string().max(317), z.string()).optional().describe('Copied onto the submission Service (load-balancer settings).'),
      ports: withRules(z.array(SubmissionPortSchema).min(1).max(8), [
        {
          rule: 'self.all(a, self.exists_one(b, b.port == a.port)) && self.all(a, self.exists_one(b, b.name == a.name))',
          message: 'submission.ports: names and port numbers must be unique',
          check: (ps) => new Set(ps.map((p) => p.port)).size === ps.length && new Set(ps.map((p) => p.name)).size === ps.length,
        },
      ])
        .default([{ name: 'submission', port: 587, tls: 'starttls' }])
        .describe('Ports clients submit mail on.'),
      authSecretRef: localObjectReference
        .extend({ key: z.string().max(253).default('credentials').describe('Key of the Secret holding the credentials file.') })
        .optional()
        .describe('Secret holding the AUTH credentials file (username:scrypt-hash lines; see `mailfleet credentials`).'),
      tlsSecretRef: localObjectReference.optional().describe('kubernetes.io/tls Secret with tls.crt and tls.key.'),
      workerThreads: z
        .number()
        .int()
        .min(0)
        .max(64)
        .optional()
        .describe(
          'Worker threads each relay runs its SMTP sessions on (relay config intake.workerThreads); the queue and delivery stay on the main thread. ' +
            '0: sessions on the main thread too. Unset: with resources.limits.cpu, one per whole CPU of that limit (read from the cgroup quota at start, rounded down) less one; ' +
            'without a CPU limit, the same from resources.requests.cpu (the default 250m: 0; 2: 1). ' +
            'Each thread adds about 30 MB of memory; see docs/resources.md. Changing it restarts the relays.',
        ),
    })
    .strict(),
  [
    {
      rule: "self.ports.all(p, p.tls == 'none') || has(self.tlsSecretRef)",
      message: 'submission.tlsSecretRef is required when a port uses starttls or implicit TLS',
      fieldPath: '.tlsSecretRef',
      check: (s) => s.ports.every((p) => p.tls === 'none') || s.tlsSecretRef !== undefined,
    },
  ],
).describe('The endpoint clients send through: Service, ports, TLS and AUTH.');

export const ProviderShapingSchema = z
  .object({
    name: dnsLabel.describe('Provider name as the relay rolls MX hosts up, e.g. google, yahoo, microsoft, or default.'),
    mxSuffixes: z.array(dnsName).max(16).optional().describe('MX host suffixes that identify the provider (MX rollup).'),
    maxConnections: z.number().int().min(1).max(1000).optional().describe('Concurrent connections per IP to this provider.'),
    messagesPerConnection: z.number().int().min(1).max(10000).optional().describe('Messages sent over one connection before it is closed.'),
    messagesPerSecond: z.number().int().min(1).max(100000).optional().describe('Messages per second per IP to this provider.'),
    newConnectionsPerMinute: z.number().int().min(1).max(100000).optional().describe('New connections per minute per IP to this provider.'),
  })
  .strict();

// A pool without providers shows the relay's own defaults (KumoMTA's published limits, the built-in
// Google and Yahoo profiles and their MX suffixes): relay/scheduler/provider-defaults.ts owns them,
// and the render passes nothing for them (operator/render/relay-config.ts).
const DEFAULT_PROVIDER_SHAPING = RELAY_PROVIDER_DEFAULTS.map((p) => ({ ...p, ...(p.mxSuffixes ? { mxSuffixes: [...p.mxSuffixes] } : {}) }));

export const LimitsSchema = withRules(
  z
    .object({
      messagesPerSecond: z.number().int().min(1).max(100000).default(100).describe('Pool-wide sending rate.'),
      burst: z.number().int().min(1).max(1000000).optional().describe('Token-bucket size; defaults to messagesPerSecond.'),
      providers: withRules(z.array(ProviderShapingSchema).max(32), [
        {
          rule: 'self.all(a, self.exists_one(b, b.name == a.name))',
          message: 'limits.providers: names must be unique',
          check: (ps) => new Set(ps.map((p) => p.name)).size === ps.length,
        },
      ])
        .default(DEFAULT_PROVIDER_SHAPING)
        .describe('Per-provider shaping (MX rollup); a pool without it gets published defaults (KumoMTA).'),
    })
    .strict()
    .describe('Sending rates of the pool and per mailbox provider.'),
  [
    {
      rule: '!has(self.burst) || self.burst >= self.messagesPerSecond',
      message: 'limits.burst must be at least limits.messagesPerSecond',
      fieldPath: '.burst',
      check: (l) => l.burst === undefined || l.burst >= l.messagesPerSecond,
    },
  ],
);

// No defaults here on purpose: the relay's own config schema holds the retry defaults, and
// repeating them would let the two drift.
export const RetryPolicySchema = withRules(
  z
    .object({
      firstRetrySeconds: z.number().int().min(1).max(86400).optional().describe('Wait before the first retry of a temporary failure; the relay\'s default when unset.'),
      multiplier: z.number().min(1).max(10).optional().describe('Each retry waits this many times longer than the previous one.'),
      maxRetrySeconds: z.number().int().min(1).max(7 * 86400).optional().describe('Longest wait between two retries.'),
      maxAgeSeconds: z.number().int().min(60).max(30 * 86400).optional().describe('Give up (and bounce) after this long.'),
    })
    .strict(),
  [
    {
      rule: '!has(self.firstRetrySeconds) || !has(self.maxRetrySeconds) || self.firstRetrySeconds <= self.maxRetrySeconds',
      message: 'retry.maxRetrySeconds must be at least retry.firstRetrySeconds',
      fieldPath: '.maxRetrySeconds',
      check: (r) => r.firstRetrySeconds === undefined || r.maxRetrySeconds === undefined || r.firstRetrySeconds <= r.maxRetrySeconds,
    },
  ],
).describe('Retry schedule of temporary failures; unset fields keep the relay\'s defaults.');

export const HealthSchema = withRules(
  z
    .object({
      bounceReviewPercent: z.number().min(0).max(100).default(5).describe('Degraded at or above this bounce rate (SES: review at 5 %).'),
      bouncePausePercent: z.number().min(0).max(100).default(10).describe("Bulk mail of a sending domain pauses at or above this hard-bounce rate (SES: 10 %); otp and transactional mail keep flowing."),
      complaintReviewPercent: z.number().min(0).max(100).default(0.1).describe('SES: review at 0.1 %.'),
      complaintPausePercent: z
        .number()
        .min(0)
        .max(100)
        .default(0.3)
        .describe("Bulk mail of a sending domain pauses at or above this complaint rate (Gmail and Yahoo's bulk-sender line: 0.3 %; SES pauses at 0.5 %)."),
      minimumVolume: z
        .number()
        .int()
        .min(1)
        .default(500)
        .describe('Rates are judged only over at least this many messages (a representative volume, as SES does).'),
      autoResumeAfterHours: z
        .number()
        .min(1)
        .max(24 * 30)
        .optional()
        .describe('Resume a paused domain by itself after this many hours (its rates are then judged afresh). Unset: only a person resumes, with the annotation mailfleet.io/resume.'),
    })
    .strict(),
  [
    {
      rule: 'self.bounceReviewPercent < self.bouncePausePercent',
      message: 'health.bounceReviewPercent must be below health.bouncePausePercent',
      fieldPath: '.bounceReviewPercent',
      check: (h) => h.bounceReviewPercent < h.bouncePausePercent,
    },
    {
      rule: 'self.complaintReviewPercent < self.complaintPausePercent',
      message: 'health.complaintReviewPercent must be below health.complaintPausePercent',
      fieldPath: '.complaintReviewPercent',
      check: (h) => h.complaintReviewPercent < h.complaintPausePercent,
    },
  ],
).describe('Bounce and complaint thresholds at which the pool is Degraded or pauses (SES\'s published numbers by default).');

export const StorageSchema = z
  .object({
    size: quantity.default('10Gi').describe('Size of each relay pod queue volume.'),
    storageClassName: z.string().max(253).optional().describe('StorageClass of the queue volumes; the cluster default when unset.'),
  })
  .strict()
  .describe('The queue volume of each relay (kept when an IP or the pool is removed).');

export const SendingPoolSpecSchema = withRules(
  z
    .object({
      ips: withRules(z.array(PoolIpSchema).min(1).max(MAX_IPS_PER_POOL), [
        {
          // Addresses, not strings: 2001:db8::1 and 2001:DB8:0::1 are one IP (the CEL IP library's
          // equality; Kubernetes 1.31+ has it in CRD rules).
          rule: 'self.all(a, self.exists_one(b, isIP(a.address) && isIP(b.address) ? ip(a.address) == ip(b.address) : a.address == b.address))',
          message: 'ips: each address may appear only once in a pool (two spellings of one IPv6 address are one address)',
          check: (ips) => new Set(ips.map((i) => canonicalIp(i.address))).size === ips.length,
        },
      ]).describe('The dedicated sending IPs; each gets its own relay. Removing one drains its relay first (docs/operator.md).'),
      egress: EgressSchema.prefault({ mode: 'none' }),
      // Required: the default ports use STARTTLS, which needs tlsSecretRef.
      submission: SubmissionSchema,
      limits: LimitsSchema.prefault({}),
      retry: RetryPolicySchema.optional(),
      health: HealthSchema.prefault({}),
      reputation: ReputationOverrideSchema.optional().describe("DNSBL monitoring of this pool's IPs, over the cluster default (chart values reputation); see docs/reputation.md."),
      feedback: FeedbackSpecSchema.optional(),
      storage: StorageSchema.prefault({}),
      resources: resourceRequirements
        .default({ requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } })
        .describe('Resources of each relay container.'),
      image: z.string().min(1).max(512).optional().describe('Relay image; defaults to the image the operator was released with.'),
    })
    .strict(),
  [
    {
      rule: "self.egress.mode != 'hostNetwork' || self.ips.all(i, has(i.nodeName))",
      message: 'ips[].nodeName is required for every IP when egress.mode is hostNetwork',
      fieldPath: '.ips',
      check: (s) => s.egress.mode !== 'hostNetwork' || s.ips.every((i) => i.nodeName !== undefined),
    },
    {
      // Only named nodes are compared, so a missing nodeName reports the rule above alone.
      rule: "self.egress.mode != 'hostNetwork' || self.ips.all(a, !has(a.nodeName) || self.ips.exists_one(b, has(b.nodeName) && b.nodeName == a.nodeName))",
      message: 'ips[].nodeName must differ between IPs in hostNetwork mode (two relays on one node would share its ports)',
      fieldPath: '.ips',
      check: (s) => {
        const named = s.ips.flatMap((i) => (i.nodeName === undefined ? [] : [i.nodeName]));
        return s.egress.mode !== 'hostNetwork' || new Set(named).size === named.length;
      },
    },
  ],
);

export const IP_STATES = ['Pending', 'WarmingUp', 'Ready', 'Paused', 'Failed', 'Draining', 'Conflict', 'Quarantined'] as const;
export const RELAY_POD_STATES = ['Ready', 'NotReady', 'OutOfService', 'NotCreated'] as const;

export const PoolIpStatusSchema = z
  .object({
    address: z.string().max(45).describe('The IP, as spelled in spec.ips (or as it was, while its relay drains).'),
    pod: z.string().max(253).optional().describe('The relay pod of this IP.'),
    state: z
      .enum(IP_STATES)
      .describe(
        'Derived by the SendingPool controller alone, first match wins: Conflict: another pool claimed this address first. ' +
          'Draining: removed, delivering what it holds. Quarantined: on a quarantine blocklist or quarantined by annotation ' +
          '(see quarantine; shown whatever the relay pod does, see relayPod). Pending: relay pod not Ready. ' +
          'Paused: held by the health loop. WarmingUp: sending under a warm-up cap. Ready: sending. Failed.',
      ),
    relayPod: z
      .enum(RELAY_POD_STATES)
      .optional()
      .describe(
        'The IP\'s relay pod as Kubernetes sees it, apart from state: Ready (in the pool\'s Service); NotReady; ' +
          'OutOfService (not Ready on purpose: a quarantined relay leaves the Service while another IP of the pool is healthy); ' +
          'NotCreated (no StatefulSet yet). The NOT READY column counts NotReady and NotCreated.',
      ),
    warmupStartedAt: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('Start (00:00 UTC) of the first day this IP\'s relay sent mail under its plan, as the relay reports it; absent while it never has.'),
    warmupStage: z.number().int().min(0).optional().describe('Index into the IP warm-up steps in force; absent when the IP has no warm-up.'),
    warmupDay: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Warm-up days counted so far: UTC days on which the IP sent at least the minimum volume (docs/shaping.md); not calendar days.'),
    warmupCountedThrough: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional()
      .describe('UTC date through which warmupDay was counted (from the relay\'s report); the relay adds the days after it.'),
    warmupDecidedStage: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'The stage the operator\'s warm-up loop decided from how the mail was received (docs/control-loop.md), rendered into the relay config; ' +
          'the relay enforces it. warmupStage is what the relay reports enforcing: the two differ only until the relay runs the new config. ' +
          'Past the last step: warm.',
      ),
    warmupDecidedDay: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Warm-up days the operator counted: healthy days (docs/control-loop.md); warmupDecidedStage is the plan\'s stage for this many. Rendered into the relay config.'),
    warmupProviderStages: z
      .array(
        z
          .object({
            provider: z.string().max(63).describe('A provider as the relay rolls MX hosts up (docs/shaping.md), e.g. "outlook".'),
            stage: z.number().int().min(0).describe('This IP\'s stage toward that provider: the provider gets the cap the plan gives it at that stage.'),
          })
          .strict(),
      )
      .max(64)
      .optional()
      .describe('Providers this IP was stepped back toward, and its stage toward each (below warmupDecidedStage); rendered into the relay config.'),
    quotaToday: z.number().int().min(0).optional().describe('Recipients this IP may send today (UTC); absent = no warm-up cap.'),
    sentToday: z.number().int().min(0).optional().describe('Recipients this IP sent today (UTC), as its relay last reported.'),
    configVersion: z.string().max(64).optional().describe('Version (hash) of the relay config rendered for this IP; its relay reports the one it runs in /v1/stats.'),
    bounceRate: z.string().max(16).optional().describe('Hard bounces / final outcomes over 24 h, e.g. "1.2 %".'),
    deferralRate: z.string().max(16).optional().describe('Deferred / attempted over 24 h.'),
    complaintRate: z.string().max(16).optional().describe('Complaints / delivered over 24 h.'),
    relay: z.string().max(1024).optional().describe('Whether the operator could read this relay\'s stats, and if not why.'),
    lastDecision: z.string().max(1024).optional().describe('The control loop\'s last decision about this IP and why, with the numbers.'),
    queued: z.number().int().min(0).optional().describe('Draining: recipients its relay still holds (queued and in flight), as it last reported.'),
    message: z.string().max(1024).optional().describe('Why the IP is in its state.'),
    ...IpReputationStatusFields,
  })
  .strict();

export const SendingPoolStatusSchema = z
  .object({
    observedGeneration: z.number().int().min(0).optional().describe('The metadata.generation this status was computed for.'),
    conditions: conditionsField.optional(),
    ips: z
      .array(PoolIpStatusSchema)
      .max(MAX_IPS_PER_POOL)
      .optional()
      .describe('One entry per IP of the spec, then one per relay still draining.')
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['address'] }),
    readyIPs: z.number().int().min(0).optional().describe('IPs whose relay is Ready and sending (state Ready or WarmingUp; a quarantined IP sends nothing).'),
    totalIPs: z.number().int().min(0).optional().describe('IPs the pool serves (draining and contested ones excluded).'),
    notReadyRelays: z.number().int().min(0).optional().describe('Relays of served IPs whose pod is not Ready, except a quarantined relay out of the Service on purpose (relayPod OutOfService): the NOT READY column.'),
    listedIPs: z.number().int().min(0).optional().describe('IPs listed on at least one DNSBL (any action): the LISTED column.'),
    // Pre-formatted for printer columns, which can only show one field each.
    summary: z
      .object({
        ips: z.string().max(32).optional().describe('IPs sending (Ready or WarmingUp) / IPs served, e.g. 2/3'),
        warmup: z.string().max(64).optional().describe('IPs a warm-up plan caps today (quarantined ones excluded), e.g. "2 warming: 500-2000/day" or "done"'),
        bounceRate: z.string().max(16).optional().describe('Measured bounce rate, e.g. 1.2%.'),
        complaintRate: z.string().max(16).optional().describe('Measured complaint rate, e.g. 0.04%.'),
        attention: z
          .string()
          .max(256)
          .optional()
          .describe('The sending domains and IPs that need a person, and why (e.g. "example.com PausedHighBounces (12.0 % bounces); 192.0.2.11 Quarantined (spamhaus-zen 127.0.0.2); 192.0.2.10 SteppedBack (stage 2; outlook stage 1)"); absent when none.'),
      })
      .strict()
      .optional()
      .describe('Pre-formatted values of the printer columns.'),
    configHash: z.string().max(128).optional().describe('Hash of the rendered relay config the pods run.'),
  })
  .strict()
  .describe('What the operator observed: conditions, per-IP state, counts.');

export const SendingPoolSchema = withRules(
  z
    .object({
      apiVersion: z.literal(API_VERSION),
      kind: z.literal(SENDINGPOOL_KIND),
      metadata: objectMeta,
      spec: SendingPoolSpecSchema.describe('The pool you want: its IPs, egress, submission endpoint, limits.'),
      status: SendingPoolStatusSchema.optional(),
    })
    .strict(),
  [
    {
      rule: `size(self.metadata.name) <= ${MAX_POOL_NAME_LENGTH}`,
      message: `metadata.name: a SendingPool name may have at most ${MAX_POOL_NAME_LENGTH} characters (it prefixes pod and StatefulSet names)`,
      check: (p) => p.metadata.name.length <= MAX_POOL_NAME_LENGTH,
      path: ['metadata', 'name'],
    },
  ],
);

export type SendingPool = z.infer<typeof SendingPoolSchema>;
export type SendingPoolInput = z.input<typeof SendingPoolSchema>;
export type SendingPoolSpec = z.infer<typeof SendingPoolSpecSchema>;
export type SendingPoolStatus = z.infer<typeof SendingPoolStatusSchema>;
export type PoolIp = z.infer<typeof PoolIpSchema>;
export type PoolIpStatus = z.infer<typeof PoolIpStatusSchema>;
export type EgressMode = (typeof MODES)[number];
export const EGRESS_MODES = MODES;

/** Condition types a SendingPool reports. */
export const POOL_CONDITIONS = { Ready: 'Ready', Reconciled: 'Reconciled', Degraded: 'Degraded' } as const;
