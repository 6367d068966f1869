import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staticDnsBackend } from './static.ts';
import { MailResolver, DnsFailure } from './resolver.ts';

test('a dev zone: every domain\'s MX is the capture host', async () => {
  const r = new MailResolver({
    backend: staticDnsBackend({
      mx: { '*': [{ exchange: 'capture.dev.mailfleet.test', priority: 10 }], 'nomail.test': [{ exchange: '', priority: 0 }] },
      a: { 'capture.dev.mailfleet.test': ['127.0.0.1'] },
    }),
  });
  assert.deepEqual(await r.route('anything.example'), { kind: 'mx', hosts: ['capture.dev.mailfleet.test'] });
  assert.deepEqual(await r.addresses('capture.dev.mailfleet.test'), ['127.0.0.1']);
  await assert.rejects(r.route('nomail.test'), (e: unknown) => e instanceof DnsFailure && e.enhanced === '5.1.10');
});

test('NXDOMAIN for unknown names, NODATA for known names without the type', async () => {
  const b = staticDnsBackend({ a: { 'host.test': ['192.0.2.1'], '*.wild.test': ['192.0.2.2'] } });
  await assert.rejects(b.resolveMx('other.test'), { code: 'ENOTFOUND' });
  await assert.rejects(b.resolveMx('host.test'), { code: 'ENODATA' });
  assert.deepEqual(await b.resolve4('x.wild.test', { ttl: true }), [{ address: '192.0.2.2', ttl: 60 }]);
});
