// The whole product on the test node: the chart installed with helm (the operator as a real pod
// from the image the Dockerfile built, with the chart's ServiceAccount and RBAC), ready for
// SendingPools and MailDomains. docs/test-node.md.
//
//   const fleet = await startFleet();                    // startNode() + installOperator()
//   if ('skipped' in fleet) { … }
//   after(() => fleet.stop());
//   await fleet.kubectl(['apply', '-f', '-'], poolYaml);  // relay pods run on fleet.node
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { addCredential } from '../../relay/intake/credentials.ts';
import { makeCertificate } from '../support/certs.ts';
import { startDnsmasq, type Dnsmasq, type DnsRecords } from '../support/dnsmasq.ts';
import { startSink, type Sink, type SinkOptions } from '../support/sink.ts';
import { repoRoot, startNode, type NodeInfo, type TestNode } from './node.ts';

export interface Operator {
  /** Namespace of the helm release (the operator's Deployment, ServiceAccount, Lease). */
  namespace: string;
  release: string;
  /** Name of the running operator pod. */
  pod: string;
}

export type Fleet = TestNode & { operator: Operator };

export const chartDir = join(repoRoot, 'charts', 'mailfleet');

/**
 * `helm install` of charts/mailfleet with the node's local image (pullPolicy Never: nothing can
 * be pulled), waiting until the operator pod is Ready. `values` are extra `--set` pairs.
 */
/** A `--set` pair, or one computed from the started node (addresses known only then). */
export type HelmValue = string | ((node: TestNode) => string);

export async function installOperator(node: TestNode, opts: { namespace?: string; release?: string; values?: HelmValue[] } = {}): Promise<Operator> {
  const namespace = opts.namespace ?? 'mailfleet-system';
  const release = opts.release ?? 'mailfleet';
  const set = [
    `image.repository=${node.images.repository}`,
    `image.tag=${node.images.tag}`,
    'image.pullPolicy=Never',
    ...(opts.values ?? []).map((v) => (typeof v === 'function' ? v(node) : v)),
  ];
  await node.helm(['install', release, chartDir, '-n', namespace, '--create-namespace', '--wait', '--timeout', '180s', ...set.flatMap((s) => ['--set', s])]);
  const selector = `app.kubernetes.io/instance=${release}`;
  await node.kubectl(['wait', '-n', namespace, '--for=condition=Ready', 'pod', '-l', selector, '--timeout=120s']);
  const pod = (await node.kubectl(['get', 'pod', '-n', namespace, '-l', selector, '-o', 'jsonpath={.items[0].metadata.name}'])).trim();
  return { namespace, release, pod };
}

export interface FleetOptions {
  /** Namespace of the helm release (default mailfleet-system). */
  namespace?: string;
  /** Extra `helm install --set` pairs. */
  values?: HelmValue[];
  /** How many nodes (default 1; two for the example pool's two hostNetwork IPs). */
  nodes?: number;
}

export async function startFleet(opts: FleetOptions = {}): Promise<Fleet | { skipped: string }> {
  const node = await startNode({ nodes: opts.nodes });
  if ('skipped' in node) return node;
  try {
    const operator = await installOperator(node, opts);
    return Object.assign(node, { operator });
  } catch (e) {
    await node.stop();
    throw e;
  }
}

export interface MxOptions {
  /** Recipient domain → the host name of its MX (each such host has an A record at the node's host end). */
  mx: Record<string, string>;
  /** Zones dnsmasq answers itself, NXDOMAIN for other names in them (default ["test"]). */
  localZones?: string[];
  /** More records, from the node (e.g. a DNSBL entry or a PTR for its egress address). */
  records?: (node: NodeInfo) => Pick<DnsRecords, 'a' | 'txt' | 'ptr'>;
  /** Raw dnsmasq options, e.g. a --hostsdir whose files the suite rewrites (dnsmasq re-reads them). */
  extra?: (node: NodeInfo) => string[];
  onRcpt?: SinkOptions['onRcpt'];
  onData?: SinkOptions['onData'];
}

/** The recipients' side of the internet, as the node's pods see it. */
export interface NodeMx {
  sink: Sink;
  dns: Dnsmasq;
  /** Closes the sink and stops dnsmasq. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * One sink MX on the host end of the first node's link (hostIp, port 25, as on the internet) and
 * the DNS the node's pods use (dnsmasq on hostIp:53: the node's resolv.conf names it), with an MX
 * record for each recipient domain and an A record at hostIp for each MX host.
 */
export async function startNodeMx(node: NodeInfo, opts: MxOptions): Promise<NodeMx> {
  const sink = await startSink({ address: node.hostIp, port: 25, onRcpt: opts.onRcpt, onData: opts.onData });
  try {
    const hosts = [...new Set(Object.values(opts.mx))];
    const more = opts.records?.(node) ?? {};
    const dns = await startDnsmasq({
      ...more,
      localZones: opts.localZones ?? ['test'],
      mx: Object.entries(opts.mx).map(([domain, host]) => ({ domain, host, preference: 10 })),
      a: [...hosts.map((name) => ({ name, address: node.hostIp })), ...(more.a ?? [])],
      extra: opts.extra?.(node) ?? [],
    }, node.hostIp, 53);
    let stopped: Promise<void> | undefined;
    return { sink, dns, stop: () => (stopped ??= Promise.all([sink.close(), dns.stop()]).then(() => {})) };
  } catch (e) {
    await sink.close();
    throw e;
  }
}

/** A fleet with its recipients' MX and DNS (startNodeMx on the first node): what a node suite shares between its cases. */
export type MailFleet = Fleet & { sink: Sink; dns: Dnsmasq };

/**
 * startFleet + startNodeMx, for the one fleet a suite starts in `before`; its stop() stops the MX
 * and DNS, then the fleet. Under CI=true a node that cannot start throws (see skipOrFail).
 */
export async function startMailFleet(opts: FleetOptions & MxOptions): Promise<MailFleet | { skipped: string }> {
  const fleet = await startFleet(opts);
  if ('skipped' in fleet) return fleet;
  let mx: NodeMx;
  try {
    mx = await startNodeMx(fleet.node, opts);
  } catch (e) {
    await fleet.stop();
    throw e;
  }
  const stopFleet = fleet.stop;
  let stopped: Promise<void> | undefined;
  return Object.assign(fleet, {
    sink: mx.sink,
    dns: mx.dns,
    stop: () => (stopped ??= mx.stop().catch(() => {}).then(stopFleet)),
  });
}

export interface ExamplePool {
  namespace: string;
  /** The pool's first egress address (on the first node; what the sink sees as the client address). */
  poolIp: string;
  /** Every egress address of the pool, IP i on node i. */
  poolIps: string[];
  /** ClusterIP of the pool's submission Service (routed from the test process), port 587. */
  serviceIp: string;
  /** An AUTH user in the relay-auth Secret. */
  user: string;
  password: string;
}

/**
 * examples/maildomain.yaml and examples/sendingpool.yaml applied as a user would, with the
 * Secrets the pool asks for (a self-signed relay-tls, relay-auth with one user), adapted to the
 * nodes in the one way it needs: egress hostNetwork, IP i on node i at that node's first egress
 * address (the examples keep `none` and TEST-NET addresses no test machine has; hostNetwork
 * allows one relay per node, so one node runs the pool's first IP only, two run both).
 * `retry` overrides the pool's retry schedule (tests: retries after 1 s); `edit` changes the
 * adapted SendingPool before it is applied (e.g. warm-up plans), `editDomain` the MailDomain.
 * `egress: 'none'` keeps the examples' own mode: both IPs' relays on the first node, on the pod
 * network, behind one bounce Service (`<pool>-mx`). Resolves once every relay pod is Ready.
 */
export async function applyExamples(
  fleet: TestNode,
  opts: {
    namespace?: string;
    retry?: Record<string, number>;
    password?: string;
    egress?: 'hostNetwork' | 'none';
    edit?: (pool: { spec: Record<string, unknown> & { ips: Record<string, unknown>[] } }) => void;
    editDomain?: (domain: { spec: Record<string, unknown> }) => void;
  } = {},
): Promise<ExamplePool> {
  const namespace = opts.namespace ?? 'default';
  const user = 'app';
  const password = opts.password ?? randomBytes(12).toString('base64url');
  const dir = await mkdtemp(join(tmpdir(), 'mailfleet-examples-'));
  try {
    const tls = makeCertificate(dir);
    await addCredential(join(dir, 'credentials'), user, password);
    if (namespace !== 'default') await fleet.kubectl(['create', 'namespace', namespace]).catch(() => '');
    await fleet.kubectl(['create', 'secret', 'tls', 'relay-tls', '-n', namespace, `--cert=${tls.certFile}`, `--key=${tls.keyFile}`]);
    await fleet.kubectl(['create', 'secret', 'generic', 'relay-auth', '-n', namespace, `--from-file=credentials=${join(dir, 'credentials')}`]);
    const pool = parseDocument(await readFile(join(repoRoot, 'examples', 'sendingpool.yaml'), 'utf8')).toJSON() as {
      spec: { egress: unknown; ips: Record<string, unknown>[]; retry?: Record<string, number> };
    };
    if (opts.egress !== 'none') {
      pool.spec.egress = { mode: 'hostNetwork' };
      pool.spec.ips = pool.spec.ips.slice(0, fleet.nodes.length).map((ip, i) => ({ ...ip, address: fleet.nodes[i]!.egressIps[0]!, nodeName: fleet.nodes[i]!.name }));
    }
    const ips = pool.spec.ips;
    const poolIps = ips.map((ip) => ip.address as string);
    if (opts.retry) pool.spec.retry = { ...pool.spec.retry, ...opts.retry };
    // Last word to the test (after the node adaptation above): warm-up plans, limits.
    opts.edit?.(pool as unknown as { spec: Record<string, unknown> & { ips: Record<string, unknown>[] } });
    await writeFile(join(dir, 'sendingpool.yaml'), stringify(pool));
    const domain = parseDocument(await readFile(join(repoRoot, 'examples', 'maildomain.yaml'), 'utf8')).toJSON() as { spec: Record<string, unknown> };
    opts.editDomain?.(domain);
    await writeFile(join(dir, 'maildomain.yaml'), stringify(domain));
    await fleet.kubectl(['apply', '-n', namespace, '-f', join(dir, 'maildomain.yaml'), '-f', join(dir, 'sendingpool.yaml')]);
    const serviceIp = await poll('the submission Service', async () => (await fleet.kubectl(['get', 'svc', '-n', namespace, 'transactional', '-o', 'jsonpath={.spec.clusterIP}'])).trim() || undefined);
    await poll('a Ready relay pod', async () => {
      const out = await fleet.kubectl(['get', 'pods', '-n', namespace, '-l', 'mailfleet.io/pool=transactional', '-o', 'jsonpath={.items[*].status.containerStatuses[*].ready}']);
      const ready = out.trim().split(/\s+/);
      return ready.length === ips.length && ready.every((r) => r === 'true') ? true : undefined;
    }, 180_000);
    return { namespace, poolIp: poolIps[0]!, poolIps, serviceIp, user, password };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Polls `check` every 250 ms until it returns a value (the API has no event for these). */
export async function poll<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
