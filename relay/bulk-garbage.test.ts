// Every 8 MiB of large-body buffers let go is followed by a young-generation collection, and
// fewer bytes by none of ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { bulkBuffersDone } from './bulk-garbage.ts';

async function minorCollections(during: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if ((e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) n++;
  });
  obs.observe({ entryTypes: ['gc'] });
  during();
  // GC entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return n;
}

test('a minor collection per 8 MiB let go', async () => {
  const MiB = 1024 * 1024;
  assert.ok(await minorCollections(() => { for (let i = 0; i < 20; i++) bulkBuffersDone(8 * MiB); }) >= 20, '20 × 8 MiB: at least 20 minor collections');
  assert.ok(await minorCollections(() => { for (let i = 0; i < 20; i++) bulkBuffersDone(64 * 1024); }) <= 1, '1.25 MiB: none of ours');
});
