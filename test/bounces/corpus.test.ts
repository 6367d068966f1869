// Every message of the bounce corpus (test/fixtures/bounces: real bounces and complaints from
// sisimai's set-of-emails, with sisimai's expected results) through the relay's real MX listener,
// addressed to a return path this relay minted; what the relay records is compared with sisimai.
// The agreement is printed and held at or above the target (95 %).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { workspace, baseConfig } from '../support/relay-harness.ts';
import { parseRelayConfig } from '../../relay/config/load.ts';
import { startRelay, type Relay } from '../../relay/relay.ts';
import { createLogger } from '../../relay/log.ts';
import { SmtpConnection } from '../../relay/delivery/smtp-client.ts';
import type { FeedbackRecord } from '../../relay/bounce/feedback-record.ts';
import { CORPUS, corpusFiles, compare, summary, expectations } from './corpus-compare.ts';
import { writeKeysFile, returnPathFor } from './messages.ts';

const TARGET = 0.95;
const BOUNCES = 'bounces.corpus.test';
// Results the corpus lists that one message received over SMTP cannot yield (docs/bounces.md):
// rhost-cox-01 is two bounces concatenated in one file (the second is the first's epilogue), and
// lhost-fml-03 is a mailing list's loop alert, which names no recipient.
const NOT_FINDABLE = new Set(['rhost-cox-01.eml#2', 'lhost-fml-03.eml#1']);

let relay: Relay;
let conn: SmtpConnection;
const byRcpt = new Map<string, FeedbackRecord>();

before(async () => {
  const ws = await workspace();
  const config = parseRelayConfig(baseConfig(ws, {
    listeners: [{ name: 'mx', role: 'mx', address: '127.0.0.1', port: 0, tls: 'none', greetingDelayMs: 0 }],
    acceptDomains: [BOUNCES],
    returnPath: { keysFile: writeKeysFile(), pool: 'corpus' },
    // Five corpus files were saved from mailboxes with lines over 998 octets (SES JSON, GMX).
    limits: { maxMessageBytes: 25 * 1024 * 1024, maxRecipients: 100, maxLineOctets: 4096, authFailures: { max: 5, windowSeconds: 300 } },
  }), 'corpus');
  relay = await startRelay(config, {
    logger: createLogger('silent', 'relay'),
    delivery: false,
    onFeedback: (r) => {
      for (const to of r.envelope?.rcptTo ?? []) byRcpt.set(to, r);
    },
  });
  conn = await SmtpConnection.open({ host: 'relay', address: '127.0.0.1', port: relay.port('mx'), ehloName: 'mx.sender.test', tls: 'none', connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
});
after(async () => {
  await conn?.quit();
  await relay?.stop();
});

test('the bounce corpus through the MX listener agrees with sisimai for at least 95 % of the results', async () => {
  const files = corpusFiles();
  assert.equal(files.length, 335);
  const records = new Map<string, FeedbackRecord>();
  for (const file of files) {
    const { address, queueId } = returnPathFor(`someone+${file}@example.net`.replace(/\.eml@/, '@'), BOUNCES, { pool: 'corpus' });
    // The client sends CRLF lines (about one file in seven is stored that way already) and stuffs dots.
    const raw = readFileSync(join(CORPUS, file));
    const r = await conn.send('', [address], raw);
    // The DATA reply when RCPT was accepted: 250 only once the record is handed over.
    assert.equal(r.recipients[0]!.reply.code, 250, `${file}: ${r.recipients[0]!.phase} ${r.recipients[0]!.reply.raw}`);
    const rec = byRcpt.get(address);
    assert.ok(rec, `${file}: no record handed to onFeedback before the 250`);
    // Every report is attributed to the message the token names, whatever the report says.
    assert.equal(rec.token?.trusted, true, `${file}: token ${rec.token?.reason}`);
    assert.equal(rec.token?.queueId, queueId);
    records.set(file, rec);
  }
  const a = compare(records);
  console.log(summary(a));
  const unexpectedMissing = a.disagreements.filter((d) => d.why === 'missing' && !NOT_FINDABLE.has(`${d.file}#${d.index}`));
  assert.deepEqual(unexpectedMissing.map((d) => `${d.file}#${d.index}`), [], 'every failed recipient the expectations list is found');
  assert.ok(a.agreed / a.results >= TARGET, `agreement ${(100 * a.agreed / a.results).toFixed(1)} % is below ${TARGET * 100} %:\n${a.disagreements.map((d) => JSON.stringify(d)).join('\n')}`);
  // Files without expectations still produce a record (checked above); kinds are the documented ones.
  const kinds = new Set([...records.values()].map((r) => r.kind));
  for (const k of kinds) assert.ok(['dsn', 'arf', 'autoreply', 'delivery-report', 'unknown'].includes(k), k);
  assert.equal(expectations().size, 314);
});
