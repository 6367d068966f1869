// The relay's HTTP API needs the bearer token from http.apiTokenFile; probes and metrics stay open.
// A real relay process: 401 without or with a wrong token (counted by reason), 200 with it, and a
// rotation done the way a Secret volume does it (..data symlink swap) is picked up without a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { workspace, baseConfig, writeConfig, startRelayProcess, NODE, CLI } from '../support/relay-harness.ts';

/** A directory laid out like a mounted Secret: token -> ..data/token, ..data -> ..<version>. */
function secretDir(root: string, token: string): { dir: string; rotate(token: string): void } {
  const dir = join(root, 'api-secret');
  let version = 0;
  const write = (t: string) => {
    const v = join(dir, `..v${++version}`);
    mkdirSync(v, { recursive: true });
    writeFileSync(join(v, 'token'), t);
    symlinkSync(`..v${version}`, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data')); // atomic, as the kubelet does
  };
  mkdirSync(dir, { recursive: true });
  write(token);
  symlinkSync('..data/token', join(dir, 'token'));
  return { dir, rotate: write };
}

async function get(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

/** The token check re-reads the file at most once a second: poll until the relay answers as expected. */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
}

test('HTTP API: 401 without or with a wrong token (counted), 200 with it; probes and metrics open; rotation without restart', async (t) => {
  const ws = await workspace();
  const secret = secretDir(ws.dir, 'first-token\n');
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' }, http: { address: '127.0.0.1', port: 0, apiTokenFile: join(secret.dir, 'token') } });
  const relay = await startRelayProcess(configFile);
  t.after(async () => {
    relay.child.kill('SIGTERM');
    await relay.exited;
  });
  const port = relay.http;

  const none = await get(port, '/v1/stats');
  assert.equal(none.status, 401);
  assert.match(none.body, /bearer token is required/);
  assert.equal((await get(port, '/v1/stats', 'not-the-token')).status, 401);
  assert.equal((await get(port, '/v1/stats', 'not-the-token')).status, 401);
  assert.equal((await get(port, '/v1/no-such-route')).status, 401, 'unknown API paths do not tell a stranger what exists');
  const ok = await get(port, '/v1/stats', 'first-token');
  assert.equal(ok.status, 200);
  assert.ok('schemaVersion' in JSON.parse(ok.body) || 'version' in JSON.parse(ok.body));

  assert.equal((await get(port, '/healthz')).status, 200);
  assert.equal((await get(port, '/readyz')).status, 200);
  const metrics = await get(port, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^mailfleet_relay_http_unauthorized_total\{reason="missing"\} 2$/m);
  assert.match(metrics.body, /^mailfleet_relay_http_unauthorized_total\{reason="wrong"\} 2$/m);

  // Rotation step 1: both tokens accepted (the operator renders old and new while relays catch up).
  secret.rotate('first-token\nsecond-token\n');
  await eventually(async () => (await get(port, '/v1/stats', 'second-token')).status === 200, 'the second token is accepted');
  assert.equal((await get(port, '/v1/stats', 'first-token')).status, 200);
  // Step 2: the old token retired.
  secret.rotate('second-token\n');
  await eventually(async () => (await get(port, '/v1/stats', 'first-token')).status === 401, 'the first token is refused');
  assert.equal((await get(port, '/v1/stats', 'second-token')).status, 200);
  // A broken rotation (empty file) keeps the tokens in force rather than locking everyone out.
  secret.rotate('');
  // A request makes the relay look at the file (at most once a second); it logs the empty file.
  await eventually(async () => {
    assert.equal((await get(port, '/v1/stats', 'second-token')).status, 200);
    return relay.logs.some((l) => l['msg'] === 'API token file unreadable; keeping the previous tokens' && /no token in the file/.test(String(l['err'])));
  }, 'the relay saw the empty token file');
  assert.equal((await get(port, '/v1/stats', 'second-token')).status, 200);
});

test('a relay whose token file cannot be read refuses to start and names the field', async () => {
  const ws = await workspace();
  const configFile = writeConfig(ws, { ...baseConfig(ws), log: { level: 'info' }, http: { address: '127.0.0.1', port: 0, apiTokenFile: join(ws.dir, 'missing-token') } });
  const r = spawnSync(NODE, [CLI, 'relay', '--config', configFile], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout + r.stderr, /http\.apiTokenFile: .*missing-token/);
});
