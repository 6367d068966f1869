// Start-up failures: one line naming the thing at fault and what to do, a distinct exit code,
// never a stack trace (issue 17).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE, CLI } from '../support/relay-harness.ts';
import { STARTUP_EXIT } from '../../relay/startup-error.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-startup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A port held by this test for the duration of the file. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => server.close());
  return { port: (server.address() as { port: number }).port, server };
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, stdout });
    });
  });
}

/** One sentence on stderr, no stack frames. */
function assertOneLine(stderr: string, expected: RegExp): void {
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('{')); // JSON log lines are the logger's
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0]!, expected);
  assert.doesNotMatch(stderr, /^\s+at /m, 'a stack trace reached the user');
}

function relayConfig(body: string): string {
  const file = join(dir, `relay-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `dataDir: ${join(dir, 'data-' + Math.random().toString(36).slice(2))}\nhttp:\n  address: 127.0.0.1\n  port: 0\n${body}`);
  return file;
}

test('mailfleet dev with the capture MX port taken: names the port and the flag, exit 3', async () => {
  const { port } = await holdPort();
  const r = await cli(['dev', '--dir', join(dir, 'dev'), '--port', '0', '--ui-port', '0', '--http-port', '0', '--capture-port', String(port)]);
  assert.equal(r.status, STARTUP_EXIT.portInUse, r.stderr);
  assertOneLine(r.stderr, new RegExp(`^mailfleet dev: port ${port} \\(capture MX\\) is in use on 127\\.0\\.0\\.1; is another mailfleet dev running\\? use --capture-port$`));
});

test('mailfleet relay with its listener port taken: names the listener and the config field, exit 3', async () => {
  const { port } = await holdPort();
  const r = await cli(['relay', '--config', relayConfig(`listeners:\n  - name: submission\n    address: 127.0.0.1\n    port: ${port}\n    tls: none\n`)]);
  assert.equal(r.status, STARTUP_EXIT.portInUse, r.stderr);
  assertOneLine(r.stderr, new RegExp(`^mailfleet relay: port ${port} \\(SMTP listener "submission"\\) is in use on 127\\.0\\.0\\.1; change listeners\\[0\\]\\.port in the relay config`));
});

test('mailfleet relay on an address this machine does not have: exit 4', async () => {
  // 192.0.2.0/24 is TEST-NET-1: never assigned to a host.
  const r = await cli(['relay', '--config', relayConfig('listeners:\n  - name: submission\n    address: 192.0.2.10\n    port: 2587\n    tls: none\n')]);
  assert.equal(r.status, STARTUP_EXIT.addressNotBindable, r.stderr);
  assertOneLine(r.stderr, /^mailfleet relay: address 192\.0\.2\.10 \(SMTP listener "submission"\) is not on this machine/);
});

test('mailfleet relay with an unreadable certificate: names both files, exit 5', async () => {
  const cert = join(dir, 'broken.crt');
  const key = join(dir, 'broken.key');
  writeFileSync(cert, 'not a certificate\n');
  writeFileSync(key, 'not a key\n');
  const r = await cli(['relay', '--config', relayConfig(`tls:\n  certFile: ${cert}\n  keyFile: ${key}\nlisteners:\n  - name: submission\n    address: 127.0.0.1\n    port: 0\n    tls: starttls\n`)]);
  assert.equal(r.status, STARTUP_EXIT.unreadableCertificate, r.stderr);
  assertOneLine(r.stderr, new RegExp(`^mailfleet relay: TLS certificate ${cert.replace(/[.]/g, '\\.')} or key ${key.replace(/[.]/g, '\\.')} cannot be used \\(.+\\); check tls\\.certFile and tls\\.keyFile`));
});

test('mailfleet operator with a missing kubeconfig: names the file, exit 6', async () => {
  const missing = join(dir, 'no-such-kubeconfig');
  const r = await cli(['operator', '--kubeconfig', missing]);
  assert.equal(r.status, STARTUP_EXIT.kubeconfig, r.stderr);
  assertOneLine(r.stderr, new RegExp(`^mailfleet operator: kubeconfig ${missing.replace(/[.]/g, '\\.')} \\(--kubeconfig .+\\) does not exist; pass --kubeconfig`));
});

test('mailfleet operator with no kubeconfig anywhere: says where it looked, exit 6', async () => {
  const r = await cli(['operator'], { KUBECONFIG: '', HOME: dir, KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '' });
  assert.equal(r.status, STARTUP_EXIT.kubeconfig, r.stderr);
  assertOneLine(r.stderr, /^mailfleet operator: no kubeconfig: not running in a cluster, \$KUBECONFIG is unset and ~\/\.kube\/config does not exist/);
});

test('mailfleet operator with an API server that does not answer: names the server, exit 7', async () => {
  const { port, server } = await holdPort();
  await new Promise<void>((resolve) => server.close(() => resolve())); // a port nobody listens on
  const kubeconfig = join(dir, 'kubeconfig-dead');
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters: [{ name: dead, cluster: { server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: c, context: { cluster: dead, user: u } }]
current-context: c
`);
  const r = await cli(['operator', '--kubeconfig', kubeconfig, '--metrics-port', '0']);
  assert.equal(r.status, STARTUP_EXIT.apiserverUnreachable, r.stderr);
  assertOneLine(r.stderr, new RegExp(`^mailfleet operator: the Kubernetes API server at https://127\\.0\\.0\\.1:${port} does not answer \\(ECONNREFUSED\\)`));
});
