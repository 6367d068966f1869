// mailfleet_operator_sendingpools is counted when scraped, from whatever countPools was given: the
// leader's informer cache in operator/main.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOperatorMetrics } from './metrics.ts';

const series = async (m: ReturnType<typeof createOperatorMetrics>) =>
  (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('mailfleet_operator_sendingpools{'));

test('SendingPools by Ready are counted at scrape time; with nothing to count (a follower) there is no series', async () => {
  const m = createOperatorMetrics({ defaultMetrics: false });
  assert.deepEqual(await series(m), [], 'no counter yet');
  let pools: { ready: number; notReady: number } | undefined = { ready: 2, notReady: 1 };
  m.countPools(() => pools);
  assert.deepEqual(await series(m), ['mailfleet_operator_sendingpools{ready="true"} 2', 'mailfleet_operator_sendingpools{ready="false"} 1']);
  pools = { ready: 3, notReady: 0 };
  assert.deepEqual(await series(m), ['mailfleet_operator_sendingpools{ready="true"} 3', 'mailfleet_operator_sendingpools{ready="false"} 0']);
  pools = undefined; // leadership lost: the caches are gone
  assert.deepEqual(await series(m), []);
});
