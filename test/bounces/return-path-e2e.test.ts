// The return path end to end on one relay: submitted mail leaves with a signed token as MAIL FROM
// (one transaction per recipient, each naming its recipient, the source IP and the pool), and the
// receiver's bounce to that address, sent back to the relay's MX listener, is attributed to the
// message and recipient without any lookup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { workspace, USER, PASSWORD, type Workspace } from '../support/relay-harness.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { startDelivery } from '../../relay/delivery/engine.ts';
import { startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startSinksOnOnePort, type Sink } from '../support/sink.ts';
import { verifyToken, tokenNamesRecipient } from '../../relay/returnpath/token.ts';
import type { FeedbackRecord } from '../../relay/bounce/feedback-record.ts';
import { postfixDsn, writeKeysFile, TEST_KEY } from './messages.ts';

const BOUNCES = 'bounces.brand.test';
let ws: Workspace;
let relay: Relay;
let sink: Sink;
let dns: Dnsmasq;
const records: FeedbackRecord[] = [];

before(async () => {
  ws = await workspace();
  [sink] = await startSinksOnOnePort([{ address: '127.0.8.21' }]);
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(ws.dir, 'ed.pem')], { stdio: 'pipe' });
  const edPub = createPublicKey(readFileSync(join(ws.dir, 'ed.pem'))).export({ type: 'spki', format: 'der' }).subarray(12).toString('base64');
  dns = await startDnsmasq({
    mx: [{ domain: 'rp-rcpt.test', host: 'mx.rp-rcpt.test', preference: 10 }],
    a: [{ name: 'mx.rp-rcpt.test', address: '127.0.8.21' }],
    txt: [{ name: 'rp._domainkey.brand.test', text: `v=DKIM1; k=ed25519; p=${edPub}` }],
  });
  const config = parseRelayConfig({
    hostname: 'relay.rp.test',
    dataDir: join(ws.dir, 'data'),
    log: { level: 'silent' },
    http: { address: '127.0.0.1', port: 0 },
    listeners: [
      { name: 'sub', role: 'submission', address: '127.0.0.1', port: 0, tls: 'none', allowPlaintextAuthOnLoopback: true },
      { name: 'mx', role: 'mx', address: '127.0.0.1', port: 0, tls: 'none', greetingDelayMs: 0 },
    ],
    auth: { credentialsFile: ws.credentialsFile },
    acceptDomains: [BOUNCES],
    returnPath: { keysFile: writeKeysFile(), pool: 'e2e-pool' },
    domains: [{
      domain: 'brand.test', returnPathDomain: BOUNCES,
      dkim: [{ selector: 'rp', algorithm: 'ed25519-sha256', keyFile: join(ws.dir, 'ed.pem') }],
      feedbackId: { senderId: 'mailfleet1', fields: ['header:X-Campaign', 'user', 'class'] },
    }],
    delivery: { dnsServers: [dns.server], allowPrivateMx: true, egressIps: [{ address: '127.0.0.5', hostname: 'out-rp.mailfleet.test' }] },
  }, 'e2e');
  relay = await startRelay(config, {
    logger: createLogger('silent', 'relay'),
    delivery: (deps) => startDelivery({ ...deps, mxPort: sink.port, mtaSts: false }),
    onFeedback: (r) => {
      records.push(r);
    },
  });
});

after(async () => {
  await relay?.stop();
  await sink?.close();
  await dns?.stop();
});

test('each recipient gets its own signed return path; its bounce comes back attributed to message and recipient', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port('sub'), secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } });
  const info = await transport.sendMail({ from: 'News <news@brand.test>', to: ['ann@rp-rcpt.test', 'bob@rp-rcpt.test'], envelope: { from: 'app@submitter.test', to: ['ann@rp-rcpt.test', 'bob@rp-rcpt.test'] }, subject: 'Invoice 42', text: 'hello' });
  transport.close();
  const queueId = /queued as ([0-9A-Z]{16})/.exec(info.response)![1]!;

  const got = await sink.waitForMessages(2, 20_000);
  assert.equal(got.length, 2);
  const byRcpt = new Map(got.map((m) => [m.to.join(','), m]));
  for (const rcpt of ['ann@rp-rcpt.test', 'bob@rp-rcpt.test']) {
    const m = byRcpt.get(rcpt);
    assert.ok(m, `a transaction for ${rcpt} alone`);
    const [local, domain] = m.from.split('@') as [string, string];
    assert.equal(domain, BOUNCES);
    assert.ok(local.length <= 64);
    const v = verifyToken(local, domain, { keys: [TEST_KEY], now: Date.now(), validityMs: 86_400_000, pool: 'e2e-pool' });
    assert.equal(v.trusted, true, v.reason);
    assert.equal(v.queueId, queueId);
    assert.equal(v.ip, '127.0.0.5');
    assert.equal(v.pool, 'e2e-pool');
    assert.ok(tokenNamesRecipient(v, rcpt));
  }

  // Bob's server bounces it later, to the return path it was given.
  const returnPath = byRcpt.get('bob@rp-rcpt.test')!.from;
  const dsn = join(ws.dir, 'bob-dsn.eml');
  writeFileSync(dsn, postfixDsn({ to: returnPath, recipient: 'bob@rp-rcpt.test', status: '5.1.1', diagnostic: '550 5.1.1 <bob@rp-rcpt.test>: Recipient address rejected: User unknown' }));
  const code = await new Promise<number>((resolve) => spawn('swaks', ['--hide-all', '--server', `127.0.0.1:${relay.port('mx')}`, '--from', '<>', '--to', returnPath, '--data', `@${dsn}`]).on('close', (c) => resolve(c ?? -1)));
  assert.equal(code, 0);
  const rec = records.at(-1)!;
  assert.equal(rec.attributed, true);
  assert.equal(rec.token?.queueId, queueId);
  assert.equal(rec.token?.ip, '127.0.0.5');
  assert.deepEqual(rec.recipients.map((r) => [r.address, r.hard]), [['bob@rp-rcpt.test', true]]);
  assert.ok(tokenNamesRecipient(rec.token!, 'bob@rp-rcpt.test'));
});

test('bulk mail carries Feedback-ID from the configured parts, covered by the DKIM signature', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.port('sub'), secure: false, ignoreTLS: true, auth: { user: USER, pass: PASSWORD } });
  await transport.sendMail({ from: 'news@brand.test', to: 'cy@rp-rcpt.test', subject: 'Sale', text: 'hello', headers: { 'X-Mailfleet-Class': 'bulk', 'X-Campaign': 'winter' } });
  transport.close();
  const m = (await sink.waitForMessages(3, 20_000)).find((x) => x.to[0] === 'cy@rp-rcpt.test')!;
  const head = m.body.toString('latin1').split('\r\n\r\n')[0]!;
  assert.match(head, new RegExp(`^Feedback-ID: winter:${USER.replace('.', '\\.')}:bulk:mailfleet1$`, 'm'));
  const resolver = new Resolver();
  resolver.setServers([dns.server]);
  const v = await dkimVerify(m.body, { resolver: async (name: string) => resolver.resolveTxt(name) });
  assert.equal(v.results.length, 1);
  assert.equal(v.results[0]!.status.result, 'pass', JSON.stringify(v.results[0]!.status));
  const signed = /^DKIM-Signature:[^]*?\bh=([^;]+)/m.exec(head)?.[1]?.replace(/\s+/g, '') ?? '';
  assert.match(signed, /(^|:)feedback-id(:|$)/i, `h=${signed}`);
});
