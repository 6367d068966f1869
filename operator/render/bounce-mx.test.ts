// The bounce MX as the operator renders it, per egress mode, and the return-path keys it rotates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Service, Secret } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parse } from 'yaml';
import { RelayConfigSchema } from '../../relay/config/schema.ts';
import { parseReturnPathKeys } from '../../relay/returnpath/keys.ts';
import { mintToken, verifyToken } from '../../relay/returnpath/token.ts';
import { newQueueId } from '../../relay/queue/id.ts';
import { pool, domain } from './fixtures.test-helper.ts';
import { renderPoolChildren, planReturnPathKeys, renderReturnPathKeySecret, returnPathKeysSecretName, RETURN_PATH_DIR, ipKey, type RenderedObject } from './index.ts';

const spec = (o: RenderedObject) => o.spec as Record<string, any>;
const services = (objs: RenderedObject[]) => objs.filter((o) => o.kind === 'Service' && o.metadata.labels['app.kubernetes.io/component'] === 'bounce-mx');
const relayYaml = (objs: RenderedObject[]) => {
  const cm = objs.find((o) => o.kind === 'ConfigMap')!;
  return Object.values(cm['data'] as Record<string, string>).map((y) => RelayConfigSchema.parse(parse(y)));
};

const MODES = {
  none: pool(),
  hostNetwork: pool({ egress: { mode: 'hostNetwork' }, ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net', nodeName: 'node-a' }, { address: '203.0.113.11', hostname: 'mta2.example.net', nodeName: 'node-b' }] }),
  multus: pool({ egress: { mode: 'multus', multus: { master: 'eth1' } } }),
  ciliumEgressGateway: pool({ egress: { mode: 'ciliumEgressGateway', ciliumEgressGateway: { nodeSelector: { 'egress-gateway': 'true' } } } }),
};

test('every relay runs an MX-role listener on an unprivileged port (25 itself only in multus), TLS with the pool certificate, return-path keys mounted', () => {
  for (const [mode, p] of Object.entries(MODES)) {
    const objs = renderPoolChildren(p, [domain()]);
    const inside = mode === 'multus' ? 25 : 10025;
    for (const cfg of relayYaml(objs)) {
      const mx = cfg.listeners.find((l) => l.role === 'mx');
      assert.ok(mx, mode);
      assert.equal(mx.port, inside, mode);
      assert.equal(mx.tls, 'starttls');
      assert.equal(mx.greetingDelayMs, undefined, 'the MX keeps its greeting delay');
      assert.equal(cfg.returnPath?.keysFile, `${RETURN_PATH_DIR}/keys.json`);
      assert.equal(cfg.returnPath?.pool, 'bulk');
      assert.deepEqual(cfg.acceptDomains, ['bounces.example.com']);
      assert.equal(cfg.domains[0]!.returnPathDomain, 'bounces.example.com');
    }
    for (const set of objs.filter((o) => o.kind === 'StatefulSet')) {
      new StatefulSet(structuredClone(set) as never).validate();
      const pod = spec(set).template.spec;
      const c = pod.containers[0];
      assert.ok(c.ports.some((x: { name: string; containerPort: number }) => x.name === 'mx' && x.containerPort === inside), mode);
      assert.ok(c.volumeMounts.some((m: { mountPath: string; subPath?: string }) => m.mountPath === RETURN_PATH_DIR && !m.subPath), 'a directory mount, so rotations reach the relay');
      assert.ok(pod.volumes.some((v: { secret?: { secretName: string } }) => v.secret?.secretName === returnPathKeysSecretName(p)));
      assert.deepEqual(c.securityContext.capabilities, { drop: ['ALL'] }, 'no capability, in every mode');
      if (mode === 'multus') assert.deepEqual(pod.securityContext.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '25' }]);
      else assert.equal(pod.securityContext.sysctls, undefined);
    }
    const np = objs.find((o) => o.kind === 'NetworkPolicy')!;
    new NetworkPolicy(structuredClone(np) as never).validate();
    assert.ok(spec(np).ingress.some((r: { from?: unknown; ports: { port: number }[] }) => !r.from && r.ports.some((x) => x.port === inside)), `${mode}: the NetworkPolicy opens the MX port to everyone`);
  }
});

test('port 25 reaches the relays: one Service in mode none, one per relay with its address as externalIP in hostNetwork and ciliumEgressGateway, none in multus', () => {
  const none = services(renderPoolChildren(MODES.none, []));
  assert.equal(none.length, 1);
  assert.equal(none[0]!.metadata.name, 'bulk-mx');
  assert.deepEqual(spec(none[0]!).ports, [{ name: 'smtp', port: 25, targetPort: 10025, protocol: 'TCP' }]);
  assert.equal(spec(none[0]!).type, 'ClusterIP');
  const lb = services(renderPoolChildren(pool({ submission: { serviceType: 'LoadBalancer', tlsSecretRef: { name: 'relay-tls' } } }), []));
  assert.equal(spec(lb[0]!).type, 'LoadBalancer');
  assert.equal(spec(lb[0]!).externalTrafficPolicy, 'Local');
  for (const mode of ['hostNetwork', 'ciliumEgressGateway'] as const) {
    const svcs = services(renderPoolChildren(MODES[mode], []));
    assert.equal(svcs.length, 2, mode);
    for (const [i, s] of svcs.entries()) {
      new Service(structuredClone(s) as never).validate();
      const ip = MODES[mode].spec.ips[i]!.address;
      assert.deepEqual(spec(s).externalIPs, [ip]);
      assert.deepEqual(spec(s).ports, [{ name: 'smtp', port: 25, targetPort: 10025, protocol: 'TCP' }]);
      assert.equal(spec(s).selector['mailfleet.io/ip'], ipKey(ip), 'selects only the relay that owns the address');
    }
  }
  assert.equal(services(renderPoolChildren(MODES.multus, [])).length, 0);
});

const DAY = 86_400_000;
const T0 = new Date('2026-12-01T00:00:00Z');
let n = 0;
const random = (bytes: number) => Buffer.alloc(bytes, ++n);

test('return-path keys: generated once, kept, rotated after 90 days with the old key verifying for its grace, then dropped', () => {
  const first = planReturnPathKeys(undefined, T0, random);
  assert.equal(first.changed, true);
  const keys1 = parseReturnPathKeys(first.json, 'secret');
  assert.equal(keys1.length, 1);
  assert.equal(keys1[0]!.acceptUntil, undefined);

  const same = planReturnPathKeys(first.json, new Date(T0.getTime() + 89 * DAY), random);
  assert.equal(same.changed, false, 'nothing to apply before the rotation is due');

  // A token minted with the first key, shortly before the rotation.
  const mintedAt = T0.getTime() + 89 * DAY;
  const token = mintToken({ queueId: newQueueId(mintedAt), recipient: 'r@example.net', pool: 'bulk' }, keys1[0]!, 'bounces.example.com');

  const rotated = planReturnPathKeys(first.json, new Date(T0.getTime() + 90 * DAY), random);
  assert.equal(rotated.rotated, true);
  const keys2 = parseReturnPathKeys(rotated.json, 'secret');
  assert.equal(keys2.length, 2);
  assert.notEqual(keys2[0]!.id, keys1[0]!.id, 'the new signing key has its own id');
  assert.equal(keys2[1]!.acceptUntil, T0.getTime() + 125 * DAY);
  const check = (now: number, keys: ReturnType<typeof parseReturnPathKeys>) => verifyToken(token, 'bounces.example.com', { keys, now, validityMs: 30 * DAY });
  assert.equal(check(T0.getTime() + 100 * DAY, keys2).reason, 'ok', 'a token of the old key still verifies during the grace');

  const later = planReturnPathKeys(rotated.json, new Date(T0.getTime() + 126 * DAY), random);
  const keys3 = parseReturnPathKeys(later.json, 'secret');
  assert.deepEqual(keys3.map((k) => k.id), [keys2[0]!.id], 'the retired key is dropped after its grace');

  const secret = renderReturnPathKeySecret(MODES.none, later.json);
  new Secret(structuredClone(secret) as never).validate();
  assert.equal(secret.metadata.name, 'bulk-return-path-keys');
  assert.equal(Buffer.from((secret['data'] as Record<string, string>)['keys.json']!, 'base64').toString(), later.json);
  assert.equal(planReturnPathKeys('not json', T0, random).changed, true, 'an unreadable document is replaced');
});
