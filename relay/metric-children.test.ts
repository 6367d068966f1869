import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRelayMetrics } from './metrics.ts';
import { counterChild, counterChildren, histogramChild, histogramChildren } from './metric-children.ts';

// Values that land in every bucket, on a bound, above the last bound, and 0.
const SECONDS = [0, 0.05, 0.051, 0.3, 1, 7, 99, 86400, 90000, 1e9, 0.00001, 2.5];

/** The same operations, stock prom-client calls on one registry and children on another: the same text. */
async function bothWays(ops: (m: ReturnType<typeof createRelayMetrics>, stock: boolean) => void): Promise<[string, string]> {
  const stock = createRelayMetrics({ defaultMetrics: false });
  const children = createRelayMetrics({ defaultMetrics: false });
  ops(stock, true);
  ops(children, false);
  return [await stock.registry.metrics(), await children.registry.metrics()];
}

test('labelled histograms observed through children: the exposition text of stock observe calls', async () => {
  const [a, b] = await bothWays((m, stock) => {
    for (let i = 0; i < 50; i++) {
      for (const [j, v] of SECONDS.entries()) {
        const provider = ['gmail', 'outlook', 'other'][(i + j) % 3]!;
        const cls = ['otp', 'transactional', 'bulk'][j % 3]!;
        if (stock) {
          m.deliveryLatency.observe({ provider }, v);
          m.classLatency.observe({ class: cls }, v);
          m.queueAge.observe({ class: cls }, v);
          m.queueCommitSeconds.observe(v / 1000);
        } else {
          histogramChildren(m.deliveryLatency, ['provider']).of(provider).observe(v);
          histogramChildren(m.classLatency, ['class']).of(cls).observe(v);
          histogramChild(m.queueAge, { class: cls }).observe(v);
          histogramChild(m.queueCommitSeconds, {}).observe(v / 1000);
        }
      }
    }
  });
  assert.match(b, /mailfleet_delivery_latency_seconds_bucket\{le="0.05",provider="gmail"\} \d+/);
  assert.match(b, /mailfleet_queue_age_seconds_count\{class="bulk"\} 200/);
  assert.equal(b, a);
});

test('labelled counters incremented through children: the exposition text of stock inc calls', async () => {
  const [a, b] = await bothWays((m, stock) => {
    for (let i = 0; i < 30; i++) {
      const result = ['delivered', 'deferred', 'bounced'][i % 3]!;
      const ip = ['192.0.2.1', '192.0.2.2'][i % 2]!;
      const category = i % 5 === 0 ? 'none' : 'policy';
      if (stock) {
        m.deliveryAttempts.inc({ result, source_ip: ip, provider: 'gmail', category });
        m.deliveryDomainAttempts.inc({ sending_domain: 'example.com', result, category }, 2);
        m.smtpConnections.inc({ listener: 'submission' });
        m.receivedBytes.inc(1000 + i);
        m.deliveryAttempts.inc({ result, source_ip: ip, provider: 'gmail', category }, 0);
      } else {
        counterChildren(m.deliveryAttempts, ['result', 'source_ip', 'provider', 'category']).of(result, ip, 'gmail', category).inc();
        counterChildren(m.deliveryDomainAttempts, ['sending_domain', 'result', 'category']).of('example.com', result, category).inc(2);
        counterChild(m.smtpConnections, { listener: 'submission' }).inc();
        counterChild(m.receivedBytes, {}).inc(1000 + i);
        counterChildren(m.deliveryAttempts, ['result', 'source_ip', 'provider', 'category']).of(result, ip, 'gmail', category).inc(0);
      }
    }
  });
  assert.match(b, /mailfleet_delivery_attempts_total\{result="delivered",source_ip="192.0.2.1",provider="gmail",category="none"\} \d+/);
  assert.equal(b, a);
});

test('a child and stock calls on the same labels add to one series; a reset() is followed', async () => {
  const m = createRelayMetrics({ defaultMetrics: false });
  const child = counterChild(m.smtpConnections, { listener: 'mx' });
  m.smtpConnections.inc({ listener: 'mx' }, 5);
  child.inc();
  child.inc();
  m.smtpConnections.inc({ listener: 'mx' });
  assert.match(await m.registry.metrics(), /mailfleet_smtp_connections_total\{listener="mx"\} 8\n/);
  m.smtpConnections.reset();
  child.inc();
  assert.match(await m.registry.metrics(), /mailfleet_smtp_connections_total\{listener="mx"\} 1\n/);
  const h = histogramChild(m.classLatency, { class: 'otp' });
  h.observe(0.2);
  m.classLatency.reset();
  h.observe(0.2);
  assert.match(await m.registry.metrics(), /mailfleet_delivery_class_latency_seconds_count\{class="otp"\} 1\n/);
});

test('a child refuses what prom-client refuses: a negative or infinite count, a non-finite observation', () => {
  const m = createRelayMetrics({ defaultMetrics: false });
  const c = counterChild(m.smtpConnections, { listener: 'mx' });
  c.inc();
  assert.throws(() => c.inc(-1), /not possible to decrease/);
  assert.throws(() => c.inc(Number.POSITIVE_INFINITY), /not a valid number/);
  const h = histogramChild(m.classLatency, { class: 'otp' });
  h.observe(1);
  assert.throws(() => h.observe(Number.POSITIVE_INFINITY), /not a valid number/);
});

test('children named with labels that are not the metric\'s are refused at once', () => {
  const m = createRelayMetrics({ defaultMetrics: false });
  assert.throws(() => counterChildren(m.deliveryAttempts, ['source_ip', 'result', 'provider', 'category']), /label names source_ip,result,provider,category are not the metric's \(result,source_ip,provider,category\)/);
});

test('on a session thread\'s metric proxy (no prom-client inside), children pass the labels on', () => {
  const calls: unknown[][] = [];
  const proxy = { inc: (...a: unknown[]) => void calls.push(['inc', ...a]), observe: (...a: unknown[]) => void calls.push(['observe', ...a]) };
  counterChild(proxy, { listener: 'l' }).inc();
  counterChildren(proxy, ['listener', 'result']).of('l', 'accepted').inc(2);
  histogramChild(proxy, { class: 'otp' }).observe(0.5);
  assert.deepEqual(calls, [['inc', { listener: 'l' }, undefined], ['inc', { listener: 'l', result: 'accepted' }, 2], ['observe', { class: 'otp' }, 0.5]]);
});

test('children by label values: one per label set, whatever characters the values hold', async () => {
  const { Children } = await import('./metric-children.ts');
  const made: Record<string, string>[] = [];
  const children = new Children(['x', 'y'], (labels) => (made.push(labels), labels));
  assert.equal(children.of('a\u001fb', 'c'), children.of('a\u001fb', 'c'));
  assert.notEqual(children.of('a\u001fb', 'c'), children.of('a', 'b\u001fc'));
  assert.notEqual(children.of('a', ''), children.of('', 'a'));
  assert.deepEqual(made, [{ x: 'a\u001fb', y: 'c' }, { x: 'a', y: 'b\u001fc' }, { x: 'a', y: '' }, { x: '', y: 'a' }]);
});
