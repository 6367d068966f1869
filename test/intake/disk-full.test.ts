// A queue on a small tmpfs that fills up: 452 4.3.1 (never a 250), nothing already stored is
// damaged, and normal service returns when space does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { workspace, startTestRelay, USER, PASSWORD } from '../support/relay-harness.ts';
import { SmtpProbe } from '../support/smtp-probe.ts';

async function send(port: number, body: string): Promise<{ code: number; text: string }> {
  const p = await SmtpProbe.open(port);
  await p.reply();
  await p.command('EHLO full.test');
  await p.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`);
  p.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<user@gmail.com>\r\nDATA\r\n');
  for (let i = 0; i < 3; i++) await p.reply();
  p.write(`Subject: fill\r\n\r\n${body}.\r\n`);
  const r = await p.reply();
  p.close();
  return r;
}

test('disk full: 452 4.3.1, stored messages intact, service back when space returns', async (t) => {
  const ws = await workspace();
  const mnt = join(ws.dir, 'small');
  mkdirSync(mnt);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (mount.status !== 0) {
    t.skip(`cannot mount a tmpfs here (${mount.stderr.trim() || 'needs root'}); the disk-full path is not exercised`);
    return;
  }
  t.after(() => spawnSync('umount', ['-l', mnt]));
  const relay = await startTestRelay(ws, { dataDir: join(mnt, 'data') });
  try {
    const port = relay.port('alt');
    const line = (n: number) => `${String(n).padStart(6, '0')} ${'z'.repeat(70)}\r\n`;
    const bodyOf = (k: number) => Array.from({ length: 1200 }, (_, i) => line(k * 10000 + i)).join(''); // ~92 KB
    // Leave little room, then send until the queue cannot take more.
    const free = statfsSync(mnt).bavail * statfsSync(mnt).bsize;
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, free - 1_200_000)));

    const accepted = new Map<string, string>();
    let refusal: { code: number; text: string } | undefined;
    for (let k = 0; k < 200 && !refusal; k++) {
      const body = bodyOf(k);
      const r = await send(port, body);
      if (r.code === 250) accepted.set(/queued as ([0-9A-Z]{16})/.exec(r.text)![1]!, body);
      else refusal = r;
    }
    assert.ok(refusal, 'the disk filled up');
    assert.equal(refusal.code, 452);
    assert.match(refusal.text, /^452 4\.3\.1 Insufficient system storage/);
    assert.ok(accepted.size > 0);

    // Every acknowledged message is still there, byte for byte, and the database is sound.
    for (const [id, body] of accepted) assert.ok(relay.store.body(id)!.toString('latin1').endsWith(`Subject: fill\r\n\r\n${body}`), id);
    const check = new DatabaseSync(relay.store.path, { readOnly: true });
    assert.deepEqual(check.prepare('PRAGMA integrity_check').all().map((r) => ({ ...r })), [{ integrity_check: 'ok' }]);
    check.close();

    // Space comes back: normal service, no restart needed.
    rmSync(filler);
    const again = await send(port, bodyOf(999));
    assert.equal(again.code, 250, again.text);
    assert.equal(relay.store.messageCount(), accepted.size + 1);
  } finally {
    await relay.stop();
    execFileSync('umount', ['-l', mnt]);
  }
});
