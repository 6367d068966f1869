// The README's first command: `mailfleet dev`, then swaks, and the message shows up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE, CLI } from '../support/relay-harness.ts';

test('mailfleet dev: swaks with the printed credential, and the capture MX shows the message', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-dev-'));
  const dev = spawn(NODE, [CLI, 'dev', '--dir', dir, '--port', '0', '--capture-port', '0', '--ui-port', '0', '--http-port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => dev.kill('SIGTERM'));
  const lines = createInterface({ input: dev.stdout! });
  const seen: string[] = [];
  const waitFor = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      for (const l of seen) {
        const m = re.exec(l);
        if (m) return resolve(m);
      }
      const on = (line: string) => {
        const m = re.exec(line);
        if (m) {
          lines.off('line', on);
          resolve(m);
        }
      };
      lines.on('line', on);
      dev.once('exit', (code) => reject(new Error(`mailfleet dev exited (${code}) before printing ${re}`)));
    });
  lines.on('line', (l) => seen.push(l));

  const [, port] = await waitFor(/relay \(submission\): +127\.0\.0\.1:(\d+)/);
  const [, user, password] = await waitFor(/dev credential: +user (\S+) +password (\S+)/);
  const [, ui] = await waitFor(/captured mail: +(http:\/\/127\.0\.0\.1:\d+\/)/);

  const swaks = spawn('swaks', ['--server', `127.0.0.1:${port}`, '--auth-user', user!, '--auth-password', password!, '--from', 'you@example.com', '--to', 'a@example.com', '--header', 'Subject: hello from the README'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let transcript = '';
  swaks.stdout!.on('data', (d) => (transcript += d));
  swaks.stderr!.on('data', (d) => (transcript += d));
  const [code] = (await new Promise((r) => swaks.on('close', (c) => r([c ?? -1])))) as [number];
  assert.equal(code, 0, `swaks got a 250; its transcript:\n${transcript}`);

  // The full path: MX lookup (dev DNS), delivery from the dev source IP, DKIM signed and verifiable.
  const [line] = await waitFor(/^captured #1: <you@example\.com> -> <a@example\.com> {2}"hello from the README" {2}from (\S+) \((\S+)\), (.*)$/);
  assert.match(line, /from 127\.0\.0\.2 \(mta1\.dev\.mailfleet\.test\), dkim=pass \(example\.com\)$/);
  const listing = (await (await fetch(`${ui}messages.json`)).json()) as { subject: string; recipients: string[] }[];
  assert.deepEqual(listing.map((m) => [m.subject, m.recipients]), [['hello from the README', ['a@example.com']]]);
  const page = await (await fetch(ui!)).text();
  assert.match(page, /hello from the README/);
});
