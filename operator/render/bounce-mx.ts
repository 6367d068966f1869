// The bounce MX of a pool: the MX-role listener in each relay, how port 25 reaches it in each
// egress mode, the NetworkPolicy rule that opens it, and the Secret of return-path keys the
// operator owns and rotates. Pure; the SendingPool controller supplies the clock and randomness.
//
// Port 25 outside, an unprivileged port inside (restricted pod security drops every capability):
//   none                 one Service <pool>-mx (the submission Service's type and annotations):
//                        25 → 10025 on every relay; point the return-path MX at its address
//   hostNetwork          per relay, a ClusterIP Service with externalIPs = the relay's address:
//                        kube-proxy sends <ip>:25 to the pod's 10025 on that node
//   ciliumEgressGateway  the same per-relay externalIPs Service (Cilium serves externalIPs)
//   multus               no Service: the address is the pod's own (secondary interface), so the
//                        relay listens on 25 itself, allowed by the namespaced, "safe" sysctl
//                        net.ipv4.ip_unprivileged_port_start=25 (no capability needed)
import type { SendingPool } from '../api/index.ts';
import { containerPort } from './relay-config.ts';
import { childMeta } from './egress.ts';
import { relayName, relayLabels, poolSelector, poolLabels, LABEL_IP, ANNOTATION_ADDRESS, type RenderedObject, submissionServiceName } from './names.ts';
import type { RelayConfigInput } from '../../relay/config/schema.ts';

export const MX_PORT = 25;
// Beside the other mounts under PATHS.configDir (a literal: relay-config.ts imports this module).
export const RETURN_PATH_DIR = '/etc/mailfleet/return-path';
export const RETURN_PATH_KEYS = 'keys.json';

export const returnPathKeysSecretName = (pool: SendingPool): string => `${pool.metadata.name}-return-path-keys`;
export const bounceServiceName = (pool: SendingPool): string => `${submissionServiceName(pool)}-mx`;
export const relayBounceServiceName = (pool: SendingPool, address: string): string => `${relayName(pool, address)}-mx`;

/** The port the relay's MX listener binds inside the pod. */
export function mxContainerPort(pool: SendingPool): number {
  return pool.spec.egress.mode === 'multus' ? MX_PORT : containerPort(MX_PORT);
}

/** The relay config's part for the bounce MX: its listener and the return-path keys. */
export function bounceRelayConfig(pool: SendingPool): Pick<RelayConfigInput, 'returnPath'> & { listener: RelayConfigInput['listeners'][number] } {
  return {
    listener: {
      name: 'mx',
      role: 'mx',
      address: '0.0.0.0',
      port: mxContainerPort(pool),
      // TLS with the pool's certificate when it has one; the greeting delay stays (the MX default).
      tls: pool.spec.submission.tlsSecretRef ? 'starttls' : 'none',
    },
    returnPath: { keysFile: `${RETURN_PATH_DIR}/${RETURN_PATH_KEYS}`, pool: pool.metadata.name },
  };
}

/** The StatefulSet's additions: the container port, the keys volume (a directory, so rotations reach the relay) and, for multus, the sysctl. */
export function bounceStatefulSetParts(pool: SendingPool): {
  port: Record<string, unknown>;
  volume: Record<string, unknown>;
  mount: Record<string, unknown>;
  sysctls: { name: string; value: string }[];
} {
  const port = mxContainerPort(pool);
  return {
    port: { name: 'mx', containerPort: port, protocol: 'TCP', ...(pool.spec.egress.mode === 'hostNetwork' ? { hostPort: port } : {}) },
    volume: { name: 'return-path', secret: { secretName: returnPathKeysSecretName(pool), defaultMode: 0o440 } },
    mount: { name: 'return-path', mountPath: RETURN_PATH_DIR, readOnly: true },
    sysctls: pool.spec.egress.mode === 'multus' ? [{ name: 'net.ipv4.ip_unprivileged_port_start', value: String(MX_PORT) }] : [],
  };
}

/** Ingress to the MX listener from anywhere: bounces come from every mail system on the internet. */
export function bounceNetworkPolicyRule(pool: SendingPool): Record<string, unknown> {
  return { ports: [{ protocol: 'TCP', port: mxContainerPort(pool) }] };
}

/** How port 25 reaches the relays, per egress mode (see the top of this file). */
export function renderBounceServices(pool: SendingPool): RenderedObject[] {
  const mode = pool.spec.egress.mode;
  const mxPort = { name: 'smtp', port: MX_PORT, targetPort: mxContainerPort(pool), protocol: 'TCP' };
  if (mode === 'multus') return [];
  if (mode === 'none') {
    const sub = pool.spec.submission;
    return [{
      apiVersion: 'v1',
      kind: 'Service',
      metadata: childMeta(pool, bounceServiceName(pool), poolLabels(pool, 'bounce-mx'), sub.serviceAnnotations),
      spec: {
        type: sub.serviceType,
        selector: poolSelector(pool),
        ports: [mxPort],
        // The sending system's address stays visible to the relay (logs, the record's envelope).
        ...(sub.serviceType !== 'ClusterIP' ? { externalTrafficPolicy: 'Local' } : {}),
      },
    }];
  }
  return pool.spec.ips.map((ip) => {
    const labels = relayLabels(pool, ip.address);
    return {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: childMeta(pool, relayBounceServiceName(pool, ip.address), { ...labels, 'app.kubernetes.io/component': 'bounce-mx' }, { [ANNOTATION_ADDRESS]: ip.address }),
      spec: {
        type: 'ClusterIP',
        selector: { ...poolSelector(pool), [LABEL_IP]: labels[LABEL_IP]! },
        externalIPs: [ip.address],
        ports: [mxPort],
      },
    };
  });
}

// ---- The return-path keys Secret -------------------------------------------------------------

export interface KeyRotation {
  /** A new signing key after this many days. */
  rotateAfterDays: number;
  /** The previous key keeps verifying this long: at least the relay's token validity (30 days). */
  graceDays: number;
}
export const DEFAULT_KEY_ROTATION: KeyRotation = { rotateAfterDays: 90, graceDays: 35 };

interface KeyEntry {
  id: string;
  secret: string;
  createdAt: string;
  acceptUntil?: string;
}

const KEY_IDS = '0123456789abcdefghjkmnpqrstvwxyz';
const DAY = 86_400_000;

/**
 * The keys document to store, given the current one (undefined: none yet): a first key when there
 * is none; a new signing key, the old one verify-only until now + grace, when the signing key is
 * older than rotateAfterDays; retired keys dropped once their grace ended. `changed` is false when
 * the current document stays as it is (nothing to apply).
 */
export function planReturnPathKeys(current: string | undefined, now: Date, random: (bytes: number) => Buffer, rotation: KeyRotation = DEFAULT_KEY_ROTATION): { json: string; changed: boolean; rotated: boolean } {
  let keys: KeyEntry[] = [];
  try {
    const doc = current ? (JSON.parse(current) as { keys?: KeyEntry[] }) : undefined;
    keys = (doc?.keys ?? []).filter((k) => typeof k.id === 'string' && typeof k.secret === 'string');
  } catch {
    keys = []; // unreadable: start over (tokens already out are then refused, and say so)
  }
  const before = JSON.stringify({ keys });
  keys = keys.filter((k) => !k.acceptUntil || Date.parse(k.acceptUntil) > now.getTime());
  const signing = keys[0];
  let rotated = false;
  if (!signing || signing.acceptUntil || now.getTime() - Date.parse(signing.createdAt || '1970-01-01T00:00:00Z') >= rotation.rotateAfterDays * DAY) {
    const used = new Set(keys.map((k) => k.id));
    const after = signing ? KEY_IDS.indexOf(signing.id) : -1;
    let id = KEY_IDS[0]!;
    for (let i = 1; i <= KEY_IDS.length; i++) {
      const c = KEY_IDS[(after + i + KEY_IDS.length) % KEY_IDS.length]!;
      if (!used.has(c)) {
        id = c;
        break;
      }
    }
    const acceptUntil = new Date(now.getTime() + rotation.graceDays * DAY).toISOString();
    keys = [
      { id, secret: random(32).toString('base64'), createdAt: now.toISOString() },
      ...keys.map((k) => (k.acceptUntil ? k : { ...k, acceptUntil })),
    ];
    rotated = signing !== undefined;
  }
  const json = JSON.stringify({ keys });
  return { json, changed: json !== before, rotated };
}

export function renderReturnPathKeySecret(pool: SendingPool, json: string): RenderedObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(pool, returnPathKeysSecretName(pool), poolLabels(pool, 'return-path-keys')),
    type: 'Opaque',
    data: { [RETURN_PATH_KEYS]: Buffer.from(json).toString('base64') },
  };
}
