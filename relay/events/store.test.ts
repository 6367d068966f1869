import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { EventStore, createEventTables, eventId, newEventId, type MailEvent } from './store.ts';
import { takeTagHeaders } from './tags.ts';

const ev = (n: number, at: number, domain = 'shop.test'): MailEvent => ({
  id: eventId(['delivered', 'Q', n]), type: 'delivered', at: new Date(at).toISOString(), queueId: `Q${n}`, messageId: null, recipient: `r${n}@x.test`,
  sendingDomain: domain, ip: null, provider: null, class: 'bulk', reply: '250 ok', category: null, tags: [`t${n}`], relay: 'r',
});

test('an event is recorded once per id; the id is stable and 26 characters', () => {
  const db = new DatabaseSync(':memory:');
  createEventTables(db);
  const s = new EventStore(db, { fleet: false });
  assert.equal(eventId(['a', 1]), eventId(['a', 1]));
  assert.notEqual(eventId(['a', 1]), eventId(['a', 2]));
  assert.match(eventId(['a']), /^[0-9a-hjkmnp-tv-z]{26}$/);
  assert.equal(s.record([ev(1, 0)], new Set(), 0).length, 1);
  assert.equal(s.record([ev(1, 0)], new Set(), 0).length, 0, 'the same event again is not new');
  assert.deepEqual(s.query({ tag: 't1' }).map((e) => e.queueId), ['Q1']);
});

test('a relay\'s own event ids: 26 base32 characters, a per-process prefix and a counter, unique and increasing', () => {
  const ids = Array.from({ length: 10_000 }, () => newEventId());
  for (const id of ids) assert.match(id, /^[0-9a-hjkmnp-tv-z]{26}$/);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(new Set(ids.map((id) => id.slice(0, 16))).size, 1, 'one prefix per process');
  assert.deepEqual([...ids].sort(), ids, 'in the order they were made (the (queue_id, id) index is appended to)');
});

test('purge forgets old events, except those still owed to a webhook', () => {
  const db = new DatabaseSync(':memory:');
  createEventTables(db);
  const s = new EventStore(db, { fleet: false });
  const day = 86400_000;
  s.record([ev(1, 0, 'plain.test'), ev(2, 0, 'hooked.test'), ev(3, 40 * day, 'plain.test')], new Set(['hooked.test']), 0);
  assert.equal(s.purge(30 * day), 1);
  assert.deepEqual(s.query({}).map((e) => e.queueId), ['Q2', 'Q3']);
  assert.deepEqual(s.query({ tag: 't1' }), []);
});

test('X-Mailfleet-Tag fields are removed, folded and comma-separated values collected', () => {
  const msg = Buffer.from('From: a@b.test\r\nX-Mailfleet-Tag: invoice-4711,\r\n customer-42\r\nSubject: s\r\nx-mailfleet-tag: invoice-4711\r\nX-MAILFLEET-TAG: campaign-7\r\n\r\nX-Mailfleet-Tag: in the body stays\r\n');
  const { body, tags } = takeTagHeaders(msg);
  assert.deepEqual(tags, ['invoice-4711', 'customer-42', 'campaign-7']);
  assert.equal(body.toString(), 'From: a@b.test\r\nSubject: s\r\n\r\nX-Mailfleet-Tag: in the body stays\r\n');
  const plain = Buffer.from('Subject: s\r\n\r\nbody\r\n');
  assert.equal(takeTagHeaders(plain).body, plain, 'untouched (the same buffer) when there is none');
});

test('a database from before the (queue id, id) key keeps its events, and recording stays once per event', () => {
  const db = new DatabaseSync(':memory:');
  db.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, at INTEGER NOT NULL,
    queue_id TEXT, message_id TEXT, recipient TEXT, sending_domain TEXT, body TEXT NOT NULL) STRICT;
    CREATE INDEX events_queue_id ON events (queue_id);`);
  const old = ev(1, 0);
  db.prepare(`INSERT INTO events (id, type, at, queue_id, message_id, recipient, sending_domain, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
    .run(old.id, old.type, 0, old.queueId, null, old.recipient, old.sendingDomain, JSON.stringify(old));
  const orphan = { ...ev(2, 0), queueId: null };
  db.prepare(`INSERT INTO events (id, type, at, queue_id, message_id, recipient, sending_domain, body) VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)`)
    .run(orphan.id, orphan.type, 0, orphan.recipient, orphan.sendingDomain, JSON.stringify(orphan));
  createEventTables(db);
  createEventTables(db); // again: nothing more to do
  const s = new EventStore(db, { fleet: false });
  assert.deepEqual(s.query({}).map((e) => [e.seq, e.id]), [[1, old.id], [2, orphan.id]]);
  assert.equal(s.record([old, orphan], new Set(), 0).length, 0, 'both already recorded');
  assert.equal(s.record([ev(3, 0)], new Set(), 0).length, 1);
  assert.ok(s.query({}).at(-1)!.seq > 2, 'sequence numbers go on after the copied ones');
  assert.deepEqual(s.query({ queueId: 'Q1' }).map((e) => e.id), [old.id]);
});

test('purge without an index on time: many events, old ones go in order, a late older event goes once the boundary passes it, nothing new is touched', () => {
  const db = new DatabaseSync(':memory:');
  createEventTables(db);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'events_at'`).get() as { n: number }).n, 0);
  const s = new EventStore(db, { fleet: false });
  const day = 86400_000;
  // 1,000 events a day apart / 10 (ten per day), then a late report stamped day 0 recorded last.
  s.record(Array.from({ length: 1000 }, (_, i) => ev(i, Math.floor(i / 10) * day)), new Set(), 0);
  s.record([ev(5000, 0)], new Set(), 0);
  assert.equal(s.purge(50 * day), 500, 'days 0-49: 500 events');
  assert.equal(s.query({ limit: 1 })[0]!.queueId, 'Q500');
  assert.equal(s.purge(50 * day), 0, 'again: nothing');
  assert.equal(s.purge(200 * day), 501, 'everything older, the late one included');
  assert.deepEqual(s.query({}), []);
  assert.equal(s.purge(300 * day), 0, 'an empty table');
});

test("a message's metadata comes from its accepted event; older relays' event_messages rows still answer", () => {
  const db = new DatabaseSync(':memory:');
  createEventTables(db);
  const s = new EventStore(db, { fleet: false });
  s.record([{ ...ev(1, 0), id: eventId(['accepted', 'Q1', 'r1@x.test']), type: 'accepted', messageId: 'm1@shop.test', tags: ['invoice-1'] }], new Set(), 0);
  assert.deepEqual(s.message('Q1'), { queueId: 'Q1', messageId: 'm1@shop.test', sendingDomain: 'shop.test', class: 'bulk', tags: ['invoice-1'] });
  db.prepare(`INSERT INTO event_messages (queue_id, message_id, sending_domain, class, tags, at) VALUES ('Q9', 'm9@old.test', 'old.test', 'transactional', '["t"]', 0)`).run();
  assert.deepEqual(s.message('Q9'), { queueId: 'Q9', messageId: 'm9@old.test', sendingDomain: 'old.test', class: 'transactional', tags: ['t'] });
  assert.equal(s.message('Q404'), undefined);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM event_messages`).get() as { n: number }).n, 1, 'recording writes no event_messages row');
});

test('fresh ids: the prefix then the counter as 10 base32 digits, across the 1,024-id steps', async () => {
  const { counterDigits } = await import('./ids.ts');
  const first = newEventId();
  const start = counterDigits(0, 10);
  const prefix = first.slice(0, 16);
  // The counter of `first`, from its digits.
  let n = [...first.slice(16)].reduce((v, c) => v * 32 + '0123456789abcdefghjkmnpqrstvwxyz'.indexOf(c), 0);
  assert.equal(start, '0000000000');
  for (let i = 0; i < 5000; i++) {
    const id = newEventId();
    n++;
    assert.equal(id, prefix + counterDigits(n, 10), `event ${n}`);
  }
  assert.equal(counterDigits(1023, 10), '00000000zz');
  assert.equal(counterDigits(1024, 10), '0000000100');
  assert.equal(counterDigits(2 ** 50 - 1, 10), 'zzzzzzzzzz');
});
