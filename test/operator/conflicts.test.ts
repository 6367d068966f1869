// Conflicts on a real kube-apiserver: an IP listed by two SendingPools, a domain claimed by two
// MailDomains. The object created first keeps working untouched; the later one reports
// Ready=False reason Conflict naming the first and renders nothing for the contested part; when
// the first goes away, the later one takes over on its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { RunningOperator } from '../../operator/main.ts';
import { ipKey } from '../../operator/render/names.ts';
import { clusterEnv, operatorOn, waitFor, condition, events, samplePool, sampleDomain, childrenOf, POOL_REF, DOMAIN_REF, type Env } from './harness.ts';

const env = await clusterEnv();
const skip = 'skipped' in env ? `no test cluster: ${env.skipped}` : false;
const NS = 'conflicts';
const OTHER_NS = 'conflicts-b';
let e: Env;
let op: RunningOperator;

before(async () => {
  if (skip) return;
  e = env as Env;
  op = await operatorOn(e, [NS, OTHER_NS]);
});

after(async () => {
  await op?.stop();
  if (!skip) await e.cluster.stop();
});

const getPool = (ns: string, name: string) => e.kube.get(POOL_REF.apiVersion, POOL_REF.kind, ns, name);
const getDomain = (name: string) => e.kube.get(DOMAIN_REF.apiVersion, DOMAIN_REF.kind, NS, name);
// Skips the drain: these tests are about who owns an address, not about the queue.
const immediately = { 'mailfleet.io/delete-immediately': 'true' };

test('one IPv6 address spelled twice in one pool is refused by the apiserver', { skip }, async () => {
  const pool = samplePool('dup', NS, {
    ips: [
      { address: '2001:db8::7', hostname: 'a.example.test' },
      { address: '2001:DB8:0:0:0:0:0:7', hostname: 'b.example.test' },
    ],
  });
  await assert.rejects(() => e.kube.create(pool), /each address may appear only once in a pool/);
});

test('an IP in two pools (two spellings, two namespaces): the later pool gets Conflict and no relay for it; the first is untouched; then it takes over', { skip }, async () => {
  const first = samplePool('first', NS, {
    ips: [
      { address: '2001:db8::7', hostname: 'v6.example.test' },
      { address: '203.0.113.70', hostname: 'a.example.test' },
    ],
  });
  first.metadata!.annotations = immediately;
  await e.kube.create(first);
  // Settled: both relays created and seen (their pods stay Pending: no kubelet here).
  const firstBefore = await waitFor('first reconciled and settled', async () => {
    const p = await getPool(NS, 'first');
    const ips = ((p['status'] as { ips?: { message?: string }[] } | undefined)?.ips ?? []);
    return condition(p, 'Reconciled')?.status === 'True' && ips.length === 2 && ips.every((i) => i.message === 'relay pod not ready') ? p : undefined;
  });

  await e.kube.create(
    samplePool('later', OTHER_NS, {
      ips: [
        { address: '2001:DB8:0:0::7', hostname: 'v6b.example.test' },
        { address: '203.0.113.71', hostname: 'b.example.test' },
      ],
    }),
  );
  const c = await waitFor('later Ready=False Conflict', async () => {
    const p = await getPool(OTHER_NS, 'later');
    const r = condition(p, 'Ready');
    if (r?.reason !== 'Conflict') throw new Error(JSON.stringify(p['status']));
    return r;
  });
  assert.equal(c.status, 'False');
  assert.match(c.message, /^spec\.ips\[0\]\.address: 2001:DB8:0:0::7 is already claimed by SendingPool conflicts\/first/);
  const later = await getPool(OTHER_NS, 'later');
  const st = later['status'] as { ips: { address: string; state: string }[] };
  assert.deepEqual(st.ips.map((i) => [i.address, i.state]), [['2001:DB8:0:0::7', 'Conflict'], ['203.0.113.71', 'Pending']]);
  // Nothing rendered for the contested address: no StatefulSet, no relay config.
  assert.deepEqual((await childrenOf(e.kube, OTHER_NS, 'later')).filter((x) => x.startsWith('StatefulSet/')), ['StatefulSet/later-203-0-113-71']);
  const cm = await e.kube.get('v1', 'ConfigMap', OTHER_NS, 'later-relay-config');
  assert.deepEqual(Object.keys(cm['data'] as object), ['relay-203-0-113-71.yaml']);
  await waitFor('a Warning Event Conflict', async () => (await events(e.kube, OTHER_NS, 'later')).find((x) => x.reason === 'Conflict' && x.type === 'Warning'));

  // The first pool did not move: same status, both relays.
  const firstNow = await getPool(NS, 'first');
  assert.equal(firstNow.metadata?.resourceVersion, firstBefore.metadata?.resourceVersion, 'the first pool was not written');
  assert.ok((await childrenOf(e.kube, NS, 'first')).includes(`StatefulSet/first-${ipKey('2001:db8::7')}`));

  // The first goes away: the later pool gets its relay for the address without anyone touching it.
  await e.kube.delete({ ...POOL_REF, namespace: NS, name: 'first' });
  await waitFor('later no longer in conflict, with a relay for the address', async () => {
    const p = await getPool(OTHER_NS, 'later');
    const kids = await childrenOf(e.kube, OTHER_NS, 'later');
    return condition(p, 'Ready')?.reason === 'RelaysNotReady' && kids.includes(`StatefulSet/later-${ipKey('2001:DB8:0:0::7')}`) ? true : undefined;
  }, 60_000);
});

test('a domain claimed by two MailDomains: the later one gets Conflict, no key, and its pool does not sign for it; then it takes over', { skip }, async () => {
  const poolA = samplePool('pa', NS, { ips: [{ address: '203.0.113.80', hostname: 'pa.example.test' }] });
  poolA.metadata!.annotations = immediately;
  await e.kube.create(poolA);
  await e.kube.create(samplePool('pb', NS, { ips: [{ address: '203.0.113.81', hostname: 'pb.example.test' }] }));
  await e.kube.create(sampleDomain('d-first', NS, 'shared.example', 'pa'));
  await waitFor('d-first DKIMReady', async () => (condition(await getDomain('d-first'), 'DKIMReady')?.status === 'True' ? true : undefined));
  await e.kube.create(sampleDomain('d-later', NS, 'shared.example', 'pb'));
  const c = await waitFor('d-later Ready=False Conflict', async () => {
    const r = condition(await getDomain('d-later'), 'Ready');
    return r?.reason === 'Conflict' ? r : undefined;
  });
  assert.match(c.message, /^spec\.domain: shared\.example is already claimed by MailDomain conflicts\/d-first/);
  const later = await getDomain('d-later');
  assert.equal(condition(later, 'DKIMReady')?.reason, 'Conflict');
  assert.equal((later['status'] as { selectors?: unknown }).selectors, undefined, 'no key for the later one');
  assert.equal(await e.kube.find('v1', 'Secret', NS, 'd-later-dkim-mailfleet'), undefined);
  await waitFor('a Warning Event Conflict', async () => (await events(e.kube, NS, 'd-later')).find((x) => x.reason === 'Conflict'));

  const signs = async (pool: string) => {
    const cm = await e.kube.find('v1', 'ConfigMap', NS, `${pool}-relay-config`);
    const text = Object.values((cm?.['data'] ?? {}) as Record<string, string>)[0];
    return text ? ((parse(text) as { domains?: { domain: string }[] }).domains ?? []).map((d) => d.domain) : [];
  };
  await waitFor('pa signs for shared.example', async () => ((await signs('pa')).includes('shared.example') ? true : undefined));
  assert.deepEqual(await signs('pb'), [], 'pb does not sign for a domain it lost');

  await e.kube.delete({ ...DOMAIN_REF, namespace: NS, name: 'd-first' });
  await waitFor('d-later takes the domain over: key made, pb signs', async () => {
    const d = await getDomain('d-later');
    return condition(d, 'DKIMReady')?.status === 'True' && (await signs('pb')).includes('shared.example') ? true : undefined;
  }, 60_000);
});
