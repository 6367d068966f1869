// The closed loop on the test node (issue 14): the operator pod from the chart reads the relay
// pod's authenticated /v1/stats, decides, renders its decisions into the relay's ConfigMap, and
// the relay applies them live. One fleet (one node: the example pool's first IP, hostNetwork),
// shared by the cases, which run in order:
//   1. the sink MX answers 550 5.1.1 for 12 % of example.com's recipients → that MailDomain is
//      paused for bulk within seconds (stats read every 2 s), the relay holds its bulk, its otp is
//      delivered in under a second, other.test untouched; status, columns, Events and metrics
//      show the rates; the operator's and the relay's processes killed mid-window double-count
//      nothing; resume by annotation → the held bulk is delivered, nothing lost;
//   2. warm-up days on the relay's and the operator's clocks (test hook): the day of 1 held on
//      its bounces (the relay stays at stage 0 though its own day count would lift it), a healthy
//      day advances, 30 % 421 4.7.0 from the recipients' provider steps the IP back toward it
//      (the relay enforces that provider's lower cap), a healthy day advances again;
//   3. /v1/stats without the token → 401, with a wrong one → 401 and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { poll } from './fleet.ts';
import { fleetSuite } from './suite.ts';
import type { StatsV1 } from '../../relay/stats/collector.ts';
import type { StatsBucket } from '../../relay/stats/contract.ts';
import { ipKey } from '../../operator/render/names.ts';

const PASSWORD = 'control-loop-node-password';
const RCPT_DOMAIN = 'inbox.test';
const NS = 'default';
const POOL = 'transactional';
/** Test hook of both processes (cli/test-clock.ts): milliseconds added to their clocks. */
const CLOCK_FILE = '/tmp/clock-offset';
const DAY_MS = 86_400_000;
const STEPS = [{ day: 0, dailyLimit: 400 }, { day: 1, dailyLimit: 800 }, { day: 2, dailyLimit: 1600 }];

/** 12 of every 100 example.com recipients u<N> do not exist; other.test's all do. */
const refused = (rcpt: string) => /^u(\d+)@/.test(rcpt) && Number(/^u(\d+)@/.exec(rcpt)![1]) % 100 < 12;
/** example.com's mail: its envelope sender is at its return-path domain (bounces.example.com, examples/maildomain.yaml). */
const fromExample = (envelopeFrom: string) => /[@.]example\.com$/i.test(envelopeFrom);
/** While set, the sink defers every "slow…" recipient with 421 4.7.0 (a policy deferral). */
let throttle = false;
let ip = '';
/** The clocks' offset (ms), the same in the relay and the operator. */
let offset = 0;

const suite = fleetSuite({
  nodes: 1,
  // The senders' domains too: the relay's DSNs for the hard bounces go to news@example.com (a DSN
  // it cannot deliver is a deferral on the IP's record, which would spoil a healthy day).
  mx: { [RCPT_DOMAIN]: `mx.${RCPT_DOMAIN}`, 'example.com': `mx.${RCPT_DOMAIN}`, 'other.test': `mx.${RCPT_DOMAIN}` },
  onRcpt: (rcpt, session) => {
    if (session.envelope.mailFrom && fromExample(session.envelope.mailFrom.address) && refused(rcpt)) return '550 5.1.1 no such user';
    if (throttle && rcpt.startsWith('slow')) return '421 4.7.0 try again later';
    return undefined;
  },
  // The stats reader every 2 s instead of 30; the operator's clock hook.
  values: ['extraArgs[0]=--stats-interval=2', 'extraEnv[0].name=MAILFLEET_TEST_CLOCK_OFFSET_FILE', `extraEnv[0].value=${CLOCK_FILE}`],
  prepare: async (f) => {
    // A second sending domain on the same pool, there before the first render.
    await f.kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify({ apiVersion: 'mailfleet.io/v1alpha1', kind: 'MailDomain', metadata: { name: 'other-test' }, spec: { domain: 'other.test', poolRef: { name: POOL } } }));
  },
  examples: {
    namespace: NS,
    password: PASSWORD,
    // The relay's default retry (first after 5 min): a deferral is attempted once per test day;
    // moving the clock a day makes it due.
    edit: (p) => {
      // A day with 100 recipients counts for the relay's own day count; the guardrails judge
      // from 100 messages (test-shortened: 500 by default).
      p.spec.ips[0]!.warmup = { steps: STEPS, minDailyVolume: 100 };
      p.spec.health = { ...(p.spec.health as object), minimumVolume: 100 };
      p.spec.limits = { ...(p.spec.limits as object), messagesPerSecond: 2000, burst: 4000 };
    },
  },
  setup: async (f, pool) => {
    ip = pool!.poolIp;
    // The clock hook on the relay: a test-only env var added to its StatefulSet by hand (the
    // operator's server-side apply leaves a field it does not own alone); one rolling replacement.
    const sts = `${POOL}-${ipKey(ip)}`;
    await f.kubectl(['patch', 'statefulset', '-n', NS, sts, '--type=json', '-p', JSON.stringify([
      { op: 'add', path: '/spec/template/spec/containers/0/env/-', value: { name: 'MAILFLEET_TEST_CLOCK_OFFSET_FILE', value: CLOCK_FILE } },
    ])]);
    await f.kubectl(['rollout', 'status', '-n', NS, `statefulset/${sts}`, '--timeout=180s']);
    await poll('the relay with the clock hook Ready', async () => ((await relayPod()).ready ? true : undefined), 180_000);
  },
});

const sink = () => suite.fleet.sink;
const sinkCount = (pred: (m: ReturnType<typeof sink>['messages'][number]) => boolean) => sink().messages.filter(pred).reduce((n, m) => n + m.to.length, 0);
const relayUrl = (path: string) => `http://${suite.fleet.nodes[0]!.ip}:8080${path}`;

let apiToken: string | undefined;
async function token(): Promise<string> {
  apiToken ??= Buffer.from((await suite.fleet.kubectl(['get', 'secret', '-n', NS, `${POOL}-relay-api`, '-o', 'jsonpath={.data.token}'])).trim(), 'base64').toString('utf8').trim();
  return apiToken;
}
async function stats(): Promise<StatsV1 & { buckets: StatsBucket[]; pausedDomains: string[] }> {
  const r = await fetch(relayUrl('/v1/stats'), { headers: { authorization: `Bearer ${await token()}` } });
  assert.equal(r.status, 200);
  return (await r.json()) as StatsV1 & { buckets: StatsBucket[]; pausedDomains: string[] };
}
/** The relay's counts of its (offset) day so far. */
async function today(): Promise<{ attempted: number; deferred: number }> {
  const start = Math.floor((Date.now() + offset) / DAY_MS) * DAY_MS;
  const mine = (await stats()).buckets.filter((b) => Date.parse(b.hour) >= start);
  return { attempted: mine.reduce((n, b) => n + b.attempted, 0), deferred: mine.reduce((n, b) => n + b.deferred, 0) };
}
const warmup = async () => (await stats()).ips.find((i) => i.address === ip)?.warmup;

type Pod = { name: string; uid: string; ip: string; restarts: number; ready: boolean };
async function podOf(ns: string, selector: string): Promise<Pod> {
  const list = JSON.parse(await suite.fleet.kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json'])) as {
    items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; status: { podIP?: string; containerStatuses?: { restartCount: number; ready: boolean }[] } }[];
  };
  const live = list.items.filter((p) => !p.metadata.deletionTimestamp);
  assert.equal(live.length, 1, `one pod ${selector}`);
  const p = live[0]!;
  const cs = p.status.containerStatuses?.[0];
  return { name: p.metadata.name, uid: p.metadata.uid, ip: p.status.podIP ?? '', restarts: cs?.restartCount ?? 0, ready: cs?.ready ?? false };
}
const relayPod = () => podOf(NS, `mailfleet.io/ip=${ipKey(ip)}`);
const operatorPod = () => podOf(suite.fleet.operator.namespace, `app.kubernetes.io/instance=${suite.fleet.operator.release}`);
async function operatorMetrics(): Promise<string> {
  return (await fetch(`http://${(await operatorPod()).ip}:8080/metrics`)).text();
}
const okReads = (text: string) => Number(/^mailfleet_operator_relay_stats_reads_total\{result="ok"\} (\d+)/m.exec(text)?.[1] ?? 0);
/** Waits until the operator has read the relay `n` more times (its counter restarts with its process). */
async function moreReads(n: number): Promise<void> {
  const from = okReads(await operatorMetrics().catch(() => ''));
  await poll(`${n} more reads of the relay`, async () => {
    const now = okReads(await operatorMetrics().catch(() => ''));
    return now >= from + n || (now < from && now >= n) ? true : undefined;
  }, 60_000);
}

async function get<T>(kind: string, name: string): Promise<T> {
  return JSON.parse(await suite.fleet.kubectl(['get', kind, '-n', NS, name, '-o', 'json'])) as T;
}
type Cond = { type: string; status: string; reason?: string; message?: string };
type Domain = { status?: { conditions?: Cond[]; health?: { state: string; bounceRate?: string; judgedVolume?: number; relaysHolding?: string } } };
type PoolIpSt = { address: string; lastDecision?: string; warmupStage?: number; warmupDecidedStage?: number; warmupProviderStages?: { provider: string; stage: number }[]; bounceRate?: string; relay?: string };
type Pool = { status?: { conditions?: Cond[]; summary?: { bounceRate?: string }; ips?: PoolIpSt[] } };
const cond = (o: { status?: { conditions?: Cond[] } }, type: string) => o.status?.conditions?.find((c) => c.type === type);
const domain = (name: string) => get<Domain>('maildomain', name);
const poolIp = async () => (await get<Pool>('sendingpool', POOL)).status?.ips?.find((i) => i.address === ip);
async function eventReasons(name: string): Promise<string[]> {
  const list = JSON.parse(await suite.fleet.kubectl(['get', 'events', '-n', NS, '--field-selector', `involvedObject.name=${name}`, '-o', 'json'])) as { items: { type: string; reason: string; count?: number }[] };
  return list.items.flatMap((e) => Array.from({ length: e.count ?? 1 }, () => `${e.type}/${e.reason}`));
}

/** Messages straight to the relay (port 10587), one recipient each unless `to` lists several. */
async function send(from: string, to: string[][], cls: 'bulk' | 'otp'): Promise<void> {
  const t = nodemailer.createTransport({
    host: suite.fleet.nodes[0]!.ip, port: 10587, requireTLS: true, pool: true, maxConnections: 4, auth: { user: 'app', pass: PASSWORD }, tls: { rejectUnauthorized: false },
  });
  try {
    await Promise.all(to.map(async (rcpts) => {
      const info = await t.sendMail({ from, to: rcpts, subject: cls, text: 'hello\n', headers: { 'X-Mailfleet-Class': cls } });
      assert.match(info.response, /^250 /);
    }));
  } finally {
    t.close();
  }
}
const each = (prefix: string, from: number, n: number) => Array.from({ length: n }, (_, k) => [`${prefix}${from + k}@${RCPT_DOMAIN}`]);

/** The two clocks one minute past the next UTC midnight (of the offset clock); kubectl exec writes the hook's file. */
async function nextDay(): Promise<void> {
  const now = Date.now();
  offset = (Math.floor((now + offset) / DAY_MS) + 1) * DAY_MS + 60_000 - now;
  const write = ['node', '-e', `require('node:fs').writeFileSync(${JSON.stringify(CLOCK_FILE)}, '${offset}')`];
  const op = suite.fleet.operator;
  await Promise.all([
    suite.fleet.exec(NS, (await relayPod()).name, 'relay', write),
    suite.fleet.exec(op.namespace, (await operatorPod()).name, 'operator', write),
  ]);
}

/** Waits for the operator to judge the day that ended: status.ips[].lastDecision matching `expect`. */
async function judged(expect: RegExp): Promise<PoolIpSt> {
  return poll(`the day judged: ${expect}`, async () => {
    const s = await poolIp();
    return s?.lastDecision && expect.test(s.lastDecision) ? s : undefined;
  }, 60_000);
}

/** Waits until the relay reports enforcing `stage` (it runs the config the operator rendered from its decision). */
async function relayEnforces(stage: number, what: string): Promise<NonNullable<Awaited<ReturnType<typeof warmup>>>> {
  return poll(`the relay enforcing stage ${stage} (${what})`, async () => {
    const w = await warmup();
    return w?.stage === stage ? w : undefined;
  }, 120_000);
}

/** What a failed case leaves to read: the objects' status and the operator's last log lines. */
async function explain(t: { diagnostic(s: string): void }): Promise<void> {
  const f = suite.fleet;
  for (const args of [
    ['get', 'sendingpool', '-n', NS, POOL, '-o', 'jsonpath={.status}'],
    ['get', 'maildomains', '-n', NS, '-o', 'jsonpath={range .items[*]}{.metadata.name} {.status.health} {.status.conditions}{"\\n"}{end}'],
    ['logs', '-n', f.operator.namespace, (await operatorPod().catch(() => ({ name: f.operator.pod }))).name, '--tail=40'],
  ]) t.diagnostic(`kubectl ${args.join(' ')}:\n${await f.kubectl(args).catch((e: Error) => e.message)}`);
  const relayLog = await f.kubectl(['logs', '-n', NS, (await relayPod()).name, '-c', 'relay']).catch((e: Error) => e.message);
  const notDelivered = relayLog.split('\n').filter((l) => /"event":"(deferred|bounced|held-back|expired)"/.test(l));
  t.diagnostic(`relay: ${notDelivered.length} lines not delivered; the last 15:\n${notDelivered.slice(-15).join('\n')}`);
  t.diagnostic(`relay stats: ${JSON.stringify(await stats().then((s) => ({ configVersion: s.configVersion, pausedDomains: s.pausedDomains, buckets: s.buckets.length, warmup: s.ips.map((i) => i.warmup) })).catch((e: Error) => e.message))}`);
}

/** A case whose failure explains itself (explain above). */
function loopTest(name: string, body: (t: import('node:test').TestContext) => Promise<void>): void {
  test(name, async (t) => {
    if (suite.skipped) return t.skip(suite.skipped);
    try {
      await body(t);
    } catch (e) {
      await explain(t);
      throw e;
    }
  });
}

loopTest('12 % hard bounces pause example.com for bulk; its otp flows; kills double-count nothing; resume delivers the held mail', async (t) => {
  const f = suite.fleet;
  // 200 bulk recipients of example.com (24 do not exist), 100 of other.test.
  const t0 = Date.now();
  await send('news@example.com', each('u', 0, 200), 'bulk');
  await send('news@other.test', each('o', 0, 100), 'bulk');
  // Every bulk recipient delivered or refused, or the pause came first (a loaded machine delivers
  // slower than the operator judges: the rest of example.com's bulk is then held, and delivered
  // after the resume below) with other.test's 100 through.
  await poll('every bulk recipient delivered or refused, or example.com paused with other.test delivered', async () => {
    if (sinkCount(() => true) >= 300 - 24) return true;
    const otherDone = sinkCount((x) => x.to.some((r) => /^o\d+@/.test(r))) >= 100;
    return otherDone && cond(await domain('example-com'), 'Paused')?.status === 'True' ? true : undefined;
  }, 90_000);

  const paused = await poll('example.com paused for bulk', async () => {
    const d = await domain('example-com');
    return cond(d, 'Paused')?.status === 'True' ? d : undefined;
  }, 60_000);
  const pausedMs = Date.now() - t0;
  t.diagnostic(`paused ${pausedMs} ms after the first message was submitted`);
  assert.ok(pausedMs < 60_000, `paused within the shortened window, took ${pausedMs} ms`);
  assert.equal(cond(paused, 'Paused')!.reason, 'PausedHighBounces');
  const m = /^bulk mail paused: (\d+\.\d) % hard bounces over (\d+) messages \(pause at 10 %\); resume: kubectl annotate maildomain example-com mailfleet\.io\/resume=/.exec(cond(paused, 'Paused')!.message ?? '');
  assert.ok(m && Number(m[1]) >= 10 && Number(m[2]) >= 100, cond(paused, 'Paused')!.message);
  const other = await poll('other.test judged', async () => {
    const d = await domain('other-test');
    return (d.status?.health?.judgedVolume ?? 0) >= 100 ? d : undefined;
  }, 60_000);
  assert.notEqual(cond(other, 'Paused')?.status, 'True', 'the other domain on the same pool is untouched');
  assert.equal(other.status?.health?.bounceRate, '0.0 %');

  // The relay takes the pause live (same process), and the operator sees it hold it.
  const before = await relayPod();
  await poll('the relay holds the pause', async () => (/held by 1\/1 relays\)$/.test(cond(await domain('example-com'), 'Paused')?.message ?? '') ? true : undefined), 120_000);
  assert.deepEqual((await stats()).pausedDomains, ['example.com']);
  assert.deepEqual(await relayPod(), before, 'applied without a restart');

  // Held bulk, otp of the same domain in under a second, other.test flowing.
  await send('news@example.com', each('u', 1050, 20), 'bulk'); // u1050–u1069: none refused
  await send('news@other.test', each('o', 2000, 10), 'bulk');
  const t1 = Date.now();
  await send('codes@example.com', [[`otp-user@${RCPT_DOMAIN}`]], 'otp');
  // Timed by the sink's own clock, not by when the 250 ms poll saw it.
  const otpAt = await poll('the otp of the paused domain at the sink', async () => sink().messages.find((x) => x.to.includes(`otp-user@${RCPT_DOMAIN}`))?.receivedAt, 5000);
  const otpMs = otpAt - t1;
  t.diagnostic(`otp of the paused domain delivered ${otpMs.toFixed(0)} ms after its 250`);
  assert.ok(otpMs < 1000, `otp delivered in ${otpMs.toFixed(0)} ms`);
  await poll('other.test bulk delivered', async () => (sinkCount((x) => x.to.includes(`o2009@${RCPT_DOMAIN}`)) > 0 ? true : undefined), 30_000);
  assert.equal(sinkCount((x) => x.to.some((r) => /^u10[56]\d@/.test(r))), 0, 'paused bulk not sent');

  // What on-call sees: columns, status, Events, metrics.
  const pool = await poll('the pool Degraded with its rates', async () => {
    const p = await get<Pool>('sendingpool', POOL);
    return cond(p, 'Degraded')?.status === 'True' && /^\d+\.\d %$/.test(p.status?.summary?.bounceRate ?? '') ? p : undefined;
  }, 60_000);
  assert.match(cond(pool, 'Degraded')!.message ?? '', /^example-com: PausedHighBounces: /);
  const columns = await f.kubectl(['get', 'sendingpools,maildomains', '-n', NS, '-o', 'wide']);
  t.diagnostic(columns);
  // (The pool's rate moves while the otp and other.test's mail are counted: any rate here.)
  assert.match(columns, /transactional\s.*\s\d+\.\d %\s+example\.com PausedHighBounces/);
  assert.match(columns, /example-com\s+example\.com\s.*True\s+\d+\.\d %\s+PausedHighBounces/);
  assert.match(columns, /transactional\s.*example\.com PausedHighBounces \(\d+\.\d % bounces\)/, 'ATTENTION names the domain and why');
  assert.ok((await eventReasons('example-com')).includes('Warning/PausedHighBounces'));
  const metrics = await operatorMetrics();
  assert.match(metrics, /mailfleet_operator_domain_state\{namespace="default",pool="transactional",domain="example\.com",state="Paused"\} 1/);
  assert.match(metrics, /mailfleet_operator_domain_ratio\{namespace="default",pool="transactional",domain="example\.com",kind="bounce"\} 0\.1\d*/);

  // The operator's and the relay's processes killed mid-window (SIGKILL, the containers restart):
  // the judged volumes do not move. The kill comes once the operator has seen the counts (a
  // relay killed within a second of an outcome may lose that second's counts, never mail).
  await poll('the operator saw other.test\'s 110', async () => ((await domain('other-test')).status?.health?.judgedVolume === 110 ? true : undefined), 60_000);
  const judgedBrand = (await domain('example-com')).status!.health!.judgedVolume!;
  const [op, relay] = [await operatorPod(), await relayPod()];
  process.kill(await f.containerPid(f.operator.namespace, op.name, 'operator'), 'SIGKILL');
  process.kill(await f.containerPid(NS, relay.name, 'relay'), 'SIGKILL');
  await poll('both restarted and Ready', async () => {
    const [o, r] = [await operatorPod(), await relayPod()];
    return o.restarts > op.restarts && r.restarts > relay.restarts && o.ready && r.ready ? true : undefined;
  }, 180_000);
  await moreReads(4);
  const after = await domain('example-com');
  assert.equal(cond(after, 'Paused')?.status, 'True');
  assert.equal(after.status!.health!.judgedVolume, judgedBrand, 'nothing double-counted after the kills');
  assert.equal((await domain('other-test')).status!.health!.judgedVolume, 110);
  assert.deepEqual((await stats()).pausedDomains, ['example.com'], 'the restarted relay holds the pause');

  // Resume by annotation → Paused=False, the render drops the domain, the relay sends the held bulk.
  await f.kubectl(['annotate', 'maildomain', '-n', NS, 'example-com', 'mailfleet.io/resume=1', '--overwrite']);
  await poll('example.com resumed', async () => (cond(await domain('example-com'), 'Paused')?.status === 'False' ? true : undefined), 60_000);
  assert.equal(cond(await domain('example-com'), 'Paused')!.reason, 'ResumedByAnnotation');
  const want = [...each('u', 0, 200), ...each('u', 1050, 20)].flat().filter((r) => !refused(r)).sort();
  const arrived = () => new Set(sink().messages.filter((x) => fromExample(x.from)).flatMap((x) => x.to));
  await poll('the held bulk delivered', async () => (want.every((r) => arrived().has(r)) ? true : undefined), 120_000);
  assert.deepEqual(sink().messages.filter((x) => fromExample(x.from)).flatMap((x) => x.to).filter((r) => r.startsWith('u')).sort(), want, 'each deliverable recipient once: nothing lost');
  assert.ok((await eventReasons('example-com')).includes('Normal/ResumedByAnnotation'));
});

loopTest('warm-up on the node: a day held on bounces, a healthy day advances, 30 % 421 4.7.0 steps back toward that provider, a healthy day advances again', async (t) => {
  // Day 0 was the pause case's: 24 hard bounces over 331 (7.3 %) → held at stage 0. The relay's
  // own count would make it day 1, stage 1 (it sent over minDailyVolume): it enforces the hold,
  // and shows the operator's day.
  await nextDay();
  let s = await judged(/HeldHighBounces/);
  assert.match(s.lastDecision!, /^stage 0: HeldHighBounces: \d+\.\d % hard bounces at \S+ over \d+ messages/);
  assert.equal(s.warmupDecidedStage, 0);
  await moreReads(2);
  let w = await relayEnforces(0, 'held');
  assert.deepEqual([w.day, w.stage, w.capToday], [0, 0, 400], 'held: no warm-up day counted, stage 0');

  // Day 1, healthy: 150 → advanced to stage 1; the relay enforces 800 a day.
  await send('news@other.test', each('h', 0, 150), 'bulk');
  await poll('150 delivered today', async () => (sinkCount((x) => x.to.some((r) => r.startsWith('h'))) === 150 && (await today()).attempted >= 150 ? true : undefined), 60_000);
  await moreReads(2);
  await nextDay();
  s = await judged(/^stage 1: Advanced to stage 1: 0\.0 % bounces, \d+\.\d % deferred, 0\.0 % complaints over \d+ attempts$/);
  w = await relayEnforces(1, 'advanced');
  assert.equal(w.capToday, 800);

  // Day 2: the provider defers 50 of 150 with 421 4.7.0 → stepped back toward it (stage 1 → 0);
  // the IP stays at stage 1, that provider gets stage 0's cap.
  throttle = true;
  await send('news@other.test', [each('k', 0, 100).flat()], 'bulk');
  await send('news@other.test', each('slow', 0, 50), 'bulk');
  await poll('150 attempts today, 50 deferred', async () => {
    const d = await today();
    return d.attempted >= 150 && d.deferred >= 50 ? true : undefined;
  }, 60_000);
  t.diagnostic(`the 421 day: ${JSON.stringify(await today())}`);
  await moreReads(4);
  throttle = false; // yesterday's deferred mail goes through on retry, due once the clocks move
  await nextDay();
  s = await judged(/SteppedBack/);
  const back = /^stage 1: SteppedBack: (\S+) refused (\d+\.\d) % for rate or reputation over (\d+) attempts \(stage 1 → 0\)$/.exec(s.lastDecision!);
  assert.ok(back && Number(back[2]) >= 30 && Number(back[3]) >= 150, s.lastDecision);
  const provider = back[1]!;
  assert.deepEqual(s.warmupProviderStages, [{ provider, stage: 0 }]);
  await poll(`the relay capping ${provider} at stage 0's 400`, async () => {
    const q = (await stats()).ips.find((i) => i.address === ip)!.quota.find((x) => x.scope === provider && x.window === 'day');
    return q?.cap === 400 ? true : undefined;
  }, 120_000);
  assert.equal((await warmup())!.stage, 1, 'the IP itself holds its stage');
  const columns = await suite.fleet.kubectl(['get', 'sendingpools', '-n', NS]);
  t.diagnostic(columns);
  assert.match(columns, new RegExp(`${ip.replaceAll('.', '\\.')} SteppedBack \\(stage 1; ${provider} stage 0\\)`), 'ATTENTION names the IP, the provider and the stages');

  // Day 3, healthy (with yesterday's 50 retried): advanced to stage 2, the step back lifted.
  await poll('yesterday\'s deferred delivered', async () => (sinkCount((x) => x.to.some((r) => r.startsWith('slow'))) === 50 ? true : undefined), 60_000);
  await send('news@other.test', each('g', 0, 100), 'bulk');
  await poll('today\'s 100 delivered', async () => (sinkCount((x) => x.to.some((r) => r.startsWith('g'))) === 100 && (await today()).attempted >= 150 ? true : undefined), 60_000);
  await moreReads(2);
  await nextDay();
  s = await judged(/^stage 2: Advanced to stage 2/);
  assert.equal(s.warmupProviderStages, undefined, 'a healthy day lifts the step back');
  w = await relayEnforces(2, 'advanced again');
  assert.equal(w.capToday, 1600);
  const reasons = await eventReasons(POOL);
  assert.deepEqual(reasons.filter((r) => /Advanced|SteppedBack|Held/.test(r)).sort(), ['Normal/Advanced', 'Normal/Advanced', 'Warning/HeldHighBounces', 'Warning/SteppedBack'], 'one decision per day, none repeated');
  assert.match(await operatorMetrics(), new RegExp(`mailfleet_operator_warmup_stage\\{namespace="default",pool="transactional",ip="${ip.replaceAll('.', '\\.')}"\\} 2`));
});

test('/v1/stats without the token or with a wrong one: 401, and the wrong one counted', async (t) => {
  if (suite.skipped) return t.skip(suite.skipped);
  const count = async (reason: string) => Number(new RegExp(`^mailfleet_relay_http_unauthorized_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(await (await fetch(relayUrl('/metrics'))).text())?.[1] ?? 0);
  const [missing0, wrong0] = [await count('missing'), await count('wrong')];
  assert.equal((await fetch(relayUrl('/v1/stats'))).status, 401);
  assert.equal((await fetch(relayUrl('/v1/stats'), { headers: { authorization: 'Bearer not-the-token' } })).status, 401);
  assert.equal((await fetch(relayUrl('/v1/stats'), { headers: { authorization: `Bearer ${await token()}` } })).status, 200);
  assert.equal(await count('missing'), missing0 + 1);
  assert.equal(await count('wrong'), wrong0 + 1);
});
