// Test hook (never set in production), for `mailfleet relay` and `mailfleet operator`:
// MAILFLEET_TEST_CLOCK_OFFSET_FILE names a file holding a number of milliseconds added to the
// process's clock, re-read when it changes, so a test can move a running relay (its warm-up day,
// its counters' hours) and the operator (the day it judges) across a UTC midnight without
// waiting for one.
import { readFileSync, watch } from 'node:fs';
import { dirname } from 'node:path';

export function testClock(file: string | undefined, onChange: () => void = () => {}): { clock?: () => number; close(): void } {
  if (!file) return { close() {} };
  let offset = 0;
  const read = () => {
    try {
      const n = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(n) && n !== offset) {
        offset = n;
        onChange();
      }
    } catch {
      // no file yet: no offset
    }
  };
  read();
  const w = watch(dirname(file), { persistent: false }, read);
  return { clock: () => Date.now() + offset, close: () => w.close() };
}
