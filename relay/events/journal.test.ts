import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventJournal, readEventJournal } from './journal.ts';
import { newEventId, type MailEvent } from './store.ts';

const ev = (n: number): MailEvent => ({
  id: newEventId(), type: 'accepted', at: new Date(n).toISOString(), queueId: `Q${n}`, messageId: null, recipient: `r${n}@x.test`,
  sendingDomain: 'shop.test', ip: null, provider: null, class: 'bulk', reply: null, category: null, tags: ['a\nb'], relay: 'r',
});

test('the events journal: lines appended from an index, read back whole, a torn tail skipped, started over on open', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-events-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'events.log');
  assert.deepEqual(readEventJournal(path), { events: [], bodies: [] }, 'no file: nothing to replay');
  const events = [ev(1), ev(2), ev(3)];
  const bodies = events.map((e) => JSON.stringify(e));
  const j = new EventJournal(path);
  assert.equal(j.record(events.slice(0, 1)), true);
  assert.equal(j.record(events, 1), true, 'only what the last append did not have');
  // A kill -9 inside a write that spans pages leaves a prefix of a line.
  appendFileSync(path, bodies[0]!.slice(0, 40));
  const back = readEventJournal(path);
  assert.deepEqual(back.events, events, 'a newline inside a value stays inside its line');
  assert.deepEqual(back.bodies, bodies, 'the lines are the bodies the table stores');
  j.written();
  assert.ok(statSync(path).size > 0, 'small: kept until it is worth a truncate');
  j.close(true);
  assert.equal(readFileSync(path, 'utf8'), '', 'closed with everything in feedback.db: nothing to replay');
  new EventJournal(path).close(false);
  assert.equal(statSync(path).size, 0);
});
