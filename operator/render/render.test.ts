import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service, Secret } from 'kubernetes-models/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parse } from 'yaml';
import { pool, domain } from './fixtures.test-helper.ts';
import { generateDkimKey } from '../controllers/maildomain/keys.ts';
import {
  renderPoolChildren,
  renderRelayConfig,
  renderDkimSecret,
  dkimKeyFromSecret,
  requiredDnsRecords,
  recordMatches,
  summarizePoolStatus,
  isClusterScoped,
  relayName,
  RenderError,
  MULTUS_NETWORKS_ANNOTATION,
  type RenderedObject,
} from './index.ts';

type Validatable = { validate(): void };
const MODELS: Record<string, new (o: never) => Validatable> = {
  'v1/ConfigMap': ConfigMap as never,
  'v1/Service': Service as never,
  'v1/Secret': Secret as never,
  'apps/v1/StatefulSet': StatefulSet as never,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as never,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as never,
};

/** Validates against the Kubernetes OpenAPI schema where kubernetes-models has one; returns whether it did. */
function validateModel(obj: RenderedObject): boolean {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) return false;
  new Model(structuredClone(obj) as never).validate();
  return true;
}

const spec = (o: RenderedObject) => o.spec as Record<string, any>;
const byKind = (objs: RenderedObject[], kind: string) => objs.filter((o) => o.kind === kind);

test('every child validates, is owned by the pool and labelled', () => {
  const p = pool();
  const objs = renderPoolChildren(p, [domain()]);
  assert.deepEqual(objs.map((o) => o.kind).sort(), [
    'ConfigMap', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'Service', 'Service', 'StatefulSet', 'StatefulSet',
  ]);
  for (const o of objs) {
    assert.ok(validateModel(o), `${o.kind} has no model`);
    assert.equal(o.metadata.namespace, 'mail');
    assert.deepEqual(o.metadata.ownerReferences, [
      { apiVersion: 'mailfleet.io/v1alpha1', kind: 'SendingPool', name: 'bulk', uid: p.metadata.uid, controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(o.metadata.labels['app.kubernetes.io/instance'], 'bulk');
    assert.equal(o.metadata.labels['app.kubernetes.io/managed-by'], 'mailfleet-operator');
    assert.ok(o.metadata.name.length <= 63, o.metadata.name);
  }
  const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
  assert.equal(new Set(names).size, names.length, 'duplicate child names');
});

test('rendering is deterministic and independent of IP order', () => {
  const a = renderPoolChildren(pool(), [domain()]);
  assert.deepEqual(a, renderPoolChildren(pool(), [domain()]));
  const p = pool();
  const reversed = pool({ ips: [...p.spec.ips].reverse() });
  const names = (objs: RenderedObject[]) => byKind(objs, 'StatefulSet').map((o) => o.metadata.name).sort();
  assert.deepEqual(names(a), names(renderPoolChildren(reversed, [domain()])));
});

test('one single-replica StatefulSet per IP with a queue PVC and restricted security', () => {
  const p = pool();
  const sets = byKind(renderPoolChildren(p, [domain()]), 'StatefulSet');
  assert.equal(sets.length, 2);
  for (const s of sets) {
    const sp = spec(s);
    assert.equal(sp.replicas, 1);
    assert.equal(sp.serviceName, 'bulk-relays');
    assert.deepEqual(sp.volumeClaimTemplates[0].spec.resources.requests, { storage: '10Gi' });
    const pod = sp.template.spec;
    const c = pod.containers[0];
    assert.deepEqual([c.command, c.args].flat(), ['mailfleet', 'relay', '--config', '/etc/mailfleet/config/relay.yaml']);
    // The config directory is mounted whole (no subPath), so the kubelet's updates reach the relay.
    const cfgMount = c.volumeMounts.find((m: { name: string }) => m.name === 'config');
    assert.deepEqual([cfgMount.mountPath, cfgMount.subPath], ['/etc/mailfleet/config', undefined]);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.equal(pod.hostNetwork, undefined);
    // Selector matches the template labels (the apiserver refuses the object otherwise).
    for (const [k, v] of Object.entries(sp.selector.matchLabels)) assert.equal(sp.template.metadata.labels[k], v);
    // Every mounted volume exists.
    const vols = new Set([...pod.volumes.map((v: { name: string }) => v.name), 'queue']);
    for (const m of c.volumeMounts) assert.ok(vols.has(m.name), m.name);
  }
  assert.equal(sets[0]!.metadata.name, relayName(p, '203.0.113.10'));
});

test('multus: a NAD and a per-pod static-IP annotation', () => {
  const p = pool({ egress: { mode: 'multus', multus: { master: 'eth1', prefixLength: 24, gateway: '203.0.113.1' } } });
  const objs = renderPoolChildren(p, []);
  const nad = objs.find((o) => o.kind === 'NetworkAttachmentDefinition')!;
  assert.equal(nad.apiVersion, 'k8s.cni.cncf.io/v1');
  const cni = JSON.parse(spec(nad).config);
  assert.equal(cni.type, 'macvlan');
  assert.deepEqual(cni.capabilities, { ips: true });
  const annotations = byKind(objs, 'StatefulSet').map((s) => JSON.parse(spec(s).template.metadata.annotations[MULTUS_NETWORKS_ANNOTATION]));
  assert.deepEqual(annotations[0], [{ name: 'bulk-egress', namespace: 'mail', ips: ['203.0.113.10/24'], 'default-route': ['203.0.113.1'] }]);
  assert.deepEqual(annotations[1][0].ips, ['2001:db8::25/24']);
  // An existing NAD is referenced, not rendered.
  const existing = renderPoolChildren(pool({ egress: { mode: 'multus', multus: { networkName: 'corp-egress' } } }), []);
  assert.equal(existing.find((o) => o.kind === 'NetworkAttachmentDefinition'), undefined);
});

test('ciliumEgressGateway: one cluster-scoped policy per IP selecting exactly that pod', () => {
  const p = pool({ egress: { mode: 'ciliumEgressGateway', ciliumEgressGateway: { nodeSelector: { 'egress-gateway': 'true' } } } });
  const objs = renderPoolChildren(p, []);
  const policies = objs.filter((o) => o.kind === 'CiliumEgressGatewayPolicy');
  assert.equal(policies.length, 2);
  for (const pol of policies) {
    assert.ok(isClusterScoped(pol));
    assert.equal(pol.metadata.namespace, undefined);
    assert.equal(pol.metadata.ownerReferences, undefined);
  }
  const sets = byKind(objs, 'StatefulSet');
  sets.forEach((s, i) => {
    const podLabels = spec(s).template.metadata.labels;
    const sel = spec(policies[i]!).selectors[0].podSelector.matchLabels;
    for (const [k, v] of Object.entries(sel)) if (k !== 'io.kubernetes.pod.namespace') assert.equal(podLabels[k], v);
    assert.equal(spec(policies[i]!).egressGateway.egressIP, p.spec.ips[i]!.address);
  });
  // Each policy's selector matches one pod only.
  assert.notDeepEqual(spec(policies[0]!).selectors, spec(policies[1]!).selectors);
});

test('hostNetwork: pinned to the node, host ports, still non-root with no capabilities', () => {
  const p = pool({
    egress: { mode: 'hostNetwork' },
    ips: [
      { address: '203.0.113.10', hostname: 'mta1.example.net', nodeName: 'node-a' },
      { address: '203.0.113.11', hostname: 'mta2.example.net', nodeName: 'node-b' },
    ],
  });
  const sets = byKind(renderPoolChildren(p, []), 'StatefulSet');
  const pod = spec(sets[1]!).template.spec;
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/hostname': 'node-b' });
  assert.ok(pod.containers[0].ports.every((port: { hostPort?: number; containerPort: number }) => port.hostPort === port.containerPort));
  assert.deepEqual(pod.containers[0].securityContext.capabilities.drop, ['ALL']);
  for (const s of sets) assert.ok(validateModel(s));
  const cfg = renderRelayConfig(p, [], '203.0.113.11');
  assert.deepEqual(cfg.delivery?.egressIps, [{ address: '203.0.113.11', hostname: 'mta2.example.net', weight: 100 }]);
});

test('submission Service maps well-known ports to the unprivileged container ports', () => {
  const p = pool({
    submission: {
      serviceType: 'LoadBalancer',
      tlsSecretRef: { name: 'tls' },
      ports: [
        { name: 'submission', port: 587 },
        { name: 'submissions', port: 465, tls: 'implicit' },
      ],
    },
  });
  const svc = renderPoolChildren(p, []).find((o) => o.kind === 'Service' && o.metadata.name === 'bulk')!;
  assert.deepEqual(
    spec(svc).ports.map((x: { port: number; targetPort: number }) => [x.port, x.targetPort]),
    [[587, 10587], [465, 10465]],
  );
  assert.equal(spec(svc).type, 'LoadBalancer');
  assert.equal(spec(svc).externalTrafficPolicy, 'Local');
});

test('rendering needs the pool uid (owner references)', () => {
  const p = pool();
  delete (p.metadata as { uid?: string }).uid;
  assert.throws(() => renderPoolChildren(p, []), /metadata\.uid is empty/);
});

for (const algorithm of ['rsa2048', 'ed25519'] as const) {
  test(`DKIM ${algorithm}: Secret validates, round-trips and the DNS key verifies signatures`, async () => {
    const d = domain({ dkim: { algorithm } });
    const key = await generateDkimKey(algorithm);
    const secret = renderDkimSecret(d, 'mailfleet', new Date('2026-11-29T20:00:00Z'), key);
    assert.ok(validateModel(secret));
    assert.equal(secret.metadata.name, 'example-com-dkim-mailfleet');
    assert.equal(secret.metadata.ownerReferences?.[0]?.kind, 'MailDomain');
    const back = dkimKeyFromSecret(secret as never)!;
    assert.deepEqual(back, { selector: 'mailfleet', algorithm, publicKey: key.publicKey });
    // Rebuild the public key from the DNS value the way a verifier does, and check a signature.
    const raw = Buffer.from(key.publicKey, 'base64');
    const pub =
      algorithm === 'ed25519'
        ? createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' })
        : createPublicKey({ key: raw, format: 'der', type: 'spki' });
    const priv = createPrivateKey(key.privateKeyPem);
    const data = Buffer.from('hello');
    const alg = algorithm === 'ed25519' ? null : 'sha256';
    assert.ok(verify(alg, data, pub, sign(alg, data, priv)));
    if (algorithm === 'ed25519') assert.equal(raw.length, 32);
  });
}

test('required DNS records: SPF on the return path, MX, DKIM, DMARC', () => {
  const d = domain({ dmarc: { policy: 'quarantine', rua: ['mailto:dmarc@example.com'] } });
  const records = requiredDnsRecords(d, pool(), [{ selector: 'mailfleet', algorithm: 'rsa2048', publicKey: 'QUJD' }]);
  assert.deepEqual(records, [
    { type: 'TXT', name: 'bounces.example.com', value: 'v=spf1 ip4:203.0.113.10 ip6:2001:db8::25 -all', purpose: 'spf' },
    { type: 'MX', name: 'bounces.example.com', value: 'mta1.example.net', priority: 10, purpose: 'return-path' },
    { type: 'MX', name: 'bounces.example.com', value: 'mta2.example.net', priority: 10, purpose: 'return-path' },
    { type: 'TXT', name: 'mailfleet._domainkey.example.com', value: 'v=DKIM1; k=rsa; p=QUJD', purpose: 'dkim' },
    { type: 'TXT', name: '_dmarc.example.com', value: 'v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com; adkim=r; aspf=r', purpose: 'dmarc' },
  ]);
  const cname = requiredDnsRecords(domain({ returnPath: { subdomain: 'rp', cname: 'bounces.mailfleet.example.net' } }), pool());
  assert.deepEqual(cname[0], { type: 'CNAME', name: 'rp.example.com', value: 'bounces.mailfleet.example.net', purpose: 'return-path' });
  assert.ok(!cname.some((r) => r.purpose === 'spf'));
});

test('recordMatches tolerates DNS formatting', () => {
  const [spf, mx] = requiredDnsRecords(domain(), pool());
  assert.ok(recordMatches(spf!, ['v=spf1 ip6:2001:db8::25 ip4:203.0.113.10 -all']));
  assert.ok(!recordMatches(spf!, ['v=spf1 ip4:203.0.113.10 -all']));
  assert.ok(recordMatches(mx!, [{ exchange: 'MTA1.example.net.', priority: 5 }]));
  const dmarc = requiredDnsRecords(domain(), pool()).at(-1)!;
  assert.ok(recordMatches(dmarc, ['v=DMARC1;p=none;adkim=r;aspf=r']));
});

test('summarizePoolStatus formats the printer columns', () => {
  const s = summarizePoolStatus(
    [
      { address: '203.0.113.10', state: 'Ready' },
      { address: '203.0.113.11', state: 'WarmingUp', warmupStage: 3, quotaToday: 1400 },
      { address: '203.0.113.12', state: 'Pending' },
    ],
    { bounceRate: 0.0123, complaintRate: 0.0004 },
  );
  assert.deepEqual(s, {
    readyIPs: 2,
    totalIPs: 3,
    notReadyRelays: 1,
    summary: { ips: '2/3', warmup: '1 warming: 1400/day', bounceRate: '1.2%', complaintRate: '0.04%' },
  });
  const two = summarizePoolStatus([
    { address: '203.0.113.10', state: 'WarmingUp', quotaToday: 500 },
    { address: '203.0.113.11', state: 'WarmingUp', quotaToday: 2000 },
  ]);
  assert.equal(two.summary?.warmup, '2 warming: 500-2000/day');
  assert.equal(summarizePoolStatus([{ address: '203.0.113.10', state: 'Ready' }]).summary?.warmup, 'done');
  // A relay that is not ready is still on its plan: the column does not say done.
  assert.equal(summarizePoolStatus([{ address: '203.0.113.10', state: 'Pending', warmupStage: 0, warmupDay: 0, quotaToday: 500 }]).summary?.warmup, '1 warming: 500/day');
  assert.equal(summarizePoolStatus([{ address: '203.0.113.10', state: 'Pending', warmupStage: 9, warmupDay: 31 }]).summary?.warmup, 'done');
  // A contested IP (another pool's) is not warming here.
  assert.equal(summarizePoolStatus([{ address: '203.0.113.10', state: 'Conflict', quotaToday: 500 }]).summary?.warmup, 'done');
  // A quarantined IP sends nothing: not in IPs' sending count, nor warming; NOT READY only when its pod is down
  // for another reason than leaving the Service on purpose (relayPod, ip-state.ts).
  const q = summarizePoolStatus([
    { address: '203.0.113.10', state: 'Quarantined', relayPod: 'OutOfService', quotaToday: 500 },
    { address: '203.0.113.11', state: 'Quarantined', relayPod: 'NotReady' },
    { address: '203.0.113.12', state: 'Ready', relayPod: 'Ready' },
  ]);
  assert.deepEqual([q.readyIPs, q.totalIPs, q.notReadyRelays, q.summary?.ips, q.summary?.warmup], [1, 3, 1, '1/3', 'done']);
});

test('a relay config over the ConfigMap size limit is a RenderError naming the way out', () => {
  const p = pool({ ips: Array.from({ length: 64 }, (_, i) => ({ address: `203.0.113.${i + 1}`, hostname: `mta${i}.example.net` })) });
  const many = Array.from({ length: 200 }, (_, i) => domain({ domain: `d${i}.example.com` }, `d${i}`));
  assert.throws(() => renderPoolChildren(p, many), (e: unknown) => e instanceof RenderError && /spread the MailDomains/.test(e.message));
});

test('a draining relay: its config says draining, its StatefulSet and egress policy stay; the served IPs are unchanged', () => {
  const p = pool({ ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net' }] });
  const leaving = { address: '203.0.113.11', hostname: 'mta2.example.net', weight: 100 };
  const before = renderPoolChildren(p, []);
  const after = renderPoolChildren(p, [], {}, [leaving]);
  const data = (objs: typeof after) => objs.find((o) => o.kind === 'ConfigMap')!['data'] as Record<string, string>;
  assert.deepEqual(Object.keys(data(after)).sort(), ['relay-203-0-113-10.yaml', 'relay-203-0-113-11.yaml']);
  assert.equal(data(after)['relay-203-0-113-10.yaml'], data(before)['relay-203-0-113-10.yaml'], 'a drain restarts no served relay');
  const cfg = parse(data(after)['relay-203-0-113-11.yaml']!) as { draining?: boolean; hostname: string };
  assert.deepEqual([cfg.draining, cfg.hostname], [true, 'mta2.example.net']);
  const sts = after.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `${p.metadata.name}-203-0-113-11`);
  assert.ok(sts, 'the draining relay keeps its StatefulSet');
  assert.deepEqual(JSON.parse(sts.metadata.annotations!['mailfleet.io/ip-spec']!), leaving, 'it carries what it takes to render it again');
});
