// Which parts of the relay config a running relay applies from a new file, and which need a
// restart. One pure owner of that split: the relay applies the live parts (relay/relay.ts) and
// the operator hashes only the restart parts into the pod template (operator/render/pool.ts), so
// a new MailDomain or a warm-up change reaches the relays without restarting a pod.
import type { RelayConfig } from './schema.ts';

/**
 * Fields read once at start: sockets and their options (listeners, http, the smtp-server
 * limits), paths (dataDir, tls, credentials file), the DNS client, the intake buckets, the log
 * level. Everything else (domains and DKIM keys, acceptDomains, shaping and warm-up, retry,
 * routes, egress IPs and delivery limits, bounce rules, draining, paused domains) is applied live.
 */
export const RESTART_FIELDS = [
  'hostname',
  'dataDir',
  'log',
  'http',
  'listeners',
  'tls',
  'auth',
  'limits',
  // Session threads are started with the listeners.
  'intake',
  // The commit delay is handed to the queue once, with the intake's count of sessions in DATA.
  'queue',
  'intakeRate',
  'delivery.enabled',
  'delivery.dnsServers',
  'delivery.allowPrivateMx',
  // PostgreSQL URL file, API token file, the unsubscribe endpoint's socket and key, retention and
  // retry settings: read when relay/feedback starts. (Per-domain webhooks and one-click
  // unsubscribe live in `domains` and apply live: Feedback.reconfigure.)
  'feedback',
  // The return-path keys file is watched from its path at start (the keys themselves reload live).
  'returnPath',
] as const;

function pick(config: RelayConfig, field: string): unknown {
  let v: unknown = config;
  for (const k of field.split('.')) v = v === undefined || v === null ? undefined : (v as Record<string, unknown>)[k];
  return v;
}

/** Sorted-key JSON, so two equal configs give one string whatever the key order. */
function stable(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** The restart-only part of a (parsed) config as one string: equal strings, no restart needed. */
export function restartSignature(config: RelayConfig): string {
  return stable(Object.fromEntries(RESTART_FIELDS.map((f) => [f, pick(config, f)])));
}

/** The restart-only fields that differ between two configs (empty: everything applies live). */
export function restartChanges(running: RelayConfig, next: RelayConfig): string[] {
  return RESTART_FIELDS.filter((f) => stable(pick(running, f)) !== stable(pick(next, f)));
}

/**
 * Copies the live parts of `next` into `running`, in place and in one synchronous step (no
 * attempt or SMTP session can see half of it): the intake and the delivery engine hold this same
 * object. Restart-only fields keep their running values until the process restarts.
 */
export function applyLive(running: RelayConfig, next: RelayConfig): void {
  running.acceptDomains = next.acceptDomains;
  // Read per connection (421 4.3.2) and by /readyz: a relay starts draining without a restart.
  running.draining = next.draining;
  running.domains = next.domains;
  running.shaping = next.shaping;
  running.retry = next.retry;
  // The operator's domain guardrail (docs/control-loop.md): the engine releases or holds at once.
  running.pausedDomains = next.pausedDomains;
  // A quarantine's hand-off starts and stops with the quarantine (docs/reputation.md).
  running.handoff = next.handoff;
  running.delivery = {
    ...next.delivery,
    enabled: running.delivery.enabled,
    dnsServers: running.delivery.dnsServers,
    allowPrivateMx: running.delivery.allowPrivateMx,
  };
}
