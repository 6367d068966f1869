// The stats reader's incremental reads against a running relay (issue 17): the operator asks each
// relay only for the hours from its last answer's hour on, by the relay's own clock, and seals the
// hours before. Here a relay in this process (its counters' clock movable) delivers to a sink
// across an hour boundary while a PoolObservations is fed as the observer feeds it (hoursToRead,
// readRelayStats, readCovers); its sums equal those of one full read of the same relay at the end,
// the reads asked for 1 hour within an hour and 2 across its end, and a replaced volume (a new
// instance, a fresh data directory) adds to what was counted, never doubles it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseConfig, workspace, type Workspace } from '../support/relay-harness.ts';
import { startSink, freeTcpPort, type Sink } from '../support/sink.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { readRelayStats } from '../../operator/observe/reader.ts';
import { PoolObservations, emptyState, hoursToRead, readCovers, KEEP_HOURS } from '../../operator/observe/state.ts';
import { windowCounts, HOUR_MS } from '../../operator/control/rates.ts';
import { waitFor } from './harness.ts';

const TOKEN = 'stats-incremental-token';

async function relayOn(ws: Workspace, sink: Sink, clock: () => number): Promise<Relay> {
  writeFileSync(join(ws.dir, 'api-token'), `${TOKEN}\n`);
  return startRelay(parseRelayConfig({
    ...baseConfig(ws), log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0, apiTokenFile: join(ws.dir, 'api-token') },
    delivery: { routes: [{ domains: ['people.test'], host: sink.address, port: sink.port }], connectTimeoutMs: 2000 },
    domains: [{ domain: 'brand.test' }, { domain: 'other.test' }],
  }), { logger: createLogger('silent', 'stats'), clock });
}

test('reads of the hours since the last answer, by the relay\'s clock, merge to what a full read gives; a new instance adds', async () => {
  const sink = await startSink({ address: '127.0.9.5', port: await freeTcpPort('127.0.9.5') });
  // The relay's clock starts 3 minutes before an hour ends and can be moved on.
  const hourEnd = (Math.floor(Date.now() / HOUR_MS) + 1) * HOUR_MS;
  let offset = hourEnd - 3 * 60_000 - Date.now();
  const clock = () => Date.now() + offset;
  const ws = await workspace();
  let relay = await relayOn(ws, sink, clock);
  const url = () => `http://127.0.0.1:${relay.http.port}/v1/stats`;
  const obs = PoolObservations.from(emptyState());
  const asked: (number | undefined)[] = [];
  /** One round of the observer for this relay (operator/observe/observer.ts readSince + merge). */
  const round = async () => {
    const last = obs.lastReadByPod().get('pod-0');
    const hours = hoursToRead(last, clock());
    asked.push(hours);
    const r = await readRelayStats(hours === undefined ? url() : `${url()}?hours=${hours}`, TOKEN);
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.ok(readCovers(last, r.doc), 'the answer starts no later than the hour of the last one');
    obs.merge('pod-0', r.doc, clock(), '192.0.2.1');
    obs.compact(clock());
  };
  const sent = async (from: string, n: number, tag: string) => {
    await relay.store.enqueue({ mailFrom: from, recipients: Array.from({ length: n }, (_, k) => `${tag}${k}@people.test`), body: Buffer.from('Subject: x\r\n\r\nx\r\n'), class: 'bulk' });
  };
  /** What the relay counted in its open hours, per its own full answer. */
  const counted = async () => {
    const r = await readRelayStats(`${url()}?hours=48`, TOKEN);
    assert.ok(r.ok);
    return r.doc.buckets.reduce((n, b) => n + b.delivered, 0);
  };
  try {
    await round(); // nothing yet: the first read is a full one
    await sent('news@brand.test', 23, 'a');
    await waitFor('the relay counted 23 deliveries', async () => (await counted()) === 23 || undefined, 20_000);
    await round();
    await sent('news@other.test', 10, 'b');
    await waitFor('the relay counted 33', async () => (await counted()) === 33 || undefined, 20_000);
    await round();
    // Across the end of the relay's hour: a read within the timeout's margin of it asks for two
    // hours, and so does the first read after it (its last answer was in the hour before).
    offset = hourEnd - 3000 - Date.now();
    await round();
    offset = hourEnd + 30_000 - Date.now();
    await sent('news@brand.test', 7, 'c');
    await waitFor('the relay counted 40', async () => (await counted()) === 40 || undefined, 20_000);
    await round();
    await round();
    assert.deepEqual(asked, [undefined, 1, 1, 2, 2, 1], 'the hours asked for');
    // One full read of the same relay, merged afresh, gives the same sums.
    const full = PoolObservations.from(emptyState());
    const r = await readRelayStats(`${url()}?hours=48`, TOKEN);
    assert.ok(r.ok);
    full.merge('pod-0', r.doc, clock(), '192.0.2.1');
    for (const d of ['brand.test', 'other.test']) {
      assert.deepEqual(windowCounts(obs.domainBuckets(d), () => true, clock(), KEEP_HOURS * HOUR_MS), windowCounts(full.domainBuckets(d), () => true, clock(), KEEP_HOURS * HOUR_MS), d);
    }
    assert.equal(obs.totalCounts().attempted, 40);
    assert.equal(obs.totalCounts().delivered, 40);
    assert.equal(obs.cellCount() <= 4, true, `only the open hour's cells are kept (${obs.cellCount()})`);

    // A replaced volume: the relay starts on a fresh data directory (a new instance, from zero).
    await relay.stop();
    const ws2 = await workspace();
    relay = await relayOn(ws2, sink, clock);
    await sent('news@brand.test', 4, 'd');
    await waitFor('the new store counted 4', async () => (await counted()) === 4 || undefined, 20_000);
    await round();
    await round();
    assert.equal(obs.totalCounts().attempted, 44, 'the old instance\'s 40 and the new one\'s 4');
  } finally {
    await relay.stop();
    await sink.close();
  }
});
