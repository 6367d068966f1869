// `mailfleet suppressions` as a user runs it: a real process on a data directory.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-suppressions-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['cli/mailfleet.ts', 'suppressions', ...args, '-d', dir], { encoding: 'utf8', env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('add, ls, rm: normalised addresses, scope and reason', () => {
  let r = cli('add', 'Alice@Example.COM', 'bob@example.com', '--reason', 'complaint', '--scope', 'Shop.Example', '--detail', 'called support');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /suppressed 2 address\(es\) \(complaint, scope shop\.example\)/);
  r = cli('ls', '--json');
  const list = JSON.parse(r.out);
  assert.deepEqual(list.map((e: { address: string; scope: string; reason: string }) => [e.address, e.scope, e.reason]), [
    ['alice@example.com', 'shop.example', 'complaint'],
    ['bob@example.com', 'shop.example', 'complaint'],
  ]);
  r = cli('ls', 'ALICE@example.com');
  assert.match(r.out, /alice@example\.com\s+shop\.example\s+complaint/);
  assert.match(r.out, /1 entry/);
  r = cli('rm', 'alice@example.com');
  assert.equal(r.code, 0);
  assert.match(r.out, /removed 1 entry for alice@example\.com/);
  r = cli('rm', 'alice@example.com');
  assert.equal(r.code, 1);
  assert.match(r.err, /alice@example\.com is not on the list/);
});

test('bad input names the field', () => {
  assert.match(cli('add', 'not-an-address').err, /"not-an-address" is not an email address/);
  assert.match(cli('add', 'a@b.example', '--reason', 'annoyed').err, /--reason: "annoyed" is not one of hard-bounce, complaint, unsubscribe, manual/);
  assert.match(cli('add', 'a@b.example', '--scope', 'not a domain').err, /--scope: .*a scope is a sending domain or "\*"/);
  assert.match(cli('add', 'a@b.example', '--expires', 'tomorrow').err, /--expires: "tomorrow" is not an ISO 8601 time/);
  assert.equal(cli('frobnicate').code, 2);
});

test('import and export CSV round trip; bad rows are reported with line and field and skipped', () => {
  const csv = join(dir, 'in.csv');
  writeFileSync(csv, [
    'address,scope,reason,detail,expires_at',
    'c1@example.net,*,hard-bounce,"550 5.1.1 no such user, really",2030-01-01T00:00:00Z',
    'C2@Example.NET,,,',
    'broken,*,manual,,',
    'c3@example.net,*,spite,,',
    'c4@example.net,*,manual,,next week',
  ].join('\n'));
  const r = cli('import', csv);
  assert.equal(r.code, 1, 'some rows were skipped');
  assert.match(r.out, /imported 2 entries in [\d.]+ s; 3 row\(s\) skipped/);
  assert.match(r.err, /in\.csv:4: address: "broken" is not an email address/);
  assert.match(r.err, /in\.csv:5: reason: "spite" is not one of/);
  assert.match(r.err, /in\.csv:6: expires_at: "next week" is not a time/);
  const out = join(dir, 'out.csv');
  assert.equal(cli('export', out, '--scope', '*').code, 0);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'address,scope,reason,detail,first_seen,last_seen,expires_at,source_queue_id');
  assert.match(lines[1]!, /^c1@example\.net,\*,hard-bounce,"550 5\.1\.1 no such user, really",[^,]+,[^,]+,2030-01-01T00:00:00\.000Z,$/);
  assert.match(lines[2]!, /^c2@example\.net,\*,manual,imported,/);
  assert.equal(lines.length, 3);
});
