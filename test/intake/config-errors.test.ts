// Every kind of bad configuration: exit code 2, and the message names the field at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE, CLI } from '../support/relay-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'mailfleet-config-'));
const good = `dataDir: ${dir}/data
listeners:
  - name: submission
    port: 2587
    tls: none
`;

function relayWith(yaml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return spawnSync(NODE, [CLI, 'relay', '--config', file], { encoding: 'utf8', timeout: 20_000 });
}

const CASES: [string, string, RegExp][] = [
  ['an unknown field', good + 'listners: []\n', /listners: unknown field/],
  ['an unknown nested field', good.replace('tls: none', 'tls: none\n    colour: blue'), /listeners\[0\]\.colour: unknown field/],
  ['a wrong type', good + 'limits:\n  maxRecipients: many\n', /limits\.maxRecipients: .*expected number, received string/],
  ['a number out of range', good.replace('port: 2587', 'port: 70000'), /listeners\[0\]\.port: .*<=65535/],
  ['a value outside an enum', good.replace('tls: none', 'tls: sometimes'), /listeners\[0\]\.tls: .*"starttls"\|"implicit"\|"none"/],
  ['a missing required field', good.replace(/^dataDir:.*\n/, ''), /dataDir: .*expected string, received undefined/],
  ['TLS without certificate files', good.replace('tls: none', 'tls: starttls'), /listeners\[0\]\.tls: tls "starttls" needs the top-level tls\.certFile and tls\.keyFile/],
  ['two listeners on one port', good + '  - name: other\n    port: 2587\n    tls: none\n', /listeners\[1\]\.port: another listener already binds 0\.0\.0\.0:2587/],
  ['a bad egress IP', good + 'delivery:\n  egressIps:\n    - address: 300.1.1.1\n      hostname: mta1.example.com\n', /delivery\.egressIps\[0\]\.address/],
  ['a bad host name', good.replace(/^/, 'hostname: "not a host"\n'), /hostname: .*DNS host name/],
  ['broken YAML', 'listeners: [\n', /YAML syntax/],
];

for (const [what, yaml, expected] of CASES) {
  test(`${what}: exit 2 and the field is named`, () => {
    const r = relayWith(yaml);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, expected);
  });
}

test('a missing config file: exit 2 naming the file', () => {
  const r = spawnSync(NODE, [CLI, 'relay', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /nope\.yaml: invalid configuration\n {2}- cannot read the file/);
});

test('an unknown flag or command: exit 2 naming it', () => {
  const flag = spawnSync(NODE, [CLI, 'relay', '--confg', 'x'], { encoding: 'utf8' });
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /unknown option --confg/);
  const cmd = spawnSync(NODE, [CLI, 'relya'], { encoding: 'utf8' });
  assert.equal(cmd.status, 2);
  assert.match(cmd.stderr, /unknown command "relya"/);
  const value = spawnSync(NODE, [CLI, 'dev', '--port', 'abc'], { encoding: 'utf8' });
  assert.equal(value.status, 2);
  assert.match(value.stderr, /--port: expected a whole number, got "abc"/);
});

test('every command has --help', () => {
  for (const cmd of ['relay', 'operator', 'dev', 'queue', 'credentials', 'config', 'version']) {
    const r = spawnSync(NODE, [CLI, cmd, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: mailfleet ${cmd}`));
  }
});

test('config check prints the config with defaults filled in', () => {
  const file = join(dir, 'good.yaml');
  writeFileSync(file, good);
  const r = spawnSync(NODE, [CLI, 'config', 'check', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).limits.maxMessageBytes, 25 * 1024 * 1024);
});
