// The verification examples in docs/events.md, run as a receiver would run them (Node and
// Python 3), against signatures made by the relay's signer: genuine, tampered, old, unknown key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signWebhook } from '../../relay/events/webhooks.ts';

const doc = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');
const js = /```js\n([\s\S]*?)```/.exec(doc)![1]!;
const py = /```python\n([\s\S]*?)```/.exec(doc)![1]!;
const body = '{"events":[{"id":"abc","type":"delivered"}]}';
const now = Math.floor(Date.now() / 1000);
const cases: [string, string, boolean][] = [
  ['genuine', signWebhook('s3cret', 'k2', now, body), true],
  ['tampered body', signWebhook('s3cret', 'k2', now, body.replace('delivered', 'bounced')), false],
  ['ten minutes old', signWebhook('s3cret', 'k2', now - 600, body), false],
  ['unknown key id', signWebhook('s3cret', 'k9', now, body), false],
  ['wrong secret', signWebhook('other', 'k2', now, body), false],
];

test('the docs examples (Node and Python) are 10 lines each and verify exactly the genuine signature', () => {
  assert.ok(js.trim().split('\n').length <= 10 && py.trim().split('\n').length <= 10, 'ten lines each');
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-sigdoc-'));
  try {
    writeFileSync(join(dir, 'verify.mjs'), `${js}\nconst cases = JSON.parse(process.argv[2]);\nconsole.log(JSON.stringify(cases.map(([, h]) => verify(h, Buffer.from(${JSON.stringify(body)}), { k2: 's3cret' }))));\n`);
    writeFileSync(join(dir, 'verify.py'), `${py}\nimport json, sys\nprint(json.dumps([verify(h, ${JSON.stringify(body)}.encode(), {"k2": "s3cret"}) for _, h, _ in json.loads(sys.argv[1])]))\n`);
    const want = cases.map((c) => c[2]);
    const node = spawnSync(process.execPath, [join(dir, 'verify.mjs'), JSON.stringify(cases)], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(node.stdout), want, node.stderr);
    const python = spawnSync('python3', [join(dir, 'verify.py'), JSON.stringify(cases)], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(python.stdout), want, python.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
