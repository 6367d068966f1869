// The relay config the operator renders for each IP (operator/render/relay-config.ts): what the
// relay schema accepts, provider overrides, domains, warm-up, and which changes restart a relay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { RelayConfigSchema } from '../../relay/config/schema.ts';
import { pool, domain } from './fixtures.test-helper.ts';
import { renderPoolChildren, renderRelayConfig, RenderError, type RenderedObject } from './index.ts';

const spec = (o: RenderedObject) => o.spec as Record<string, any>;
const byKind = (objs: RenderedObject[], kind: string) => objs.filter((o) => o.kind === kind);

test('the ConfigMap holds one relay config per IP that the relay schema accepts', () => {
  const p = pool();
  const cm = renderPoolChildren(p, [domain()]).find((o) => o.kind === 'ConfigMap')!;
  const data = cm.data as Record<string, string>;
  assert.equal(Object.keys(data).length, 2);
  for (const text of Object.values(data)) {
    const cfg = RelayConfigSchema.parse(parse(text));
    assert.equal(cfg.dataDir, '/var/lib/mailfleet');
    assert.equal(cfg.listeners[0]!.port, 10587);
    assert.equal(cfg.domains[0]!.domain, 'example.com');
    assert.match(cfg.domains[0]!.dkim[0]!.keyFile, /^\/etc\/mailfleet\/dkim\/example-com-dkim-mailfleet\/private\.pem$/);
  }
  // Each pod mounts its own key as relay.yaml.
  const set = byKind(renderPoolChildren(p, [domain()]), 'StatefulSet')[0]!;
  const cfgVol = spec(set).template.spec.volumes.find((v: { name: string }) => v.name === 'config');
  assert.ok(Object.keys(data).includes(cfgVol.configMap.items[0].key));
});

test('the relay config carries the IP hostname, binds the source only where the address is local', () => {
  const none = renderRelayConfig(pool(), [], '203.0.113.10');
  assert.equal(none.hostname, 'mta1.example.net');
  assert.deepEqual(none.delivery?.egressIps, []);
  const multus = renderRelayConfig(pool({ egress: { mode: 'multus', multus: { master: 'eth1' } } }), [], '2001:db8::25');
  assert.deepEqual(multus.delivery?.egressIps, [{ address: '2001:db8::25', hostname: 'mta2.example.net', weight: 100 }]);
  const all = renderRelayConfig(pool({ egress: { mode: 'multus', multus: { master: 'eth1' } } }), []);
  assert.equal(all.delivery?.egressIps?.length, 2);
  assert.throws(() => renderRelayConfig(pool(), [], '192.0.2.1'), RenderError);
});

test('pool limits reach the relay: provider shaping one to one, the intake rate split over the relays', () => {
  const p = pool({
    limits: {
      messagesPerSecond: 50,
      burst: 100,
      providers: [
        { name: 'default', maxConnections: 8, messagesPerConnection: 40, messagesPerSecond: 20, newConnectionsPerMinute: 30 },
        { name: 'google', mxSuffixes: ['google.com'], maxConnections: 3 },
      ],
    },
  });
  const cfg = renderRelayConfig(p, [], '203.0.113.10');
  assert.deepEqual(cfg.shaping?.providers, [
    { name: 'default', mxSuffixes: [], maxConnections: 8, newConnectionsPerMinute: 30, messagesPerConnection: 40, messagesPerSecond: 20 },
    { name: 'google', mxSuffixes: ['google.com'], maxConnections: 3 },
  ]);
  // Two IPs, two relays behind one Service: each admits half.
  assert.deepEqual(cfg.intakeRate?.pool, { messagesPerSecond: 25, burst: 50 });
});

test('a pool that leaves limits.providers at its default renders no provider overrides: the relay\'s defaults apply', () => {
  const p = pool();
  assert.ok(p.spec.limits.providers.length > 0, 'the CRD default shows the relay\'s providers');
  assert.deepEqual(p.spec.limits.providers.find((x) => x.name === 'yahoo')?.mxSuffixes, ['yahoodns.net', 'yahoo.com', 'aol.com']);
  assert.deepEqual(renderRelayConfig(p, [], '203.0.113.10').shaping?.providers, []);
});

test('domains of other pools or namespaces are left out', () => {
  const other = domain({ poolRef: { name: 'other' } }, 'other');
  const cfg = renderRelayConfig(pool(), [domain(), other], '203.0.113.10');
  assert.deepEqual(cfg.domains?.map((d) => d.domain), ['example.com']);
  assert.deepEqual(cfg.acceptDomains, ['bounces.example.com']);
});

test('only restart-only config changes change the pod template; the rest reaches the relay live', () => {
  const hash = (objs: RenderedObject[]) => spec(byKind(objs, 'StatefulSet')[0]!).template.metadata.annotations['mailfleet.io/config-hash'];
  const cm = (objs: RenderedObject[]) => JSON.stringify(objs.find((o) => o.kind === 'ConfigMap')!.data);
  const before = renderPoolChildren(pool(), []);
  // A new MailDomain, a new warm-up plan, new shaping: the ConfigMap changes, the pods do not restart.
  for (const after of [
    renderPoolChildren(pool(), [domain()]),
    renderPoolChildren(pool({ ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net', warmup: { preset: 'conservative-45d' } }, { address: '2001:db8::25', hostname: 'mta2.example.net' }] }), []),
    renderPoolChildren(pool({ limits: { providers: [{ name: 'google', maxConnections: 2 }] } as never }), []),
  ]) {
    assert.notEqual(cm(after), cm(before));
    assert.equal(hash(after), hash(before));
  }
  // A new submission port is a new listener: a restart.
  const ports = renderPoolChildren(pool({ submission: { tlsSecretRef: { name: 'relay-tls' }, authSecretRef: { name: 'relay-auth' }, ports: [{ name: 'submission', port: 2525, tls: 'starttls' }] } as never }), []);
  assert.notEqual(hash(ports), hash(before));
});

test('the relay config carries the warm-up plan (presets written out as steps) and the carried state', () => {
  const cfg = RelayConfigSchema.parse(renderRelayConfig(pool(), [], '203.0.113.10'));
  const [w] = cfg.shaping.warmup;
  assert.equal(w!.address, undefined, 'egress none: the relay binds no address, its one source is this IP');
  assert.deepEqual(w!.plan!.steps!.slice(0, 2), [{ day: 0, dailyLimit: 500 }, { day: 2, dailyLimit: 710 }]);
  assert.deepEqual(w!.state, { countedDays: 0 });
  assert.deepEqual(RelayConfigSchema.parse(renderRelayConfig(pool(), [], '2001:db8::25')).shaping.warmup, [], 'no plan: warm');
  // The state the relay last reported (status) is carried, so a relay on a new volume does not start over.
  const reported = pool();
  reported.status = { ips: [{ address: '203.0.113.10', state: 'WarmingUp', warmupDay: 4, warmupCountedThrough: '2026-12-05', warmupStartedAt: '2026-12-01T00:00:00Z' }] };
  assert.deepEqual(RelayConfigSchema.parse(renderRelayConfig(reported, [], '203.0.113.10')).shaping.warmup[0]!.state, { countedDays: 4, countedThrough: '2026-12-05', startedOn: '2026-12-01' });
  // hostNetwork binds the address: the entry names it.
  const bound = pool({ egress: { mode: 'hostNetwork' }, ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net', nodeName: 'n1', warmup: { steps: [{ day: 0, dailyLimit: 50 }], minDailyVolume: 10 } }] });
  const b = RelayConfigSchema.parse(renderRelayConfig(bound, [], '203.0.113.10')).shaping.warmup[0]!;
  assert.deepEqual([b.address, b.plan!.steps, b.plan!.minDailyVolume], ['203.0.113.10', [{ day: 0, dailyLimit: 50 }], 10]);
});

test('SMTP session threads: the pool\'s number; else auto under a CPU limit (the relay reads its cgroup quota); else from the CPU requested', () => {
  const hash = (objs: RenderedObject[]) => spec(byKind(objs, 'StatefulSet')[0]!).template.metadata.annotations['mailfleet.io/config-hash'];
  const sub = { tlsSecretRef: { name: 'relay-tls' }, authSecretRef: { name: 'relay-auth', key: 'credentials' } };
  const threads = (p: ReturnType<typeof pool>) => RelayConfigSchema.parse(renderRelayConfig(p, [], '203.0.113.10')).intake.workerThreads;
  // The CRD's default resources: 250m requested, no CPU limit: sessions on the main thread.
  assert.equal(threads(pool()), 0);
  assert.equal(threads(pool({ resources: { requests: { cpu: '1500m', memory: '256Mi' } } })), 0);
  // A CPU limit of one: 'auto', which the relay resolves to sessions on the main thread.
  assert.equal(threads(pool({ resources: { limits: { cpu: '1', memory: '512Mi' } } })), 'auto');
  assert.equal(threads(pool({ submission: { ...sub, workerThreads: 0 } as never })), 0);
  assert.equal(threads(pool({ resources: { requests: { cpu: '2500m', memory: '256Mi' } } })), 1);
  assert.equal(threads(pool({ resources: { requests: { cpu: '3', memory: '256Mi' } } })), 2);
  assert.equal(threads(pool({ resources: { requests: { cpu: '1' }, limits: { cpu: '2', memory: '512Mi' } } })), 'auto');
  const two = pool({ submission: { ...sub, workerThreads: 2 } as never });
  assert.equal(threads(two), 2);
  assert.notEqual(hash(renderPoolChildren(two, [domain()])), hash(renderPoolChildren(pool(), [domain()])));
});

test('the operator\'s warm-up decision (status) is rendered as the stage the relay enforces', () => {
  const decided = pool();
  decided.status = { ips: [{ address: '203.0.113.10', state: 'WarmingUp', warmupDay: 4, warmupCountedThrough: '2026-12-05', warmupStartedAt: '2026-12-01T00:00:00Z', warmupDecidedStage: 1, warmupDecidedDay: 3, warmupProviderStages: [{ provider: 'outlook', stage: 0 }, { provider: 'gmail', stage: 0 }] }] };
  const state = RelayConfigSchema.parse(renderRelayConfig(decided, [], '203.0.113.10')).shaping.warmup[0]!.state;
  // The operator's days, not the relay's last report: no countedThrough for the relay to add to.
  assert.deepEqual(state, { countedDays: 3, startedOn: '2026-12-01', stage: 1, providerStages: [{ provider: 'gmail', stage: 0 }, { provider: 'outlook', stage: 0 }] });
  // No decision yet: no stage, the relay counts days as before.
  const none = pool();
  none.status = { ips: [{ address: '203.0.113.10', state: 'WarmingUp', warmupDay: 4, warmupCountedThrough: '2026-12-05' }] };
  assert.equal(RelayConfigSchema.parse(renderRelayConfig(none, [], '203.0.113.10')).shaping.warmup[0]!.state!.stage, undefined);
});
