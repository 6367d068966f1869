// What an operator of a running relay does: read and edit the queue with the CLI, rotate the
// certificate and the credentials without a restart, scrape metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { renameSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { connect } from 'node:tls';
import { workspace, startTestRelay, USER, PASSWORD, NODE, CLI, type Workspace } from '../support/relay-harness.ts';
import { makeCertificate } from '../support/certs.ts';
import type { Relay } from '../../relay/relay.ts';

let ws: Workspace;
let relay: Relay;
before(async () => {
  ws = await workspace();
  relay = await startTestRelay(ws);
});
after(() => relay.stop());

const cli = (...args: string[]) => spawnSync(NODE, [CLI, ...args], { encoding: 'utf8' });

async function submit(user = USER, pass = PASSWORD, to = 'a@gmail.com'): Promise<string> {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port('smtps'), secure: true, auth: { user, pass }, tls: { rejectUnauthorized: false } });
  try {
    const info = await t.sendMail({ from: 'app@example.com', to, subject: 'ops', text: 'x', messageId: '<ops@test>' });
    return /queued as ([0-9A-Z]{16})/.exec(info.response)![1]!;
  } finally {
    t.close();
  }
}

test('mailfleet queue ls, show, retry and delete work on the store the running relay uses', async () => {
  const id = await submit(USER, PASSWORD, 'b@yahoo.com');
  const dataDir = relay.config.dataDir;
  const ls = cli('queue', 'ls', '--data-dir', dataDir);
  assert.equal(ls.status, 0, ls.stderr);
  assert.match(ls.stdout, new RegExp(`^${id} +\\d+s +\\d+ +transactional +app@example\\.com +1 queued$`, 'm'));

  const show = cli('queue', 'show', id, '--data-dir', dataDir);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /message-id: {2}<ops@test>/);
  assert.match(show.stdout, /<b@yahoo\.com> {2}queued {2}attempts=0/);

  const retry = cli('queue', 'retry', id, '--data-dir', dataDir);
  assert.equal(retry.status, 0, retry.stderr);
  assert.match(retry.stdout, /1 recipient\(s\) due now/);

  const del = cli('queue', 'delete', id, '--data-dir', dataDir);
  assert.equal(del.status, 0, del.stderr);
  assert.equal(relay.store.get(id), undefined, 'the relay sees the deletion');
  const again = cli('queue', 'show', id, '--data-dir', dataDir);
  assert.equal(again.status, 1);
  assert.match(again.stderr, new RegExp(`no message ${id} in the queue`));
  const bad = cli('queue', 'show', 'nope', '--data-dir', dataDir);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /"nope" is not a queue id/);
});

test('a rotated certificate is served to new connections without a restart', async () => {
  const fingerprint = () =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ port: relay.port('smtps'), host: '127.0.0.1', rejectUnauthorized: false }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256);
        s.destroy();
      });
      s.on('error', reject);
    });
  const old = await fingerprint();
  assert.equal(old, relay.tls!.current.fingerprint256);
  const next = makeCertificate(ws.dir, 'next', 'rotated.test');
  const changed = once(relay.tls!, 'change');
  // Kubernetes swaps Secret files by rename; do the same.
  renameSync(next.keyFile, ws.tls.keyFile);
  renameSync(next.certFile, ws.tls.certFile);
  const [material] = (await changed) as [{ fingerprint256: string }];
  assert.notEqual(material.fingerprint256, old);
  assert.equal(await fingerprint(), material.fingerprint256);
});

test('credentials added and removed with the CLI take effect in the running relay', async () => {
  const add = spawnSync(NODE, [CLI, 'credentials', 'add', 'billing@example.com', '--password-stdin', '--file', ws.credentialsFile], { input: 'a new long password\n', encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  // The relay reloads on the file's change; wait for the new user to work rather than for a timer.
  let id: string | undefined;
  for (let i = 0; i < 100 && !id; i++) {
    id = await submit('billing@example.com', 'a new long password').catch(async () => {
      await new Promise((r) => setImmediate(r));
      return undefined;
    });
  }
  assert.ok(id, 'the new credential works');
  assert.equal(cli('credentials', 'remove', 'billing@example.com', '--file', ws.credentialsFile).status, 0);
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) {
    refused = await submit('billing@example.com', 'a new long password').then(() => false, (e: Error) => /535 5\.7\.8/.test(e.message));
  }
  assert.ok(refused, 'the removed credential is refused');
  assert.equal(cli('credentials', 'ls', '--file', ws.credentialsFile).stdout.trim(), USER);
  const short = spawnSync(NODE, [CLI, 'credentials', 'add', 'x', '--password-stdin', '--file', ws.credentialsFile], { input: 'short', encoding: 'utf8' });
  assert.equal(short.status, 2);
  assert.match(short.stderr, /password: at least 8 characters/);
});

test('credentials --class sets the default class of that user\'s mail; a bad class is refused naming the flag', async () => {
  const add = spawnSync(NODE, [CLI, 'credentials', 'add', 'otp@example.com', '--class', 'otp', '--password-stdin', '--file', ws.credentialsFile], { input: 'otp sender password\n', encoding: 'utf8' });
  assert.equal(add.status, 0, add.stderr);
  let id: string | undefined;
  for (let i = 0; i < 100 && !id; i++) id = await submit('otp@example.com', 'otp sender password').catch(() => undefined);
  assert.ok(id, 'the new credential works');
  assert.equal(relay.store.get(id)?.class, 'otp');
  const bad = spawnSync(NODE, [CLI, 'credentials', 'add', 'x@example.com', '--class', 'urgent', '--password-stdin', '--file', ws.credentialsFile], { input: 'long enough password', encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--class: expected otp, transactional or bulk, got "urgent"/);
});

test('/metrics passes promtool check metrics and counts what happened; /healthz and /readyz answer', async () => {
  await submit();
  const base = `http://127.0.0.1:${relay.http.port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /^mailfleet_smtp_messages_total\{listener="smtps",result="accepted"\} [1-9]/m);
  assert.match(text, /^mailfleet_queue_commits_total [1-9]/m);
  assert.match(text, /^mailfleet_queue_recipients\{state="queued"\} [1-9]/m);
  // What an SRE asks first: queue depth and oldest age per class, space left, readiness.
  assert.match(text, /^mailfleet_queue_class_recipients\{class="transactional"\} [1-9]/m);
  assert.match(text, /^mailfleet_queue_oldest_age_seconds\{class="transactional"\} (0\.0*[1-9]|[1-9])/m);
  assert.match(text, /^mailfleet_queue_volume_free_bytes [1-9]/m);
  assert.match(text, /^mailfleet_queue_volume_size_bytes [1-9]/m);
  assert.match(text, /^mailfleet_relay_ready 1$/m);
  const promtool = ['/usr/bin/promtool', join(process.env.HOME ?? '', 'bin/promtool')].find((p) => existsSync(p));
  assert.ok(promtool, 'promtool is installed (Debian prometheus); .ci/run installs it');
  const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
});
