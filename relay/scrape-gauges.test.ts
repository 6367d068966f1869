// The gauges read at scrape time: queue depth and oldest age per class from the real store, the
// queue volume's space, readiness; and the sending-domain label stays bounded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createRelayMetrics, sendingDomainLabel } from './metrics.ts';
import { QueueStore } from './queue/store.ts';
import { installScrapeGauges } from './scrape-gauges.ts';

test('queue depth and oldest age per class, volume space and readiness, as a scrape sees them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-gauges-'));
  let now = 1_000_000;
  const store = new QueueStore(join(dir, 'queue'), { clock: () => now });
  try {
    await store.enqueue({ mailFrom: 'a@brand.test', recipients: ['x@ok.test', 'y@ok.test'], body: Buffer.from('Subject: a\r\n\r\nx\r\n'), class: 'bulk' });
    now += 5_000;
    await store.enqueue({ mailFrom: 'a@brand.test', recipients: ['z@ok.test'], body: Buffer.from('Subject: b\r\n\r\nx\r\n'), class: 'otp' });
    now += 2_000;
    const metrics = createRelayMetrics({ defaultMetrics: false });
    let ready = false;
    installScrapeGauges(metrics, { store, queueDir: join(dir, 'queue'), ready: () => ready, clock: () => now });
    let text = await metrics.registry.metrics();
    assert.match(text, /^mailfleet_queue_class_recipients\{class="bulk"\} 2$/m);
    assert.match(text, /^mailfleet_queue_class_recipients\{class="otp"\} 1$/m);
    assert.match(text, /^mailfleet_queue_class_recipients\{class="transactional"\} 0$/m);
    assert.match(text, /^mailfleet_queue_oldest_age_seconds\{class="bulk"\} 7$/m);
    assert.match(text, /^mailfleet_queue_oldest_age_seconds\{class="otp"\} 2$/m);
    assert.match(text, /^mailfleet_queue_oldest_age_seconds\{class="transactional"\} 0$/m);
    assert.match(text, /^mailfleet_queue_volume_free_bytes [1-9]\d*$/m);
    assert.match(text, /^mailfleet_queue_volume_size_bytes [1-9]\d*$/m);
    assert.match(text, /^mailfleet_relay_ready 0$/m);
    ready = true;
    text = await metrics.registry.metrics();
    assert.match(text, /^mailfleet_relay_ready 1$/m);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sending-domain label is a configured domain or "other", never a recipient or unknown domain', () => {
  const domains = new Set(['brand.test']);
  assert.equal(sendingDomainLabel('News@Brand.Test', domains), 'brand.test');
  assert.equal(sendingDomainLabel('x@elsewhere.test', domains), 'other');
  assert.equal(sendingDomainLabel('', domains), 'other');
});
