import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SendingPoolSchema,
  MailDomainSchema,
  parseSendingPool,
  parseMailDomain,
  parseMailDomainCached,
  setCondition,
  conditionsEqual,
  isConditionTrue,
  durationMs,
  WARMUP_PRESETS,
  warmupSteps,
  type SendingPoolInput,
} from './index.ts';

function poolInput(spec: Record<string, unknown> = {}, name = 'bulk'): SendingPoolInput {
  return {
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'SendingPool',
    metadata: { name, namespace: 'mail' },
    spec: {
      ips: [{ address: '203.0.113.10', hostname: 'mta1.example.net' }],
      submission: { tlsSecretRef: { name: 'tls' } },
      ...spec,
    },
  } as SendingPoolInput;
}

function problems(input: unknown): string[] {
  const r = parseSendingPool(input);
  return r.ok ? [] : r.problems;
}

test('a minimal pool gets the documented defaults', () => {
  const p = SendingPoolSchema.parse(poolInput());
  assert.equal(p.spec.egress.mode, 'none');
  assert.deepEqual(p.spec.health, {
    bounceReviewPercent: 5,
    bouncePausePercent: 10,
    complaintReviewPercent: 0.1,
    complaintPausePercent: 0.3,
    minimumVolume: 500,
  });
  assert.equal(p.spec.submission.serviceType, 'ClusterIP');
  assert.deepEqual(p.spec.submission.ports, [{ name: 'submission', port: 587, tls: 'starttls' }]);
  assert.equal(p.spec.storage.size, '10Gi');
  assert.equal(p.spec.ips[0]!.weight, 100);
  assert.ok(p.spec.limits.providers.some((x) => x.name === 'google' && x.maxConnections === 5));
});

const cases: [string, Record<string, unknown>, RegExp][] = [
  [
    'duplicate addresses',
    { ips: [{ address: '203.0.113.10', hostname: 'a.example.net' }, { address: '203.0.113.10', hostname: 'b.example.net' }] },
    /spec\.ips: ips: each address may appear only once/,
  ],
  [
    'one IPv6 address in two spellings',
    { ips: [{ address: '2001:db8::7', hostname: 'a.example.net' }, { address: '2001:DB8:0:0:0:0:0:7', hostname: 'b.example.net' }] },
    /spec\.ips: ips: each address may appear only once/,
  ],
  ['an address that is not an IP', { ips: [{ address: '203.0.113.300', hostname: 'a.example.net' }] }, /spec\.ips\[0\]\.address/],
  [
    'warm-up preset and steps together',
    { ips: [{ address: '203.0.113.10', hostname: 'a.example.net', warmup: { preset: 'fast-14d', steps: [{ day: 0, dailyLimit: 10 }] } }] },
    /spec\.ips\[0\]\.warmup: warmup: set exactly one of preset or steps/,
  ],
  [
    'warm-up days not increasing',
    { ips: [{ address: '203.0.113.10', hostname: 'a.example.net', warmup: { steps: [{ day: 2, dailyLimit: 10 }, { day: 2, dailyLimit: 20 }] } }] },
    /days must be strictly increasing/,
  ],
  [
    'warm-up limits not increasing',
    { ips: [{ address: '203.0.113.10', hostname: 'a.example.net', warmup: { steps: [{ day: 0, dailyLimit: 10 }, { day: 2, dailyLimit: 10 }] } }] },
    /dailyLimit must be strictly increasing/,
  ],
  ['multus without settings', { egress: { mode: 'multus' } }, /egress\.multus must be set/],
  ['multus settings in another mode', { egress: { mode: 'none', multus: { master: 'eth1' } } }, /egress\.multus must be set/],
  ['hostNetwork without nodeName', { egress: { mode: 'hostNetwork' } }, /nodeName is required/],
  ['TLS port without a TLS secret', { submission: {} }, /tlsSecretRef is required/],
  ['burst below rate', { limits: { messagesPerSecond: 100, burst: 10 } }, /burst must be at least/],
  ['review above pause', { health: { bounceReviewPercent: 12 } }, /bounceReviewPercent must be below/],
  ['unknown field', { egres: {} }, /spec\.egres: unknown field/],
];

for (const [name, spec, expected] of cases) {
  test(`zod refuses ${name}, naming the field`, () => {
    const found = problems(poolInput(spec));
    assert.ok(found.some((p) => expected.test(p)), `expected ${expected} in ${JSON.stringify(found)}`);
  });
}

test('hostNetwork IPs must sit on different nodes', () => {
  const found = problems(
    poolInput({
      egress: { mode: 'hostNetwork' },
      ips: [
        { address: '203.0.113.10', hostname: 'a.example.net', nodeName: 'node-a' },
        { address: '203.0.113.11', hostname: 'b.example.net', nodeName: 'node-a' },
      ],
    }),
  );
  assert.ok(found.some((p) => /must differ/.test(p)), JSON.stringify(found));
});

test('a pool name longer than 30 characters is refused', () => {
  assert.ok(problems(poolInput({}, 'a'.repeat(31))).some((p) => /at most 30 characters/.test(p)));
});

test('MailDomain defaults', () => {
  const d = MailDomainSchema.parse({
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'MailDomain',
    metadata: { name: 'example' },
    spec: { domain: 'example.com', poolRef: { name: 'bulk' } },
  });
  assert.deepEqual(d.spec.dkim, { selector: 'mailfleet', algorithm: 'rsa2048', rotateAfter: '4320h', gracePeriod: '168h' });
  assert.equal(d.spec.returnPath.subdomain, 'bounces');
  assert.equal(d.spec.dmarc.policy, 'none');
});

test('setCondition keeps lastTransitionTime while the status holds', () => {
  const t0 = new Date('2026-01-01T00:00:00.123Z');
  const t1 = new Date('2026-01-01T01:00:00Z');
  let c = setCondition([], { type: 'Ready', status: 'False', reason: 'Pending', message: 'waiting', observedGeneration: 1 }, t0);
  assert.equal(c[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const same = setCondition(c, { type: 'Ready', status: 'False', reason: 'StillPending', message: 'still', observedGeneration: 2 }, t1);
  assert.equal(same[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(same[0]!.reason, 'StillPending');
  assert.equal(same[0]!.observedGeneration, 2);
  c = setCondition(same, { type: 'Ready', status: 'True', reason: 'AllIPsReady', message: 'ok', observedGeneration: 2 }, t1);
  assert.equal(c[0]!.lastTransitionTime, '2026-01-01T01:00:00Z');
  assert.ok(isConditionTrue(c, 'Ready'));
  c = setCondition(c, { type: 'Degraded', status: 'False', reason: 'Healthy', message: '' }, t1);
  assert.equal(c.length, 2);
  assert.ok(conditionsEqual(c, [...c].reverse()));
  assert.ok(!conditionsEqual(c, same));
  // A repeated identical update changes nothing, so the controller can skip the write.
  assert.ok(conditionsEqual(c, setCondition(c, { type: 'Degraded', status: 'False', reason: 'Healthy', message: '' }, new Date())));
});

test('warm-up presets are valid step lists and durations parse', () => {
  for (const steps of Object.values(WARMUP_PRESETS)) {
    assert.ok(steps.length > 3);
    steps.forEach((s, i) => i > 0 && assert.ok(s.day > steps[i - 1]!.day && s.dailyLimit > steps[i - 1]!.dailyLimit));
  }
  assert.equal(warmupSteps({ preset: 'fast-14d' }).at(-1)!.day, 14);
  assert.equal(durationMs('2d'), 48 * 3600 * 1000);
  assert.equal(durationMs('4320h'), 180 * 24 * 3600 * 1000);
});

test('a kept MailDomain parse shares the parts the parse did not change with the cached object', () => {
  // As the apiserver stores one: defaults filled (parse changes nothing in the spec), a status.
  const spec = MailDomainSchema.parse({ apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', metadata: { name: 'x' }, spec: { domain: 'example.com', poolRef: { name: 'bulk' } } }).spec;
  const raw = {
    apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain',
    metadata: { name: 'example', namespace: 'mail', uid: 'u1', resourceVersion: '7', generation: 1 },
    spec: JSON.parse(JSON.stringify(spec)),
    status: {
      observedGeneration: 1, dkimSecretName: 'example-dkim-mailfleet',
      selectors: [{ selector: 'mailfleet', algorithm: 'rsa2048', secretName: 'example-dkim-mailfleet', state: 'Active', createdAt: '2026-12-06T00:00:00Z' }],
      conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok', lastTransitionTime: '2026-12-06T00:00:00Z', observedGeneration: 1 }],
    },
  };
  const r = parseMailDomainCached(raw);
  assert.ok(r.ok, r.ok ? '' : r.problems.join('; '));
  const fresh = parseMailDomain(raw);
  assert.ok(fresh.ok);
  assert.deepEqual(r.value, fresh.value, 'the same value as a parse of its own');
  assert.equal(r.value.status, raw.status, 'the status is the cached one (not a second copy)');
  assert.equal(r.value.spec, raw.spec as unknown, 'the spec too');
  assert.equal(parseMailDomainCached(raw), r, 'kept per object and resourceVersion');

  // Defaults the parse fills (an object written before they existed): its own copy, with them.
  const old = { ...raw, metadata: { ...raw.metadata, resourceVersion: '8' }, spec: { domain: 'example.com', poolRef: { name: 'bulk' } } };
  const o = parseMailDomainCached(old);
  assert.ok(o.ok);
  assert.notEqual(o.value.spec, old.spec as unknown);
  assert.equal(o.value.spec.dkim.selector, 'mailfleet');
  assert.equal(o.value.status, old.status, 'the unchanged status still shared');
});
