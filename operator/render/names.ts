// Names, labels and owner references of everything rendered for a pool or a domain. Child names
// are derived from the owner and the IP address, never from list positions, so reordering
// spec.ips does not rename (and so recreate) a relay or orphan its queue volume.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { API_VERSION, SENDINGPOOL_KIND, MAILDOMAIN_KIND, canonicalIp, type SendingPool, type MailDomain } from '../api/index.ts';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export interface RenderedMeta {
  name: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** A Kubernetes object as sent to server-side apply. */
export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: RenderedMeta;
  [key: string]: unknown;
}

export const LABEL_POOL = 'mailfleet.io/pool';
export const LABEL_IP = 'mailfleet.io/ip';
export const LABEL_DOMAIN = 'mailfleet.io/domain';
export const ANNOTATION_CONFIG_HASH = 'mailfleet.io/config-hash';
export const ANNOTATION_ADDRESS = 'mailfleet.io/address';
/** On a relay StatefulSet: its spec.ips entry, so the relay can still be rendered (draining) once the entry is gone. */
export const ANNOTATION_IP_SPEC = 'mailfleet.io/ip-spec';
/** On a SendingPool: "true" removes relays of removed IPs, and of the pool when deleted, without draining them first. */
export const ANNOTATION_DELETE_IMMEDIATELY = 'mailfleet.io/delete-immediately';
export const MULTUS_NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';
export const MANAGED_BY = 'mailfleet-operator';

/**
 * Label-safe, DNS-label-safe key of an address: 203.0.113.7 → 203-0-113-7; IPv6 addresses are
 * too long and hold colons, so they get a short hash.
 */
export function ipKey(address: string): string {
  if (isIPv4(address)) return address.replaceAll('.', '-');
  // The canonical spelling (RFC 5952): two spellings of one address name one relay.
  return 'v6-' + createHash('sha256').update(canonicalIp(address)).digest('hex').slice(0, 10);
}

export function relayName(pool: SendingPool, address: string): string {
  return `${pool.metadata.name}-${ipKey(address)}`;
}
/** The Secret with the HMAC key of the pool's one-click unsubscribe links, key `key`. */
export const unsubscribeKeySecretName = (pool: { metadata: { name: string } }): string => `${pool.metadata.name}-unsubscribe-key`;
export const configMapName = (pool: SendingPool): string => `${pool.metadata.name}-relay-config`;
/** The Secret with the relays' HTTP API token (created by operator/observe/token.ts, mounted by the render). */
export const apiTokenSecretName = (pool: { metadata: { name: string } }): string => `${pool.metadata.name}-relay-api`;
export const headlessServiceName = (pool: SendingPool): string => `${pool.metadata.name}-relays`;
export const submissionServiceName = (pool: SendingPool): string => pool.metadata.name;
export const multusNetworkName = (pool: SendingPool): string =>
  pool.spec.egress.multus?.networkName ?? `${pool.metadata.name}-egress`;
/** Cilium policies are cluster-scoped, so the name carries the namespace. */
export function ciliumPolicyName(pool: SendingPool, address: string): string {
  return `mailfleet-${pool.metadata.namespace ?? 'default'}-${relayName(pool, address)}`.slice(0, 253);
}
/** The relay config key of one IP inside the pool ConfigMap. */
export const configKey = (address: string): string => `relay-${ipKey(address)}.yaml`;

export function poolSelector(pool: SendingPool): Record<string, string> {
  return { 'app.kubernetes.io/name': 'mailfleet-relay', 'app.kubernetes.io/instance': pool.metadata.name };
}

export function poolLabels(pool: SendingPool, component = 'relay'): Record<string, string> {
  return {
    ...poolSelector(pool),
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'mailfleet',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [LABEL_POOL]: pool.metadata.name,
  };
}

export function relayLabels(pool: SendingPool, address: string): Record<string, string> {
  return { ...poolLabels(pool), [LABEL_IP]: ipKey(address) };
}

export function domainLabels(domain: MailDomain): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'mailfleet-dkim',
    'app.kubernetes.io/instance': domain.metadata.name,
    'app.kubernetes.io/component': 'dkim-key',
    'app.kubernetes.io/part-of': 'mailfleet',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [LABEL_DOMAIN]: domain.metadata.name,
  };
}

function ownerRef(kind: string, obj: { metadata: { name: string; uid?: string | undefined } }): OwnerReference {
  if (!obj.metadata.uid) {
    throw new Error(`${kind} ${obj.metadata.name}: metadata.uid is empty; render only objects read back from the apiserver`);
  }
  return { apiVersion: API_VERSION, kind, name: obj.metadata.name, uid: obj.metadata.uid, controller: true, blockOwnerDeletion: true };
}
export const poolOwnerReference = (pool: SendingPool): OwnerReference => ownerRef(SENDINGPOOL_KIND, pool);
export const domainOwnerReference = (domain: MailDomain): OwnerReference => ownerRef(MAILDOMAIN_KIND, domain);

export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
