// SendingPool → its desired children. Pure: the same pool and domains always give the same
// objects (no clocks, no randomness), so server-side apply of an unchanged pool is a no-op.
import { apiTokenSecretName } from './names.ts';
import type { MailDomain, PoolIp, SendingPool } from '../api/index.ts';
import {
  ANNOTATION_ADDRESS,
  ANNOTATION_CONFIG_HASH,
  ANNOTATION_IP_SPEC,
  MULTUS_NETWORKS_ANNOTATION,
  configKey,
  configMapName,
  headlessServiceName,
  poolLabels,
  poolSelector,
  relayLabels,
  relayName,
  shortHash,
  submissionServiceName,
  LABEL_IP,
  type RenderedObject,
} from './names.ts';
import { bounceStatefulSetParts, bounceNetworkPolicyRule, renderBounceServices } from './bounce-mx.ts';
import { ANNOTATION_TEMPLATE_HASH, templateHash } from './rollout.ts';
import type { NetworkPolicyPeer } from './scrape-peers.ts';
import { childMeta as meta, multusAnnotation, renderCiliumEgressGatewayPolicies, renderNetworkAttachmentDefinition } from './egress.ts';
import { feedbackVolumes, unsubscribeContainerPorts, unsubscribePolicyPorts, unsubscribeServicePorts } from './feedback.ts';
import { PATHS, HTTP_PORT, RenderError, containerPort, domainsOfPool, renderRelayConfigFile, signingKeys, type RenderedRelayConfig } from './relay-config.ts';

export const DEFAULT_RELAY_IMAGE = 'ghcr.io/mailfleet/mailfleet:0.1.0';
/** UID/GID of the relay process; any non-root id works, a fixed one makes fsGroup ownership of the queue predictable. */
export const RELAY_UID = 10001;

export interface RenderOptions {
  /** Relay image when spec.image is unset (the operator passes the image it was released with). */
  defaultImage?: string;
  /** Namespace of the operator, allowed to scrape the relays' stats port through the NetworkPolicy. */
  operatorNamespace?: string;
  /** Others allowed to the stats/metrics port (Prometheus), from the chart's relayMetrics.allowFrom. */
  metricsScrapers?: readonly NetworkPolicyPeer[];
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

// The apiserver refuses ConfigMaps over 1 MiB; leave room for metadata.
export const MAX_CONFIGMAP_DATA_BYTES = 1_000_000;

/**
 * Each IP's relay.yaml, and each draining relay's (an IP gone from spec.ips, or every IP of a pool
 * being deleted): its config as before, plus `draining: true` (applied live by the relay: no
 * restart). Rendered once per pool render: the ConfigMap holds it, and each StatefulSet's pod
 * template carries the hash of its restart-only part.
 */
export function renderRelayConfigs(pool: SendingPool, domains: readonly MailDomain[], draining: readonly PoolIp[] = []): Map<string, RenderedRelayConfig> {
  const configs = new Map(pool.spec.ips.map((ip) => [ip.address, renderRelayConfigFile(pool, domains, ip.address)]));
  for (const ip of draining) {
    const withIp = { ...pool, spec: { ...pool.spec, ips: [...pool.spec.ips, ip] } };
    configs.set(ip.address, renderRelayConfigFile(withIp, domains, ip.address, { draining: true }));
  }
  return configs;
}

export function renderConfigMap(pool: SendingPool, domains: readonly MailDomain[], configs = renderRelayConfigs(pool, domains)): RenderedObject {
  const data: Record<string, string> = {};
  for (const [address, config] of configs) data[configKey(address)] = config.yaml;
  // Every IP's file repeats the pool's domains, so the size grows with IPs × domains.
  const size = Object.entries(data).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (size > MAX_CONFIGMAP_DATA_BYTES) {
    throw new RenderError(`SendingPool ${pool.metadata.name}`, [
      `the relay config for ${pool.spec.ips.length} IPs and ${domainsOfPool(pool, domains).length} MailDomains is ${size} bytes, ` +
        `over the 1 MiB ConfigMap limit: spread the MailDomains over more SendingPools`,
    ]);
  }
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(pool, configMapName(pool), poolLabels(pool, 'config')), data };
}

function volumes(pool: SendingPool, domains: readonly MailDomain[], ip: PoolIp) {
  const sub = pool.spec.submission;
  const vols: Record<string, unknown>[] = [
    { name: 'config', configMap: { name: configMapName(pool), items: [{ key: configKey(ip.address), path: 'relay.yaml' }] } },
    { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
  ];
  const mounts: Record<string, unknown>[] = [
    // A directory of its own and no subPath: subPath files never see ConfigMap updates, and the
    // relay applies a new version live (docs/live-config.md). The other mounts (tls, auth, dkim)
    // sit beside it under /etc/mailfleet, not inside it.
    { name: 'config', mountPath: PATHS.configDir, readOnly: true },
    { name: 'queue', mountPath: PATHS.dataDir },
    { name: 'tmp', mountPath: PATHS.tmpDir },
  ];
  // The HTTP API token (operator/observe/token.ts: the operator creates the Secret). A Secret
  // volume, not subPath: a rotated token reaches the running relay, which re-reads the file.
  vols.push({ name: 'api-token', secret: { secretName: apiTokenSecretName(pool), defaultMode: 0o440 } });
  mounts.push({ name: 'api-token', mountPath: PATHS.apiTokenDir, readOnly: true });
  if (sub.tlsSecretRef) {
    vols.push({ name: 'tls', secret: { secretName: sub.tlsSecretRef.name, defaultMode: 0o440 } });
    mounts.push({ name: 'tls', mountPath: PATHS.tlsDir, readOnly: true });
  }
  if (sub.authSecretRef) {
    vols.push({ name: 'auth', secret: { secretName: sub.authSecretRef.name, defaultMode: 0o440 } });
    mounts.push({ name: 'auth', mountPath: PATHS.authDir, readOnly: true });
  }
  // One projected volume for every DKIM key; `optional` lets the pod start before a new domain's
  // key exists (the relay re-reads a missing key file on the next message).
  const keys = domainsOfPool(pool, domains).flatMap(signingKeys);
  if (keys.length > 0) {
    vols.push({
      name: 'dkim',
      projected: {
        defaultMode: 0o440,
        sources: keys.map((k) => ({
          secret: { name: k.secretName, optional: true, items: [{ key: 'private.pem', path: `${k.secretName}/private.pem` }] },
        })),
      },
    });
    mounts.push({ name: 'dkim', mountPath: PATHS.dkimDir, readOnly: true });
  }
  const fb = feedbackVolumes(pool, domainsOfPool(pool, domains));
  vols.push(...fb.vols);
  mounts.push(...fb.mounts);
  return { vols, mounts };
}

export function renderStatefulSet(
  pool: SendingPool,
  domains: readonly MailDomain[],
  ip: PoolIp,
  opts: RenderOptions = {},
  config: RenderedRelayConfig = renderRelayConfigFile(pool, domains, ip.address),
): RenderedObject {
  const name = relayName(pool, ip.address);
  const labels = relayLabels(pool, ip.address);
  const mode = pool.spec.egress.mode;
  const hostNetwork = mode === 'hostNetwork';
  const podAnnotations: Record<string, string> = {
    // Only fields the relay reads once at start restart it (relay/config/live.ts); everything
    // else reaches the running relay through the mounted file.
    [ANNOTATION_CONFIG_HASH]: config.restartHash,
    [ANNOTATION_ADDRESS]: ip.address,
  };
  if (mode === 'multus') podAnnotations[MULTUS_NETWORKS_ANNOTATION] = multusAnnotation(pool, ip);
  const { vols, mounts } = volumes(pool, domains, ip);
  const ports = [
    ...pool.spec.submission.ports.map((p) => ({
      name: p.name,
      containerPort: containerPort(p.port),
      protocol: 'TCP',
      ...(hostNetwork ? { hostPort: containerPort(p.port) } : {}),
    })),
    { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP', ...(hostNetwork ? { hostPort: HTTP_PORT } : {}) },
    ...unsubscribeContainerPorts(pool, hostNetwork),
  ];
  // The bounce MX (operator/render/bounce-mx.ts): its port, the return-path keys, multus's sysctl.
  const bounce = bounceStatefulSetParts(pool);
  ports.push(bounce.port as (typeof ports)[number]);
  vols.push(bounce.volume);
  mounts.push(bounce.mount);

  const podSpec: Record<string, unknown> = {
    // No API access from relay pods.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    // Long enough for the relay to finish the SMTP transactions in flight; queued mail is durable.
    terminationGracePeriodSeconds: 60,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RELAY_UID,
      runAsGroup: RELAY_UID,
      fsGroup: RELAY_UID,
      fsGroupChangePolicy: 'OnRootMismatch',
      seccompProfile: { type: 'RuntimeDefault' },
      ...(bounce.sysctls.length > 0 ? { sysctls: bounce.sysctls } : {}),
    },
    containers: [
      {
        name: 'relay',
        image: pool.spec.image ?? opts.defaultImage ?? DEFAULT_RELAY_IMAGE,
        ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
        command: ['mailfleet'],
        args: ['relay', '--config', PATHS.configFile],
        ports,
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        resources: pool.spec.resources,
        readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 3 },
        livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6 },
        startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
        volumeMounts: mounts,
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
      },
    ],
    volumes: vols,
  };
  if (hostNetwork) {
    // The relay binds the node's address as its source, so it must run on that node, in its
    // network namespace. Everything else stays restricted; see docs/resources.md.
    podSpec.hostNetwork = true;
    podSpec.dnsPolicy = 'ClusterFirstWithHostNet';
    podSpec.nodeSelector = { 'kubernetes.io/hostname': ip.nodeName! };
  }

  const storage = pool.spec.storage;
  const template = { metadata: { labels, annotations: podAnnotations }, spec: podSpec };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    // The template's hash tells the operator which StatefulSets a change restarts (operator/render/rollout.ts).
    metadata: meta(pool, name, labels, {
      [ANNOTATION_ADDRESS]: ip.address,
      [ANNOTATION_TEMPLATE_HASH]: templateHash(template),
      // What it takes to render this relay again once spec.ips no longer lists it (its drain).
      [ANNOTATION_IP_SPEC]: JSON.stringify({ address: ip.address, hostname: ip.hostname, weight: ip.weight, ...(ip.nodeName ? { nodeName: ip.nodeName } : {}) }),
    }),
    spec: {
      // One StatefulSet per IP (see docs/resources.md): a per-pod Multus static-IP annotation
      // cannot vary by ordinal inside one template, and each IP's queue volume must follow its IP.
      replicas: 1,
      serviceName: headlessServiceName(pool),
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: { ...poolSelector(pool), [LABEL_IP]: labels[LABEL_IP]! } },
      updateStrategy: { type: 'RollingUpdate' },
      // Queued mail outlives the pool: deleting a SendingPool must not delete undelivered messages.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
      template,
      volumeClaimTemplates: [
        {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name: 'queue', labels: poolLabels(pool, 'queue') },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(storage.storageClassName ? { storageClassName: storage.storageClassName } : {}),
            resources: { requests: { storage: storage.size } },
          },
        },
      ],
    },
  };
}

export function renderStatefulSets(
  pool: SendingPool,
  domains: readonly MailDomain[],
  opts: RenderOptions = {},
  configs = renderRelayConfigs(pool, domains),
  draining: readonly PoolIp[] = [],
): RenderedObject[] {
  return [...pool.spec.ips, ...draining].map((ip) => renderStatefulSet(pool, domains, ip, opts, configs.get(ip.address)));
}

/** Gives each relay pod a stable DNS name (<pod>.<pool>-relays) the operator scrapes stats from. */
export function renderHeadlessService(pool: SendingPool): RenderedObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(pool, headlessServiceName(pool), poolLabels(pool)),
    spec: {
      clusterIP: 'None',
      // Stats must be reachable from a relay that is not Ready (e.g. paused for bounces).
      publishNotReadyAddresses: true,
      selector: poolSelector(pool),
      ports: [{ name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

export function renderSubmissionService(pool: SendingPool): RenderedObject {
  const sub = pool.spec.submission;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(pool, submissionServiceName(pool), poolLabels(pool, 'submission'), sub.serviceAnnotations),
    spec: {
      type: sub.serviceType,
      selector: poolSelector(pool),
      ports: [...sub.ports.map((p) => ({
        name: p.name,
        port: p.port,
        targetPort: containerPort(p.port),
        protocol: 'TCP',
        ...(p.nodePort && sub.serviceType !== 'ClusterIP' ? { nodePort: p.nodePort } : {}),
      })), ...unsubscribeServicePorts(pool)],
      // Keep the client source address visible to the relay (AUTH throttling is per address).
      ...(sub.serviceType !== 'ClusterIP' ? { externalTrafficPolicy: 'Local' } : {}),
    },
  };
}

/** Voluntary disruptions (node drains) take at most one relay at a time, so the pool keeps sending. */
export function renderPodDisruptionBudget(pool: SendingPool): RenderedObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(pool, pool.metadata.name, poolLabels(pool)),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: poolSelector(pool) },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

/**
 * Ingress only: submission ports from anywhere (the Service type decides who can reach them)
 * and the stats/metrics port from the operator and the configured scrapers (Prometheus), nobody else. Egress is left open because relays talk to arbitrary
 * MX hosts and smarthost ports, and because Multus and hostNetwork traffic bypasses
 * NetworkPolicy anyway.
 */
export function renderNetworkPolicy(pool: SendingPool, opts: RenderOptions = {}): RenderedObject {
  const statsFrom = opts.operatorNamespace
    ? [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': opts.operatorNamespace } } }]
    : [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'mailfleet-operator' } } }];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(pool, pool.metadata.name, poolLabels(pool)),
    spec: {
      podSelector: { matchLabels: poolSelector(pool) },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [...pool.spec.submission.ports.map((p) => ({ protocol: 'TCP', port: containerPort(p.port) })), ...unsubscribePolicyPorts(pool)] },
        { from: statsFrom, ports: [{ protocol: 'TCP', port: HTTP_PORT }] },
        ...(opts.metricsScrapers?.length ? [{ from: opts.metricsScrapers.map((p) => structuredClone(p)), ports: [{ protocol: 'TCP', port: HTTP_PORT }] }] : []),
        bounceNetworkPolicyRule(pool),
      ],
    },
  };
}

/**
 * Every child of a pool, in apply order (config before the pods that mount it). `draining`: relays
 * of IPs no longer in spec.ips (or of a pool being deleted) that still deliver what they hold.
 */
export function renderPoolChildren(pool: SendingPool, domains: readonly MailDomain[], opts: RenderOptions = {}, draining: readonly PoolIp[] = []): RenderedObject[] {
  const nad = renderNetworkAttachmentDefinition(pool);
  const configs = renderRelayConfigs(pool, domains, draining);
  return [
    renderConfigMap(pool, domains, configs),
    ...(nad ? [nad] : []),
    renderHeadlessService(pool),
    renderSubmissionService(pool),
    ...renderBounceServices(pool),
    renderPodDisruptionBudget(pool),
    renderNetworkPolicy(pool, opts),
    ...renderStatefulSets(pool, domains, opts, configs, draining),
    ...renderCiliumEgressGatewayPolicies(pool, draining),
  ];
}

/** The namespaced children carry an owner reference; cluster-scoped ones need the finalizer path. */
export function isClusterScoped(obj: RenderedObject): boolean {
  return obj.kind === 'CiliumEgressGatewayPolicy';
}
