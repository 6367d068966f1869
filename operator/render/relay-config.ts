// SendingPool (+ its MailDomains) → the relay's own config file. The shape is the relay's
// contract (relay/config/schema.ts); rendering validates against it, so a pool the relay would
// refuse is caught here, with the field named, instead of in a crash-looping pod.
import { relayHandoff, relayReputationShaping } from '../reputation/status.ts';
import { stringify } from 'yaml';
import { RelayConfigSchema, type RelayConfigInput } from '../../relay/config/schema.ts';
import type { MailDomain, SendingPool, PoolIp, DkimAlgorithm } from '../api/index.ts';
import { describeZodIssues } from '../api/index.ts';
import { dkimSecretName, DKIM_PRIVATE_KEY } from './dkim.ts';
import { relayWarmupEntry } from './warmup.ts';
import { headlessServiceName, relayName, shortHash } from './names.ts';
import { renderDomainFeedback, renderFeedbackConfig } from './feedback.ts';
import { configVersion } from '../../relay/config/version.ts';
import { restartSignature } from '../../relay/config/live.ts';
import { isDefaultProviderShaping } from '../../relay/scheduler/provider-defaults.ts';
import { bounceRelayConfig } from './bounce-mx.ts';

/** Where the pod template mounts things; the relay config refers to the same paths. */
export const PATHS = {
  // A directory of its own, mounted without subPath: the kubelet updates it in place (the
  // `..data` symlink swap) and the relay applies the new version live (docs/live-config.md).
  configDir: '/etc/mailfleet/config',
  configFile: '/etc/mailfleet/config/relay.yaml',
  dataDir: '/var/lib/mailfleet',
  tlsDir: '/etc/mailfleet/tls',
  authDir: '/etc/mailfleet/auth',
  dkimDir: '/etc/mailfleet/dkim',
  apiTokenDir: '/etc/mailfleet/api',
  tmpDir: '/tmp',
} as const;

export const HTTP_PORT = 8080;

/**
 * Port the relay listens on for a Service port. Ports below 1024 move up by 10000 so the relay
 * runs without CAP_NET_BIND_SERVICE (restricted pod security drops every capability); the
 * Service maps the well-known port back.
 */
export function containerPort(servicePort: number): number {
  return servicePort < 1024 ? servicePort + 10000 : servicePort;
}

export class RenderError extends Error {
  readonly problems: string[];
  constructor(subject: string, problems: string[]) {
    super(`${subject}: ${problems.join('; ')}`);
    this.name = 'RenderError';
    this.problems = problems;
  }
}

export interface SigningKey {
  selector: string;
  algorithm: DkimAlgorithm;
  secretName: string;
}

/** Keys a domain signs with: its Active selectors from status, or the spec selector before the first status write. */
export function signingKeys(domain: MailDomain): SigningKey[] {
  const active = (domain.status?.selectors ?? []).filter((s) => s.state === 'Active');
  if (active.length > 0) return active.map((s) => ({ selector: s.selector, algorithm: s.algorithm, secretName: s.secretName }));
  const selector = domain.spec.dkim.selector;
  return [{ selector, algorithm: domain.spec.dkim.algorithm, secretName: dkimSecretName(domain, selector) }];
}

export const dkimKeyPath = (secretName: string): string => `${PATHS.dkimDir}/${secretName}/${DKIM_PRIVATE_KEY}`;

export function returnPathDomain(domain: MailDomain): string {
  return `${domain.spec.returnPath.subdomain}.${domain.spec.domain}`;
}

/** The MailDomains that belong to this pool (same namespace, poolRef names it), in a stable order. */
export function domainsOfPool(pool: SendingPool, domains: readonly MailDomain[]): MailDomain[] {
  return domains
    .filter((d) => d.spec.poolRef.name === pool.metadata.name && (d.metadata.namespace ?? '') === (pool.metadata.namespace ?? ''))
    .filter((d) => !d.metadata.deletionTimestamp)
    .toSorted((a, b) => a.spec.domain.localeCompare(b.spec.domain));
}

// Only these modes put the address on an interface inside the pod, so only they may bind it;
// with ciliumEgressGateway the gateway node SNATs, and binding would fail (EADDRNOTAVAIL).
const BINDS_SOURCE = new Set(['hostNetwork', 'multus']);

/**
 * The relay config of the pod that sends from `address` (or, without it, a pool-wide config
 * using every IP, for a single relay outside Kubernetes). Returns the input shape (defaults left
 * to the relay) after checking that the relay's schema accepts it.
 */
export function renderRelayConfig(pool: SendingPool, domains: readonly MailDomain[], address?: string): RelayConfigInput {
  let ips: PoolIp[] = pool.spec.ips;
  if (address !== undefined) {
    const ip = pool.spec.ips.find((i) => i.address === address);
    if (!ip) throw new RenderError(`SendingPool ${pool.metadata.name}`, [`spec.ips has no address ${address}`]);
    ips = [ip];
  }
  const sub = pool.spec.submission;
  const limits = pool.spec.limits;
  const own = domainsOfPool(pool, domains);
  // The submission Service spreads clients over every relay of the pool, so each relay admits
  // its share of the pool-wide rate.
  const relays = Math.max(1, pool.spec.ips.length);
  const intakeBurst = Math.max(1, Math.ceil((limits.burst ?? limits.messagesPerSecond) / relays));

  // A quarantined IP (status.ips[].quarantine, written by the reputation loop) sends nothing.
  const reputation = address !== undefined ? relayReputationShaping(pool, address, BINDS_SOURCE.has(pool.spec.egress.mode)) : undefined;
  const bounce = bounceRelayConfig(pool);
  const config: RelayConfigInput = {
    hostname: ips[0]!.hostname,
    dataDir: PATHS.dataDir,
    http: { address: '0.0.0.0', port: HTTP_PORT, apiTokenFile: `${PATHS.apiTokenDir}/token` },
    listeners: [...sub.ports.map((p) => ({
      name: p.name,
      role: 'submission' as const,
      address: '0.0.0.0',
      port: containerPort(p.port),
      tls: p.tls,
      // The greeting delay catches early-talking spam bots on a public MX; submission clients authenticate.
      greetingDelayMs: 0,
    })), bounce.listener],
    ...(sub.tlsSecretRef ? { tls: { certFile: `${PATHS.tlsDir}/tls.crt`, keyFile: `${PATHS.tlsDir}/tls.key` } } : {}),
    auth: sub.authSecretRef ? { credentialsFile: `${PATHS.authDir}/${sub.authSecretRef.key}` } : {},
    acceptDomains: own.map(returnPathDomain),
    returnPath: bounce.returnPath,
    delivery: {
      egressIps: BINDS_SOURCE.has(pool.spec.egress.mode)
        ? ips.map((i) => ({ address: i.address, hostname: i.hostname, weight: i.weight }))
        : [],
    },
    // Per (source IP, provider) shaping: SendingPool limits.providers map one to one, unless they are
    // the relay's own defaults (the CRD's default): then nothing, and the relay's defaults apply.
    // Warm-up: the plan and the carried state; the relay works out each day's cap itself.
    shaping: {
      // A relay without a bound source address has one (unbound) source: only a one-IP config can say whose plan it is.
      warmup: (BINDS_SOURCE.has(pool.spec.egress.mode) || ips.length === 1 ? ips : []).flatMap((ip) => {
        const e = relayWarmupEntry(ip, pool.status?.ips?.find((s) => s.address === ip.address), BINDS_SOURCE.has(pool.spec.egress.mode));
        return e ? [e] : [];
      }),
      providers: isDefaultProviderShaping(limits.providers) ? [] : limits.providers.map((p) => ({
        name: p.name,
        mxSuffixes: p.mxSuffixes ?? [],
        ...(p.maxConnections !== undefined ? { maxConnections: p.maxConnections } : {}),
        ...(p.newConnectionsPerMinute !== undefined ? { newConnectionsPerMinute: p.newConnectionsPerMinute } : {}),
        ...(p.messagesPerConnection !== undefined ? { messagesPerConnection: p.messagesPerConnection } : {}),
        ...(p.messagesPerSecond !== undefined ? { messagesPerSecond: p.messagesPerSecond } : {}),
      })),
      ...(reputation && reputation.quarantine.length > 0 ? reputation : {}),
    },
    intake: { workerThreads: sessionThreads(pool) },
    intakeRate: { pool: { messagesPerSecond: limits.messagesPerSecond / relays, burst: intakeBurst } },
    ...(pool.spec.retry ? { retry: { ...pool.spec.retry } } : {}),
    domains: own.map((d) => ({
      domain: d.spec.domain,
      returnPathDomain: returnPathDomain(d),
      dkim: signingKeys(d).map((k) => ({
        selector: k.selector,
        algorithm: k.algorithm === 'ed25519' ? ('ed25519-sha256' as const) : ('rsa-sha256' as const),
        keyFile: dkimKeyPath(k.secretName),
      })),
      ...renderDomainFeedback(d),
    })),
    feedback: renderFeedbackConfig(pool),
  };

  // A quarantined relay hands its mail to the pool's healthy relays; every relay accepts it then.
  // Each peer by its stable name under the pool's headless Service, on the container's port.
  const ns = pool.metadata.namespace ?? 'default';
  const handoff = address !== undefined
    ? relayHandoff(pool, address, `${PATHS.apiTokenDir}/token`, (peer, servicePort) => ({ host: `${relayName(pool, peer)}-0.${headlessServiceName(pool)}.${ns}.svc`, port: containerPort(servicePort) }))
    : undefined;
  if (handoff) config.handoff = handoff;

  // The control loop's domain guardrail (operator/observe): bulk of a Paused domain is held.
  const paused = own.filter((d) => d.status?.health?.state === 'Paused').map((d) => d.spec.domain);
  if (paused.length > 0) config.pausedDomains = paused;

  const checked = RelayConfigSchema.safeParse(config);
  if (!checked.success) {
    throw new RenderError(
      `SendingPool ${pool.metadata.name}: the rendered relay config is invalid`,
      describeZodIssues(checked.error).map((p) => `relay.yaml ${p}`),
    );
  }
  return config;
}

export function relayConfigYaml(config: RelayConfigInput): string {
  return '# Rendered by mailfleet-operator from a SendingPool; edits are overwritten.\n' + stringify(config, { lineWidth: 0 });
}

/** One IP's relay config as the ConfigMap holds it, with its version and what a pod restart is needed for. */
export interface RenderedRelayConfig {
  yaml: string;
  /** relay/config/version.ts of the YAML: the version the relay reports once it runs it. */
  version: string;
  /** Hash of the restart-only fields (relay/config/live.ts): the pod template carries it, so only they restart the pod. */
  restartHash: string;
}

/** `overrides`: set on top of the rendered config (the drain's `draining: true`, operator/render/pool.ts). */
export function renderRelayConfigFile(pool: SendingPool, domains: readonly MailDomain[], address: string, overrides: Partial<RelayConfigInput> = {}): RenderedRelayConfig {
  const input = { ...renderRelayConfig(pool, domains, address), ...overrides };
  const yaml = relayConfigYaml(input);
  return { yaml, version: configVersion(yaml), restartHash: shortHash(restartSignature(RelayConfigSchema.parse(input))) };
}

/** A Kubernetes CPU quantity in CPUs ("250m" 0.25, "2" 2, 1.5); undefined when absent or not a CPU amount. */
export function cpusOf(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(q.trim());
  return m ? Number(m[1]) / (m[2] ? 1000 : 1) : undefined;
}

/**
 * intake.workerThreads for a pool's relays: the pool's own number; else 'auto' when the container
 * has a CPU limit (the relay reads that quota from its cgroup at start); else, with no limit, the
 * same count from the whole CPUs it requests (250m and 1500m: 0), since 'auto' without a quota would count the
 * node's cores. Measured (bench/README.md "Session threads by default"): on 2 CPUs one session
 * thread takes 28 % more mail at 4–10 % less CPU per message; held to 1 CPU it takes 1–10 % less
 * mail than none, so a pod held to a small request keeps its sessions on the main thread.
 */
export function sessionThreads(pool: SendingPool): number | 'auto' {
  const set = pool.spec.submission.workerThreads;
  if (set !== undefined) return set;
  if (cpusOf(pool.spec.resources.limits?.cpu) !== undefined) return 'auto';
  const requested = cpusOf(pool.spec.resources.requests?.cpu);
  return requested === undefined ? 'auto' : Math.max(0, Math.floor(requested + 1e-9) - 1);
}
