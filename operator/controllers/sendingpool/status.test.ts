// poolStatus, one named case per row (the way CloudNativePG tests its status): inputs → the
// conditions and per-IP states a user sees with `kubectl get/describe sendingpool`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SendingPoolSchema, type SendingPool, type SendingPoolStatus } from '../../api/index.ts';
import { poolStatus, type PoolStatusInput, type RelayObserved } from './status.ts';
import { configKey } from '../../render/names.ts';
import { configVersion } from '../../../relay/config/version.ts';

const NOW = new Date('2026-12-01T12:00:00Z');
const T0 = '2026-11-30T00:00:00Z';

function pool(ips: Array<Record<string, unknown>> = [{ address: '203.0.113.7', hostname: 'a.example.test' }, { address: '203.0.113.8', hostname: 'b.example.test' }]): SendingPool {
  return SendingPoolSchema.parse({
    apiVersion: 'mailfleet.io/v1alpha1',
    kind: 'SendingPool',
    metadata: { name: 'p', namespace: 'ns', uid: 'u', generation: 3 },
    spec: { ips, submission: { ports: [{ name: 'submission', port: 587, tls: 'none' }] } },
  });
}

const ready: RelayObserved = { exists: true, ready: true };
const notReady: RelayObserved = { exists: true, ready: false };
const absent: RelayObserved = { exists: false, ready: false };
/** A quarantine record as the reputation loop writes it. */
const Q = { reason: 'Listed' as const, list: 'zen', answer: '127.0.0.2', since: T0, message: 'listed on zen (SBL: 127.0.0.2)' };

function input(over: Partial<PoolStatusInput> & { relayMap?: Record<string, RelayObserved> } = {}): PoolStatusInput {
  const { relayMap, ...rest } = over;
  return {
    generation: 3,
    now: NOW,
    prev: {},
    pool: pool(),
    relays: (a) => relayMap?.[a] ?? ready,
    podName: (a) => `p-${a.replaceAll('.', '-')}-0`,
    childrenApplied: 7,
    ...rest,
  };
}

interface Want {
  reconciled?: [string, string];
  ready: [string, string];
  readyMessage?: RegExp;
  states?: string[];
  summary?: Partial<NonNullable<SendingPoolStatus['summary']>>;
  notReady?: number;
  draining?: [string, string] | 'absent';
  drainingMessage?: RegExp;
  relayPods?: Array<string | undefined>;
  /** The first IP's message. */
  message?: RegExp;
  /** Each IP's quarantine.reason. */
  quarantine?: Array<string | undefined>;
}

const cases: Array<{ name: string; in: PoolStatusInput; want: Want }> = [
  {
    name: 'every relay ready: Ready=True RelaysReady',
    in: input(),
    want: { reconciled: ['True', 'ChildrenApplied'], ready: ['True', 'RelaysReady'], readyMessage: /^2\/2 relays ready$/, states: ['Ready', 'Ready'], notReady: 0, draining: 'absent' },
  },
  {
    name: 'one pod not ready: RelaysNotReady, the IP Pending, the not-ready column counts it',
    in: input({ relayMap: { '203.0.113.8': notReady } }),
    want: { ready: ['False', 'RelaysNotReady'], readyMessage: /^1\/2 relays ready$/, states: ['Ready', 'Pending'], notReady: 1, summary: { ips: '1/2' } },
  },
  {
    name: 'StatefulSets not created yet: Pending with that message',
    in: input({ relayMap: { '203.0.113.7': absent, '203.0.113.8': absent } }),
    want: { ready: ['False', 'RelaysNotReady'], states: ['Pending', 'Pending'], notReady: 2 },
  },
  {
    name: 'spec invalid (blocked): Reconciled and Ready False with the reason, no IP status',
    in: input({ pool: undefined, blocked: { reason: 'InvalidSpec', message: 'spec.ips: bad' } }),
    want: { reconciled: ['False', 'InvalidSpec'], ready: ['False', 'InvalidSpec'], readyMessage: /spec\.ips: bad/ },
  },
  {
    name: 'egress unavailable (blocked): Ready=False EgressUnavailable',
    in: input({ blocked: { reason: 'EgressUnavailable', message: 'spec.egress.mode: ciliumEgressGateway needs cilium.io/v2' } }),
    want: { reconciled: ['False', 'EgressUnavailable'], ready: ['False', 'EgressUnavailable'] },
  },
  {
    name: 'a referenced Secret missing: children applied, Ready=False SecretNotFound',
    in: input({ missing: { reason: 'SecretNotFound', message: 'spec.submission.tlsSecretRef.name: Secret "t" not found' } }),
    want: { reconciled: ['True', 'ChildrenApplied'], ready: ['False', 'SecretNotFound'] },
  },
  {
    name: 'an IP claimed by an earlier pool: Ready=False Conflict naming it and the field; that IP in state Conflict',
    in: input({ conflicts: [{ address: '203.0.113.8', claimedBy: 'other/first' }], relayMap: { '203.0.113.8': absent } }),
    want: {
      ready: ['False', 'Conflict'],
      readyMessage: /^spec\.ips\[1\]\.address: 203\.0\.113\.8 is already claimed by SendingPool other\/first/,
      states: ['Ready', 'Conflict'],
      summary: { ips: '1/1' },
      notReady: 0,
    },
  },
  {
    name: 'a conflict outranks a missing Secret',
    in: input({ conflicts: [{ address: '203.0.113.7', claimedBy: 'a/b' }], missing: { reason: 'SecretNotFound', message: 'x' } }),
    want: { ready: ['False', 'Conflict'] },
  },
  {
    name: 'a removed IP draining with a reported queue: Draining=True with the count, state Draining, not counted as serving',
    in: input({ draining: [{ address: '203.0.113.9', queued: 12 }] }),
    want: { ready: ['True', 'RelaysReady'], states: ['Ready', 'Ready', 'Draining'], draining: ['True', 'Draining'], drainingMessage: /203\.0\.113\.9\): 12 recipients left to deliver/, summary: { ips: '2/2' } },
  },
  {
    name: 'a draining relay that has not reported: says so',
    in: input({ draining: [{ address: '203.0.113.9', queued: undefined }] }),
    want: { ready: ['True', 'RelaysReady'], draining: ['True', 'Draining'], drainingMessage: /0 recipients left to deliver, 1 not reporting yet/ },
  },
  {
    name: 'a pool being deleted: every listed IP shows Draining once (no duplicate entry)',
    in: input({ draining: [{ address: '203.0.113.7', queued: 3 }, { address: '203.0.113.8', queued: 0 }] }),
    want: { ready: ['True', 'RelaysReady'], states: ['Draining', 'Draining'], draining: ['True', 'Draining'], drainingMessage: /3 recipients left/ },
  },
  {
    name: 'drain finished: Draining=False Drained',
    in: input({ prev: { conditions: [{ type: 'Draining', status: 'True', reason: 'Draining', message: 'x', lastTransitionTime: T0 }] } }),
    want: { ready: ['True', 'RelaysReady'], draining: ['False', 'Drained'] },
  },
  {
    name: 'a rolling restart in progress: Ready=False RollingUpdate naming the relay being restarted',
    in: input({ rollout: { updating: 'p-203-0-113-7', waiting: 1 }, relayMap: { '203.0.113.7': notReady } }),
    want: { ready: ['False', 'RollingUpdate'], readyMessage: /p-203-0-113-7 now, 1 waiting; 1\/2 relays ready/ },
  },
  {
    name: 'warm-up with pods not ready: the Warm-up column still says warming',
    in: input({
      pool: pool([{ address: '203.0.113.7', hostname: 'a.example.test', warmup: { steps: [{ day: 0, dailyLimit: 500 }, { day: 5, dailyLimit: 2000 }] } }]),
      relayMap: { '203.0.113.7': notReady },
    }),
    want: { ready: ['False', 'RelaysNotReady'], states: ['Pending'], summary: { warmup: '1 warming: 500/day' }, notReady: 1 },
  },
  {
    name: 'warm-up with pods ready: WarmingUp',
    in: input({ pool: pool([{ address: '203.0.113.7', hostname: 'a.example.test', warmup: { steps: [{ day: 0, dailyLimit: 500 }, { day: 5, dailyLimit: 2000 }] } }]) }),
    want: { ready: ['True', 'RelaysReady'], states: ['WarmingUp'], summary: { warmup: '1 warming: 500/day' } },
  },
  {
    name: 'a Paused IP stays Paused (the health loop set it) and is not counted ready',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Paused' }] } }),
    want: { ready: ['False', 'RelaysNotReady'], states: ['Paused', 'Ready'] },
  },
  // Quarantine: the reputation loop writes only the record; the state is derived here (ip-state.ts).
  {
    name: 'a quarantined IP whose relay left the Service on purpose: Quarantined, relayPod OutOfService; not NOT READY; the pool stays Ready',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Pending', quarantine: Q }] }, relayMap: { '203.0.113.7': notReady } }),
    want: { ready: ['True', 'RelaysReady'], readyMessage: /^2\/2 relays ready \(1 quarantined\)$/, states: ['Quarantined', 'Ready'], relayPods: ['OutOfService', 'Ready'], notReady: 0, summary: { ips: '1/2' }, message: /^quarantined: listed on zen \(SBL: 127\.0\.0\.2\); its relay has left the Service on purpose/ },
  },
  {
    name: 'a quarantined IP whose relay is still Ready (before it runs the quarantine): Quarantined',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Ready', quarantine: Q }] } }),
    want: { ready: ['True', 'RelaysReady'], states: ['Quarantined', 'Ready'], relayPods: ['Ready', 'Ready'], notReady: 0, summary: { ips: '1/2' } },
  },
  {
    name: 'every IP quarantined: the relays stay in the Service holding mail; one that is down is NOT READY and the pool not Ready',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Quarantined', quarantine: Q }, { address: '203.0.113.8', state: 'Quarantined', quarantine: Q }] }, relayMap: { '203.0.113.8': notReady } }),
    want: { ready: ['False', 'RelaysNotReady'], readyMessage: /^1\/2 relays ready \(2 quarantined\)$/, states: ['Quarantined', 'Quarantined'], relayPods: ['Ready', 'NotReady'], notReady: 1, summary: { ips: '0/2' }, message: /^quarantined: listed on zen .*; relay pod Ready$/ },
  },
  {
    name: 'a quarantined IP with no StatefulSet yet: Quarantined, NotCreated, counted NOT READY',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Pending', quarantine: Q }] }, relayMap: { '203.0.113.7': absent } }),
    want: { ready: ['False', 'RelaysNotReady'], states: ['Quarantined', 'Ready'], relayPods: ['NotCreated', 'Ready'], notReady: 1 },
  },
  {
    name: 'a quarantined IP on a warm-up plan: not in the Warm-up column (it sends nothing today)',
    in: input({
      pool: pool([{ address: '203.0.113.7', hostname: 'a.example.test', warmup: { steps: [{ day: 0, dailyLimit: 500 }, { day: 5, dailyLimit: 2000 }] } }, { address: '203.0.113.8', hostname: 'b.example.test' }]),
      prev: { ips: [{ address: '203.0.113.7', state: 'WarmingUp', quarantine: Q }] },
      relayMap: { '203.0.113.7': notReady },
    }),
    want: { ready: ['True', 'RelaysReady'], states: ['Quarantined', 'Ready'], summary: { warmup: 'done', ips: '1/2' }, notReady: 0 },
  },
  {
    name: 'a quarantined Paused IP: Quarantined',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Paused', quarantine: Q }] } }),
    want: { ready: ['True', 'RelaysReady'], states: ['Quarantined', 'Ready'] },
  },
  {
    name: 'a quarantined IP of a pool being deleted: Draining, the quarantine record kept beside it',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Quarantined', quarantine: Q }] }, draining: [{ address: '203.0.113.7', queued: 4 }, { address: '203.0.113.8', queued: 0 }] }),
    want: { ready: ['True', 'RelaysReady'], states: ['Draining', 'Draining'], quarantine: ['Listed', undefined] },
  },
  {
    name: 'a quarantined IP another pool claimed first: Conflict',
    in: input({ prev: { ips: [{ address: '203.0.113.8', state: 'Quarantined', quarantine: Q }] }, conflicts: [{ address: '203.0.113.8', claimedBy: 'other/first' }], relayMap: { '203.0.113.8': absent } }),
    want: { ready: ['False', 'Conflict'], states: ['Ready', 'Conflict'], relayPods: ['Ready', undefined] },
  },
  {
    name: 'released (record gone) while the relay is still out of the Service: Pending until it is Ready again',
    in: input({ prev: { ips: [{ address: '203.0.113.7', state: 'Quarantined', relayPod: 'OutOfService' }] }, relayMap: { '203.0.113.7': notReady } }),
    want: { ready: ['False', 'RelaysNotReady'], states: ['Pending', 'Ready'], relayPods: ['NotReady', 'Ready'], notReady: 1 },
  },
];

for (const c of cases) {
  test(`poolStatus: ${c.name}`, () => {
    const { status } = poolStatus(c.in);
    const cond = (t: string) => status.conditions?.find((x) => x.type === t);
    if (c.want.reconciled) assert.deepEqual([cond('Reconciled')?.status, cond('Reconciled')?.reason], c.want.reconciled);
    assert.deepEqual([cond('Ready')?.status, cond('Ready')?.reason], c.want.ready);
    if (c.want.readyMessage) assert.match(cond('Ready')!.message, c.want.readyMessage);
    for (const x of status.conditions ?? []) assert.equal(x.observedGeneration, 3, `${x.type} observedGeneration`);
    if (c.want.states) assert.deepEqual(status.ips?.map((i) => i.state), c.want.states);
    if (c.want.summary) for (const [k, v] of Object.entries(c.want.summary)) assert.equal(status.summary?.[k as 'ips'], v, `summary.${k}`);
    if (c.want.notReady !== undefined) assert.equal(status.notReadyRelays, c.want.notReady);
    if (c.want.draining === 'absent') assert.equal(cond('Draining'), undefined);
    else if (c.want.draining) assert.deepEqual([cond('Draining')?.status, cond('Draining')?.reason], c.want.draining);
    if (c.want.drainingMessage) assert.match(cond('Draining')!.message, c.want.drainingMessage);
    if (c.want.relayPods) assert.deepEqual(status.ips?.map((i) => i.relayPod), c.want.relayPods);
    if (c.want.message) assert.match(status.ips?.[0]?.message ?? '', c.want.message);
    if (c.want.quarantine) assert.deepEqual(status.ips?.map((i) => i.quarantine?.reason), c.want.quarantine);
  });
}

test('poolStatus: the same inputs twice give an equal status (lastTransitionTime kept), so no write', () => {
  const first = poolStatus(input()).status;
  const again = poolStatus(input({ prev: first, now: new Date(NOW.getTime() + 60_000) })).status;
  assert.deepEqual(again, first);
});

test('poolStatus: warm-up from relay/warmup/plan.ts over the carried state: a new IP is on day 0 with the first cap, re-checked at UTC midnight', () => {
  const p = pool([{ address: '203.0.113.7', hostname: 'a.example.test', warmup: { steps: [{ day: 0, dailyLimit: 500 }, { day: 5, dailyLimit: 2000 }] } }]);
  const r = poolStatus(input({ pool: p, relayMap: { '203.0.113.7': notReady } }));
  assert.deepEqual([r.status.ips?.[0]?.warmupDay, r.status.ips?.[0]?.quotaToday], [0, 500]);
  assert.equal(r.nextWarmupChange?.toISOString(), '2026-12-02T00:00:00.000Z');
});

test('poolStatus: a relay report made under an older config than the rendered one does not overwrite the carried warm-up (a re-warm stands)', () => {
  const p = pool([{ address: '203.0.113.7', hostname: 'a.example.test', warmup: { steps: [{ day: 0, dailyLimit: 10 }, { day: 1, dailyLimit: 400 }, { day: 2, dailyLimit: 1000 }] } }]);
  // The reputation loop re-warmed the IP to day 1 (counted through yesterday); the relay still runs the old config, on day 2.
  const prev: SendingPoolStatus = { ips: [{ address: '203.0.113.7', state: 'WarmingUp', warmupDay: 1, warmupCountedThrough: '2026-11-30' }] };
  const configs = { [configKey('203.0.113.7')]: 'rendered: new\n' };
  const report = { stage: 2, day: 2, capToday: 1000, sentToday: 300 } as never;
  const stale = poolStatus(input({ pool: p, prev, configs, relayWarmup: () => report, relayConfigVersion: () => 'old-version' }));
  assert.equal(stale.status.ips?.[0]?.warmupDay, 1, 'the re-warm stands');
  assert.equal(stale.status.ips?.[0]?.quotaToday, 400);
  const current = poolStatus(input({ pool: p, prev, configs, relayWarmup: () => report, relayConfigVersion: () => configVersion('rendered: new\n') }));
  assert.equal(current.status.ips?.[0]?.warmupDay, 2, 'a report under the rendered config wins (the relay enforces)');
});

test('poolStatus: a quarantined IP whose relay is not Ready stays Quarantined over repeated writes (each one\'s output the next one\'s input), and the status settles (no write)', () => {
  let prev: SendingPoolStatus = { ips: [{ address: '203.0.113.7', state: 'Pending', quarantine: Q }] };
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const next = poolStatus(input({ prev, now: new Date(NOW.getTime() + i * 1000), relayMap: { '203.0.113.7': i % 2 ? absent : notReady } })).status;
    seen.push(next.ips![0]!.state);
    prev = next;
  }
  assert.deepEqual(seen, ['Quarantined', 'Quarantined', 'Quarantined', 'Quarantined']);
  const settled = poolStatus(input({ prev, relayMap: { '203.0.113.7': absent } })).status;
  assert.deepEqual(poolStatus(input({ prev: settled, now: new Date(NOW.getTime() + 60_000), relayMap: { '203.0.113.7': absent } })).status, settled);
});
