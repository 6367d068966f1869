// SendingPool → the objects that give each relay its own source address: the Multus network
// (NetworkAttachmentDefinition, and each pod's annotation) or Cilium egress gateway policies.
// Pure, like the rest of the render layer (pool.ts renders the other children).
import { isIPv6 } from 'node:net';
import type { PoolIp, SendingPool } from '../api/index.ts';
import { ANNOTATION_ADDRESS, LABEL_IP, LABEL_POOL, ciliumPolicyName, multusNetworkName, poolLabels, poolOwnerReference, relayLabels, type RenderedObject } from './names.ts';

/** Metadata of a namespaced child: the pool's namespace and its owner reference. */
export function childMeta(pool: SendingPool, name: string, labels: Record<string, string>, annotations?: Record<string, string>) {
  return {
    name,
    ...(pool.metadata.namespace ? { namespace: pool.metadata.namespace } : {}),
    labels,
    ...(annotations ? { annotations } : {}),
    ownerReferences: [poolOwnerReference(pool)],
  };
}

/** The pod annotation that asks Multus for this IP on the pool's network. */
export function multusAnnotation(pool: SendingPool, ip: PoolIp): string {
  const m = pool.spec.egress.multus!;
  const prefix = isIPv6(ip.address) ? Math.min(m.prefixLength, 128) : Math.min(m.prefixLength, 32);
  return JSON.stringify([
    {
      name: multusNetworkName(pool),
      ...(pool.metadata.namespace ? { namespace: pool.metadata.namespace } : {}),
      ips: [`${ip.address}/${prefix}`],
      // Mail must leave through the secondary interface: its gateway becomes the pod's default route.
      ...(m.gateway ? { 'default-route': [m.gateway] } : {}),
    },
  ]);
}

export function renderNetworkAttachmentDefinition(pool: SendingPool): RenderedObject | undefined {
  const m = pool.spec.egress.multus;
  if (pool.spec.egress.mode !== 'multus' || !m || m.networkName) return undefined;
  const cni = {
    cniVersion: '0.3.1',
    name: multusNetworkName(pool),
    type: m.plugin,
    master: m.master,
    mode: m.plugin === 'macvlan' ? 'bridge' : 'l2',
    // Static IPAM whose addresses come from each pod's annotation ("ips" capability): one NAD
    // serves every IP of the pool.
    capabilities: { ips: true },
    ipam: { type: 'static' },
  };
  return {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: childMeta(pool, multusNetworkName(pool), poolLabels(pool, 'egress')),
    spec: { config: JSON.stringify(cni) },
  };
}

/**
 * CiliumEgressGatewayPolicy is cluster-scoped, and a namespaced owner cannot own a
 * cluster-scoped object (the garbage collector ignores such references), so these carry no
 * ownerReferences: the controller removes them through a finalizer, matching on the labels.
 */
export function renderCiliumEgressGatewayPolicies(pool: SendingPool, draining: readonly PoolIp[] = []): RenderedObject[] {
  const c = pool.spec.egress.ciliumEgressGateway;
  if (pool.spec.egress.mode !== 'ciliumEgressGateway' || !c) return [];
  // A draining relay still delivers: through its own address, so its policy stays until it goes.
  return [...pool.spec.ips, ...draining].map((ip) => ({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumEgressGatewayPolicy',
    metadata: {
      name: ciliumPolicyName(pool, ip.address),
      labels: {
        ...poolLabels(pool, 'egress'),
        'mailfleet.io/pool-namespace': pool.metadata.namespace ?? 'default',
        [LABEL_IP]: relayLabels(pool, ip.address)[LABEL_IP]!,
      },
      annotations: { [ANNOTATION_ADDRESS]: ip.address, 'mailfleet.io/owner-uid': pool.metadata.uid ?? '' },
    },
    spec: {
      selectors: [
        {
          podSelector: {
            matchLabels: {
              'io.kubernetes.pod.namespace': pool.metadata.namespace ?? 'default',
              [LABEL_POOL]: pool.metadata.name,
              [LABEL_IP]: relayLabels(pool, ip.address)[LABEL_IP]!,
            },
          },
        },
      ],
      destinationCIDRs: c.destinationCIDRs,
      ...(c.excludedCIDRs ? { excludedCIDRs: c.excludedCIDRs } : {}),
      egressGateway: { nodeSelector: { matchLabels: c.nodeSelector }, egressIP: ip.address },
    },
  }));
}
