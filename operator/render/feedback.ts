// The feedback part of a pool's render (issue 12): relay config `feedback` and each domain's
// webhook / oneClickUnsubscribe, the Secrets the relay reads them from (mounted read-only), and
// the unsubscribe endpoint's ports. Pure; relay-config.ts and pool.ts call it.
import type { MailDomain, SendingPool } from '../api/index.ts';
import type { RelayConfigInput } from '../../relay/config/schema.ts';
import { unsubscribeKeySecretName } from './names.ts';

export const FEEDBACK_PATHS = {
  // One projected volume: the PostgreSQL URL, the unsubscribe links' key, each webhook's key.
  feedbackDir: '/etc/mailfleet/feedback',
  unsubscribeTlsDir: '/etc/mailfleet/unsubscribe-tls',
} as const;
export const UNSUBSCRIBE_KEY = 'key';
/** The unsubscribe endpoint: 443 on the pool Service, 8443 in the container (no privileged port). */
export const UNSUBSCRIBE_PORT = 443;
export const UNSUBSCRIBE_CONTAINER_PORT = 8443;

// The file http.apiTokenFile names (relay-config.ts PATHS.apiTokenDir, where pool.ts mounts the
// pool's token Secret): one token per pool. A render test keeps the two equal.
export const apiTokenFile = '/etc/mailfleet/api/token';
const postgresUrlFile = `${FEEDBACK_PATHS.feedbackDir}/postgres-url`;
const unsubscribeKeyFile = `${FEEDBACK_PATHS.feedbackDir}/unsubscribe-key`;
const webhookPath = (secret: string, key: string) => `webhooks/${secret}/${key}`;

/** The relay config's `feedback` section of a pool. */
export function renderFeedbackConfig(pool: SendingPool): NonNullable<RelayConfigInput['feedback']> {
  const f = pool.spec.feedback;
  return {
    apiTokenFile,
    ...(f?.postgres ? { postgres: { urlFile: postgresUrlFile } } : {}),
    ...(f?.unsubscribe
      ? {
          unsubscribe: {
            baseUrl: `https://${f.unsubscribe.host}`,
            secretFile: unsubscribeKeyFile,
            address: '0.0.0.0',
            port: UNSUBSCRIBE_CONTAINER_PORT,
            tls: { certFile: `${FEEDBACK_PATHS.unsubscribeTlsDir}/tls.crt`, keyFile: `${FEEDBACK_PATHS.unsubscribeTlsDir}/tls.key` },
          },
        }
      : {}),
  };
}

/** A domain's webhook and one-click fields of relay config `domains[]` (both apply live in the relay). */
export function renderDomainFeedback(domain: MailDomain): { webhook?: { url: string; secretFile: string; keyId: string }; oneClickUnsubscribe?: boolean } {
  const w = domain.spec.webhook;
  return {
    ...(w ? { webhook: { url: w.url, secretFile: `${FEEDBACK_PATHS.feedbackDir}/${webhookPath(w.secretRef.name, w.secretRef.key)}`, keyId: w.keyId } } : {}),
    ...(domain.spec.oneClickUnsubscribe ? { oneClickUnsubscribe: true } : {}),
  };
}

type Obj = Record<string, unknown>;

/**
 * Volumes and mounts of the feedback Secrets. The projected volume's sources depend only on Secret
 * names and keys (sorted, deduplicated), so a webhook URL change leaves the pod template alone and
 * reaches the relay through the ConfigMap; a new webhook Secret is a new source (a restart, as a
 * new DKIM key is).
 */
export function feedbackVolumes(pool: SendingPool, domains: readonly MailDomain[]): { vols: Obj[]; mounts: Obj[] } {
  const f = pool.spec.feedback;
  const vols: Obj[] = [];
  const mounts: Obj[] = [];
  const sources: Obj[] = [];
  if (f?.postgres) sources.push({ secret: { name: f.postgres.secretRef.name, items: [{ key: f.postgres.secretRef.key, path: 'postgres-url' }] } });
  if (f?.unsubscribe) sources.push({ secret: { name: unsubscribeKeySecretName(pool), items: [{ key: UNSUBSCRIBE_KEY, path: 'unsubscribe-key' }] } });
  const hooks = new Map<string, Set<string>>();
  for (const d of domains) {
    const w = d.spec.webhook;
    if (w) hooks.set(w.secretRef.name, (hooks.get(w.secretRef.name) ?? new Set()).add(w.secretRef.key));
  }
  for (const name of [...hooks.keys()].sort()) {
    sources.push({ secret: { name, items: [...hooks.get(name)!].sort().map((key) => ({ key, path: webhookPath(name, key) })) } });
  }
  if (sources.length > 0) {
    vols.push({ name: 'feedback', projected: { defaultMode: 0o440, sources } });
    mounts.push({ name: 'feedback', mountPath: FEEDBACK_PATHS.feedbackDir, readOnly: true });
  }
  if (f?.unsubscribe) {
    vols.push({ name: 'unsubscribe-tls', secret: { secretName: f.unsubscribe.tlsSecretRef.name, defaultMode: 0o440 } });
    mounts.push({ name: 'unsubscribe-tls', mountPath: FEEDBACK_PATHS.unsubscribeTlsDir, readOnly: true });
  }
  return { vols, mounts };
}

/** The unsubscribe endpoint's container port, when the pool has one. */
export function unsubscribeContainerPorts(pool: SendingPool, hostNetwork: boolean): Obj[] {
  if (!pool.spec.feedback?.unsubscribe) return [];
  return [{ name: 'unsubscribe', containerPort: UNSUBSCRIBE_CONTAINER_PORT, protocol: 'TCP', ...(hostNetwork ? { hostPort: UNSUBSCRIBE_CONTAINER_PORT } : {}) }];
}

/** The pool Service's HTTPS port for the links (receivers' POSTs come from anywhere). */
export function unsubscribeServicePorts(pool: SendingPool): Obj[] {
  if (!pool.spec.feedback?.unsubscribe) return [];
  return [{ name: 'unsubscribe', port: UNSUBSCRIBE_PORT, targetPort: UNSUBSCRIBE_CONTAINER_PORT, protocol: 'TCP' }];
}

/** NetworkPolicy ports open to anyone: the unsubscribe endpoint. */
export function unsubscribePolicyPorts(pool: SendingPool): Obj[] {
  return pool.spec.feedback?.unsubscribe ? [{ protocol: 'TCP', port: UNSUBSCRIBE_CONTAINER_PORT }] : [];
}
