// Live config at the intake: a new bounce domain (acceptDomains) is accepted on the MX listener
// once the file changes, with no restart: the listeners read the running config object, which a
// reload updates in place. A restart-only change (a listener's port) is reported as pending and
// leaves the running listener alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { workspace, baseConfig } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';
import { loadRelayConfigFile } from '../../relay/config/load.ts';
import { startRelay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';

test('a new accept domain applies live; a new port waits for a restart and says so', async () => {
  const ws = await workspace();
  const file = join(ws.dir, 'relay.yaml');
  const write = (cfg: object) => {
    writeFileSync(`${file}.new`, stringify(cfg));
    renameSync(`${file}.new`, file);
  };
  const base = baseConfig(ws, { acceptDomains: ['bounces.example.com'] });
  write(base);
  const logs = new EventEmitter();
  const logger = createLogger('info', 'relay', { write: (line: string) => void logs.emit('line', JSON.parse(line)) });
  const loaded = await loadRelayConfigFile(file);
  const relay = await startRelay(loaded.config, { logger, delivery: false, configFile: { path: file, version: loaded.version } });
  const applied = async () => {
    for (;;) {
      const [e] = (await once(logs, 'line', { signal: AbortSignal.timeout(10_000) })) as [{ event?: string; restartPending?: string[] }];
      if (e.event === 'config-applied') return e;
    }
  };
  const rcpt = async (to: string) => {
    const p = await SmtpProbe.open(relay.port('mx'));
    try {
      await p.reply();
      await p.command('EHLO mx.test');
      await p.command('MAIL FROM:<>');
      return (await p.command(`RCPT TO:<${to}>`)).code;
    } finally {
      p.close();
    }
  };
  try {
    const mxPort = relay.port('mx');
    // postmaster: always taken at a bounce domain (others need a return-path token, docs/bounces.md).
    assert.equal(await rcpt('postmaster@bounces.new.test'), 550);
    let done = applied();
    write({ ...base, acceptDomains: ['bounces.example.com', 'bounces.new.test'] });
    assert.deepEqual((await done).restartPending, []);
    assert.equal(await rcpt('postmaster@bounces.new.test'), 250);

    done = applied();
    write({ ...base, acceptDomains: ['bounces.example.com', 'bounces.new.test'], listeners: base.listeners!.map((l) => (l.name === 'mx' ? { ...l, port: 1 } : l)) });
    assert.deepEqual((await done).restartPending, ['listeners']);
    assert.equal(relay.port('mx'), mxPort, 'the running listener is left alone');
    assert.deepEqual(relay.configState().restartPending, ['listeners']);
  } finally {
    await relay.stop();
  }
});
