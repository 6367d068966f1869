import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRelayConfig } from './load.ts';
import { RelayConfigSchema, type RelayConfigInput } from './schema.ts';
import { RESTART_FIELDS, applyLive, restartChanges, restartSignature } from './live.ts';
import { configVersion } from './version.ts';

const base: RelayConfigInput = {
  dataDir: '/var/lib/mailfleet',
  listeners: [{ name: 'sub', port: 2525, tls: 'none' }],
  delivery: { egressIps: [{ address: '192.0.2.10', hostname: 'out.example.com' }] },
};
const cfg = (patch: Partial<RelayConfigInput> = {}) => parseRelayConfig({ ...base, ...patch });

test('every top-level field is either applied live or listed as needing a restart', () => {
  const live = new Set(['acceptDomains', 'domains', 'shaping', 'retry', 'delivery', 'draining', 'pausedDomains', 'handoff']);
  const restart = new Set(RESTART_FIELDS.map((f) => f.split('.')[0]));
  for (const key of Object.keys(RelayConfigSchema.shape)) {
    assert.ok(live.has(key) || restart.has(key), `${key}: say in relay/config/live.ts whether it applies live`);
  }
});

test('domains, DKIM keys, shaping, warm-up, retry and routes apply live: no restart field changes', () => {
  const a = cfg();
  const b = cfg({
    acceptDomains: ['bounces.example.com'],
    domains: [{ domain: 'example.com', dkim: [{ selector: 's1', keyFile: '/k/s1.pem' }] }],
    shaping: { warmup: [{ address: '192.0.2.10', plan: { preset: 'fast-14d' } }], providers: [{ name: 'google', maxConnections: 2 }] },
    retry: { firstRetrySeconds: 60 },
    delivery: { egressIps: [{ address: '192.0.2.10', hostname: 'out.example.com' }], routes: [{ domains: ['*'], host: 'smarthost' }], concurrency: 7 },
  });
  assert.deepEqual(restartChanges(a, b), []);
  assert.equal(restartSignature(a), restartSignature(b));
});

test('a quarantine\'s hand-off (peers, secret file) applies live with the quarantine', () => {
  const running = cfg();
  const next = cfg({ handoff: { secretFile: '/etc/mailfleet/handoff/secret', peers: [{ host: 'bulk-submission.mail.svc', port: 587 }] } });
  assert.deepEqual(restartChanges(running, next), []);
  applyLive(running, next);
  assert.deepEqual(running.handoff.peers, [{ host: 'bulk-submission.mail.svc', port: 587 }]);
});

test('draining applies live: a relay whose IP leaves its pool stops taking mail without a restart', () => {
  const running = cfg();
  const next = cfg({ draining: true });
  assert.deepEqual(restartChanges(running, next), []);
  applyLive(running, next);
  assert.equal(running.draining, true);
});

test('listeners, ports, paths and the DNS client need a restart, and say which', () => {
  const a = cfg();
  const b = cfg({ listeners: [{ name: 'sub', port: 2526, tls: 'none' }], dataDir: '/other', delivery: { ...base.delivery, dnsServers: ['10.0.0.10'] } });
  assert.deepEqual(restartChanges(a, b), ['dataDir', 'listeners', 'delivery.dnsServers']);
  assert.notEqual(restartSignature(a), restartSignature(b));
});

test('a default written out and a default left implicit are one signature', () => {
  assert.equal(restartSignature(cfg()), restartSignature(cfg({ http: { port: 8080 }, log: { level: 'info' } })));
});

test('applyLive changes the running object in place and keeps its restart-only fields', () => {
  const running = cfg();
  const same = running;
  applyLive(running, cfg({ acceptDomains: ['b.example.com'], delivery: { ...base.delivery, dnsServers: ['10.0.0.10'], concurrency: 3 } }));
  assert.equal(running, same);
  assert.deepEqual(running.acceptDomains, ['b.example.com']);
  assert.equal(running.delivery.concurrency, 3);
  assert.equal(running.delivery.dnsServers, undefined);
});

test('the version is the file hash: same text, same version', () => {
  assert.equal(configVersion('a: 1\n'), configVersion(Buffer.from('a: 1\n')));
  assert.notEqual(configVersion('a: 1\n'), configVersion('a: 2\n'));
  assert.match(configVersion('x'), /^[0-9a-f]{16}$/);
});

test('docs/live-config.md names every restart-only field', async () => {
  const { readFileSync } = await import('node:fs');
  const md = readFileSync(new URL('../../docs/live-config.md', import.meta.url), 'utf8');
  const table = md.slice(md.indexOf('| applies live | needs a restart'));
  const restartColumn = table.split('\n').filter((l) => l.startsWith('|')).map((l) => l.split('|')[2] ?? '').join(' ');
  for (const f of RESTART_FIELDS) assert.ok(restartColumn.includes(`\`${f}\``), `${f} missing from the restart column of docs/live-config.md`);
});
