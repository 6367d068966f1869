// What both reconcilers share: their dependencies, the resources they touch, and the step
// runner. A reconcile is an ordered list of idempotent `ensure…` steps (the CloudNativePG shape):
// each step either does its part and lets the next run, or stops the reconcile with a reason that
// becomes the Ready condition. Running the list again with nothing changed changes nothing.
import type { Logger } from 'pino';
import type { Kube, KubeObject } from '../runtime/kube.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { OperatorMetrics } from '../metrics.ts';
import type { DnsLookup } from './maildomain/dns.ts';
import type { ResourceRef } from '../runtime/manager.ts';
import { KubeError } from '../runtime/kube.ts';
import { RenderError } from '../render/relay-config.ts';
import type { RenderOptions } from '../render/pool.ts';
import type { RelayObservations } from '../observe/observations.ts';

export interface ControllerDeps {
  kube: Kube;
  events: EventRecorder;
  log: Logger;
  metrics: OperatorMetrics;
  now: () => Date;
  dns: DnsLookup;
  dnsRecheckMs: number;
  /** Re-check of things the operator does not watch (user Secrets, missing add-on CRDs). */
  refRecheckMs: number;
  /** Passed to the pool renderer: default relay image, the operator's namespace. */
  render?: RenderOptions;
  /** What relays report of themselves; a removed IP's relay is deleted only once it reports an empty queue. */
  observations?: RelayObservations;
}

export const API = 'mailfleet.io/v1alpha1';
export const POOL: ResourceRef = { apiVersion: API, kind: 'SendingPool' };
export const DOMAIN: ResourceRef = { apiVersion: API, kind: 'MailDomain' };
export const CONFIGMAP: ResourceRef = { apiVersion: 'v1', kind: 'ConfigMap' };
export const SECRET: ResourceRef = { apiVersion: 'v1', kind: 'Secret' };
export const SERVICE: ResourceRef = { apiVersion: 'v1', kind: 'Service' };
export const STATEFULSET: ResourceRef = { apiVersion: 'apps/v1', kind: 'StatefulSet' };
export const PDB: ResourceRef = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' };
export const NETPOL: ResourceRef = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' };

/** Namespaced children kinds the operator watches and prunes (CRD-backed egress kinds are optional). */
export const WATCHED_CHILDREN: ResourceRef[] = [CONFIGMAP, SERVICE, STATEFULSET, PDB, NETPOL];

/** Why a reconcile stopped early; becomes Ready=False (and Reconciled=False) with this reason. */
export class Blocked extends Error {
  readonly reason: string;
  /** The spec is at fault (retrying without a spec change will not help). */
  readonly invalid: boolean;
  readonly requeueAfterMs: number | undefined;
  constructor(reason: string, message: string, opts: { invalid?: boolean; requeueAfterMs?: number } = {}) {
    super(message);
    this.reason = reason;
    this.invalid = opts.invalid ?? false;
    this.requeueAfterMs = opts.requeueAfterMs;
  }
}

export interface Step<C> {
  name: string;
  run: (ctx: C) => Promise<void>;
}

/** Runs the steps in order; returns the Blocked that stopped them, if any. Other errors throw. */
export async function runSteps<C>(steps: readonly Step<C>[], ctx: C): Promise<Blocked | undefined> {
  for (const s of steps) {
    try {
      await s.run(ctx);
    } catch (err) {
      if (err instanceof Blocked) return err;
      if (err instanceof RenderError) return new Blocked('InvalidSpec', err.message, { invalid: true });
      // 422 Invalid / 400 BadRequest: the apiserver refused what the spec rendered to. Retrying
      // the same spec cannot succeed, so report it instead of hot-looping.
      if (err instanceof KubeError && (err.status === 422 || err.status === 400)) {
        return new Blocked('ChildRejected', `${s.name}: ${err.message}`, { invalid: true });
      }
      throw err;
    }
  }
  return undefined;
}

export function meta(obj: KubeObject): { namespace: string; name: string; uid: string; generation: number } {
  return {
    namespace: obj.metadata?.namespace ?? '',
    name: obj.metadata?.name ?? '',
    uid: obj.metadata?.uid ?? '',
    generation: obj.metadata?.generation ?? 0,
  };
}

export function ownedBy(obj: KubeObject, owner: { uid: string }): boolean {
  return (obj.metadata?.ownerReferences ?? []).some((r) => r.controller && r.uid === owner.uid);
}

export const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
