// The operator's one door to the apiserver. Plain JSON in and out (no generated model classes)
// because informers, status writes, Leases and Events all need the objects exactly as the apiserver
// sends them: unknown fields kept, timestamps as strings, resourceVersion untouched.
// About 350 lines on purpose: one HTTP client (auth, TLS, retries, watch streams) behind one
// small interface; the callers (informer, leader election, apply, events) stay thin.
import type { AgentOptions, RequestOptions as HttpsRequestOptions } from 'node:https';
import { Agent } from 'undici';
// client-node's files by name, never its index (operator/runtime/client-node-slim.ts says why).
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { PatchStrategy } from '@kubernetes/client-node/dist/patch.js';
import { RequestContext, HttpMethod, IsomorphicFetchHttpLibrary } from '@kubernetes/client-node/dist/gen/http/http.js';
import { ApiException } from '@kubernetes/client-node/dist/gen/apis/exception.js';

export const FIELD_MANAGER = 'mailfleet-operator';

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [k: string]: unknown;
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** An apiserver refusal, with the HTTP status and the Status object's reason and message. */
export class KubeError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  readonly body: unknown;
  constructor(status: number, message: string, reason?: string, body?: unknown) {
    super(message);
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
    this.body = body;
  }
}

export function isStatus(err: unknown, status: number): boolean {
  if (err instanceof KubeError) return err.status === status;
  if (err instanceof ApiException) return err.code === status;
  return false;
}

/** Resource names of the kinds the operator touches, so no discovery round trip is needed. */
const PLURALS: Record<string, { plural: string; namespaced: boolean }> = {
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Pod: { plural: 'pods', namespaced: true },
  PersistentVolumeClaim: { plural: 'persistentvolumeclaims', namespaced: true },
  Event: { plural: 'events', namespaced: true },
  Namespace: { plural: 'namespaces', namespaced: false },
  StatefulSet: { plural: 'statefulsets', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  PodDisruptionBudget: { plural: 'poddisruptionbudgets', namespaced: true },
  NetworkPolicy: { plural: 'networkpolicies', namespaced: true },
  EndpointSlice: { plural: 'endpointslices', namespaced: true },
  Lease: { plural: 'leases', namespaced: true },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  SendingPool: { plural: 'sendingpools', namespaced: true },
  MailDomain: { plural: 'maildomains', namespaced: true },
  NetworkAttachmentDefinition: { plural: 'network-attachment-definitions', namespaced: true },
  CiliumEgressGatewayPolicy: { plural: 'ciliumegressgatewaypolicies', namespaced: false },
};

export function resourceInfo(kind: string): { plural: string; namespaced: boolean } {
  const r = PLURALS[kind];
  if (!r) throw new Error(`kind ${kind} is not known to operator/runtime/kube.ts; add its plural there`);
  return r;
}

/** URL path of a collection (no name) or of one object, optionally a subresource. */
export function resourcePath(
  ref: { apiVersion: string; kind: string; namespace?: string | undefined; name?: string | undefined },
  subresource?: string,
): string {
  const { plural, namespaced } = resourceInfo(ref.kind);
  const base = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  let p = base;
  if (namespaced && ref.namespace) p += `/namespaces/${encodeURIComponent(ref.namespace)}`;
  p += `/${plural}`;
  if (ref.name) p += `/${encodeURIComponent(ref.name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

/**
 * A KubeConfig whose requests share one keep-alive connection pool. client-node 2.0.1's
 * applySecurityAuthentication builds a new undici Agent for every request: a TLS handshake and a
 * SecureContext per API call (a fifth of the operator's CPU at 1,000 MailDomains), and every
 * abandoned Agent holds its socket until the keep-alive timer fires. Here the Agent is made once,
 * from the kubeconfig's TLS material, and used by Kube.request and by the informers' watches
 * (makeInformer calls this same method). Auth headers are still computed per request, because
 * tokens rotate (exec plugins; in-cluster, the projected service-account token is re-read every
 * minute). Client certificates and the CA are read once: rotating them needs a restart.
 */
export class PooledKubeConfig extends KubeConfig {
  /** undefined: not made yet; null: nothing to pool (plain http or a proxy; client-node's own path). */
  private agent: Agent | null | undefined;
  private auth: { headers: Record<string, string>; at: number } | undefined;

  static from(kc: KubeConfig): PooledKubeConfig {
    if (kc instanceof PooledKubeConfig) return kc;
    const p = new PooledKubeConfig();
    p.loadFromOptions({ clusters: kc.getClusters(), contexts: kc.getContexts(), users: kc.getUsers(), currentContext: kc.getCurrentContext() });
    return p;
  }

  /**
   * The pooled Agent (null: use client-node's own path) and the auth headers of a request.
   * client-node's applyToHTTPSOptions reads the CA, client certificate and key (files, in a pod)
   * and runs the authenticator on every call: at 1,000 MailDomains that was a large part of the
   * operator's per-request CPU. Its headers are kept AUTH_TTL_MS, well inside how long a rotated
   * token stays valid (client-go and client-node's file token source re-read once a minute).
   */
  async transport(): Promise<{ agent: Agent | null; headers: Record<string, string> }> {
    const now = Date.now();
    if (this.agent !== undefined && this.auth && now - this.auth.at < AUTH_TTL_MS) return { agent: this.agent, headers: this.auth.headers };
    // The public way to get client-node's headers (token, exec plugin, impersonation) and TLS
    // material; the https.Agent it also makes is cached by client-node and never used here.
    const opts: HttpsRequestOptions = {};
    await this.applyToHTTPSOptions(opts);
    if (this.agent === undefined) {
      const tls: AgentOptions = { ca: opts.ca, cert: opts.cert, key: opts.key, pfx: opts.pfx, passphrase: opts.passphrase };
      if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
      if (opts.servername !== undefined) tls.servername = opts.servername;
      const d = this.createDispatcherOptions(this.getCurrentCluster(), tls);
      // Same connect options client-node would use (keepAliveInitialDelay 30 s, as client-go).
      this.agent = d.type === 'agent' ? new Agent({ connect: d.connect, keepAliveTimeout: 30_000 }) : null;
    }
    const headers: Record<string, string> = {};
    if (opts.auth) headers['authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    this.auth = { headers, at: now };
    return { agent: this.agent, headers };
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    if (this.agent === null) return super.applySecurityAuthentication(context);
    const { agent, headers } = await this.transport();
    if (agent === null) return super.applySecurityAuthentication(context);
    for (const [k, v] of Object.entries(headers)) context.setHeaderParam(k, v);
    context.setDispatcher(agent);
  }

  /** Closes the pooled connections, watches included (a later request opens a new pool). */
  async close(): Promise<void> {
    const a = this.agent;
    this.agent = undefined;
    this.auth = undefined;
    await a?.destroy();
  }
}

const AUTH_TTL_MS = 10_000;

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export class Kube {
  /** A pooled copy of the KubeConfig given: pass this one on (informers) to share its connections. */
  readonly kc: PooledKubeConfig;
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly timeoutMs: number;

  constructor(kc: KubeConfig, opts: { timeoutMs?: number } = {}) {
    this.kc = PooledKubeConfig.from(kc);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** Closes the connection pool. */
  close(): Promise<void> {
    return this.kc.close();
  }

  static fromFile(path?: string): Kube {
    const kc = new KubeConfig();
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault();
    return new Kube(kc);
  }

  async request<T = unknown>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const body = opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
    const signal = AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs);
    let status: number;
    let text: string;
    const { agent, headers } = await this.kc.transport();
    if (agent) {
      // undici's request() on the pooled Agent: the WHATWG fetch that client-node's HTTP library
      // goes through (Request/Response objects, web streams) cost more CPU than the request itself.
      const res = await agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers: { ...headers, accept: 'application/json', ...(body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}) },
        ...(body !== undefined ? { body } : {}),
        signal,
      });
      status = res.statusCode;
      text = await res.body.text();
    } else {
      const ctx = new RequestContext(url.toString(), method);
      ctx.setHeaderParam('Accept', 'application/json');
      if (body !== undefined) {
        ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
        ctx.setBody(body);
      }
      ctx.setSignal(signal);
      await this.kc.applySecurityAuthentication(ctx);
      const res = await this.http.send(ctx).toPromise();
      status = res.httpStatusCode;
      text = await res.body.text();
    }
    let data: unknown = undefined;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = text;
    }
    if (status >= 200 && status < 300) return data as T;
    const st = (data ?? {}) as { message?: string; reason?: string };
    throw new KubeError(
      status,
      `${method} ${path}: ${status} ${st.reason ?? ''} ${st.message ?? (typeof data === 'string' ? data : '')}`.trim(),
      st.reason,
      data,
    );
  }

  get<T extends KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T> {
    return this.request<T>('GET', resourcePath({ apiVersion, kind, namespace, name }));
  }

  /** Like get, but undefined for 404. */
  async find<T extends KubeObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(apiVersion, kind, namespace, name);
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
  }

  list<T extends KubeObject>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath({ apiVersion, kind, namespace }), { query: { labelSelector } });
  }

  create<T extends KubeObject>(obj: T): Promise<T> {
    const m = obj.metadata ?? {};
    return this.request<T>('POST', resourcePath({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: m.namespace }), { body: obj });
  }

  /** PUT: optimistic concurrency through metadata.resourceVersion (409 when stale). */
  replace<T extends KubeObject>(obj: T, subresource?: string): Promise<T> {
    const m = obj.metadata ?? {};
    return this.request<T>(
      'PUT',
      resourcePath({ apiVersion: obj.apiVersion!, kind: obj.kind!, namespace: m.namespace, name: m.name }, subresource),
      { body: obj },
    );
  }

  mergePatch<T extends KubeObject>(ref: { apiVersion: string; kind: string; namespace?: string; name: string }, patch: unknown, subresource?: string): Promise<T> {
    return this.request<T>('PATCH', resourcePath(ref, subresource), { body: patch, contentType: 'application/merge-patch+json' });
  }

  async delete(ref: { apiVersion: string; kind: string; namespace?: string; name: string }, propagationPolicy = 'Background'): Promise<void> {
    try {
      await this.request('DELETE', resourcePath(ref), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy } });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }

  /**
   * Server-side apply as the operator's single field manager, forcing ownership: the operator is the
   * only writer of what it renders, and a human's kubectl edit of those fields is drift to undo.
   * Fields the operator stops sending are removed by the apiserver, which is how children shrink.
   *
   * Not KubernetesObjectApi.patch: that serializes through client-node's generated model classes,
   * which silently drop every field whose JSON name differs from the model attribute
   * (`x-kubernetes-int-or-string`, `$ref` in a CRD schema) and every field newer than the models.
   * Same request otherwise: PATCH, application/apply-patch+yaml, fieldManager, force.
   */
  async apply(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): Promise<KubeObject> {
    const path = await this.objectPath(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    return this.request<KubeObject>('PATCH', path, {
      body: obj,
      contentType: PatchStrategy.ServerSideApply,
      query: { fieldManager: FIELD_MANAGER, force: true },
    });
  }

  private discovered = new Map<string, { plural: string; namespaced: boolean }>();

  /** Path of one object; kinds outside the built-in table are looked up once by discovery. */
  async objectPath(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<string> {
    if (PLURALS[kind]) return resourcePath({ apiVersion, kind, namespace, name });
    const key = `${apiVersion}/${kind}`;
    let info = this.discovered.get(key);
    if (!info) {
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const list = await this.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>('GET', base);
      const r = list.resources.find((x) => x.kind === kind && !x.name.includes('/'));
      if (!r) throw new KubeError(404, `${apiVersion} ${kind}: not served by this cluster`, 'NotFound');
      info = { plural: r.name, namespaced: r.namespaced };
      this.discovered.set(key, info);
    }
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${info.plural}/${encodeURIComponent(name)}`;
  }
}
