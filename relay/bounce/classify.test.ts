import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyReply, parseReplyLine, type SmtpPhase } from './classify.ts';
import { BOUNCE_CATEGORIES } from './rules.ts';

function classify(line: string, phase: SmtpPhase = 'rcpt') {
  const p = parseReplyLine(line);
  return classifyReply({ ...p, phase });
}

// Real replies, as published by the providers or quoted in their postmaster pages.
const CASES: { category: string; line: string; phase?: SmtpPhase; permanent: boolean }[] = [
  { category: 'unknown-user', permanent: true, line: "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser" },
  { category: 'unknown-user', permanent: true, line: '550 5.5.0 Requested action not taken: mailbox unavailable. [SN1NAM02FT0XX.eop-nam02.prod.protection.outlook.com]' },
  { category: 'unknown-user', permanent: true, line: '554 delivery error: dd This user doesn\'t have a yahoo.com account (someone@yahoo.com) [0] - mta1234.mail.bf1.yahoo.com' },
  { category: 'mailbox-full', permanent: false, line: '452-4.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp' },
  { category: 'mailbox-full', permanent: true, line: '552 5.2.2 Mailbox full' },
  { category: 'rate-limited', permanent: false, line: '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes' },
  { category: 'reputation', permanent: true, line: '550 5.7.1 Service unavailable, Client host [192.0.2.1] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1 (AS3130). [BN8NAM12FT003.eop-nam12.prod.protection.outlook.com]' },
  { category: 'reputation', permanent: true, line: "550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked." },
  { category: 'rate-limited', permanent: false, line: '421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.' },
  { category: 'rate-limited', permanent: false, line: '450 4.7.28 too many connections' },
  { category: 'rate-limited', permanent: true, line: '550 5.1.1 <someone@example.com> - 203.0.113.222 has sent to too many recipients this hour. IB607 <http://x.co/rlbounce>' },
  { category: 'spam-content', permanent: true, line: '550-5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.', phase: 'eom' },
  { category: 'spam-content', permanent: true, line: '554 5.7.1 Message rejected as spam by Content Filtering.', phase: 'eom' },
  { category: 'auth', permanent: true, line: "550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM." },
  { category: 'auth', permanent: true, line: '550 5.7.509 Access denied, sending domain example.com does not pass DMARC verification and has a DMARC policy of reject.' },
  { category: 'policy', permanent: true, line: '554 5.7.1 <someone@example.net>: Relay access denied' },
  { category: 'reputation', permanent: true, line: '550 5.7.1 Unfortunately, messages from [192.0.2.1] weren\'t sent. Please contact your Internet service provider since part of their network is on our block list (S3140).' },
  { category: 'policy', permanent: true, line: '550 5.1.1 RCP-P2 http://postmaster.facebook.com/response_codes#rcp Refused due to recipient preferences' },
  { category: 'policy', permanent: true, line: '550 5.7.1 Recipient address rejected: Access denied. AS(201806281) [DM6NAM12FT034.eop-nam12.prod.protection.outlook.com]' },
  { category: 'message-size', permanent: true, line: '552-5.3.4 Your message exceeded Google\'s message size limits.', phase: 'eom' },
  { category: 'tls', permanent: true, line: '530 5.7.0 Must issue a STARTTLS command first', phase: 'mail' },
  { category: 'tls', permanent: false, line: 'certificate has expired (CERT_HAS_EXPIRED)', phase: 'tls' },
  { category: 'unknown-domain', permanent: true, line: '550 5.1.2 <someone@nonexistent.example>: Host or domain name not found. Name service error for name=nonexistent.example type=A: Host not found' },
  { category: 'mailbox-disabled', permanent: true, line: "550-5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser" },
  { category: 'expired', permanent: true, line: '550 5.4.7 Message expired: retry timeout exceeded', phase: 'eom' },
  { category: 'dns', permanent: true, line: '556 5.1.10 example.org does not accept mail (null MX)', phase: 'dns' },
  { category: 'dns', permanent: false, line: '451 4.4.3 DNS lookup for example.org failed: SERVFAIL', phase: 'dns' },
  { category: 'connection', permanent: false, line: 'connect ECONNREFUSED 192.0.2.10:25', phase: 'connect' },
  { category: 'hard', permanent: true, line: '554 5.0.0 Transaction failed' },
  { category: 'soft', permanent: false, line: '451 4.3.0 Temporary local problem - please try later' },
];

test('every category has a real-world reply', () => {
  const covered = new Set(CASES.map((c) => c.category));
  for (const c of BOUNCE_CATEGORIES) assert.ok(covered.has(c), `no case for ${c}`);
});

for (const c of CASES) {
  test(`${c.category}: ${c.line.slice(0, 60)}`, () => {
    const r = classify(c.line, c.phase);
    assert.equal(r.category, c.category);
    assert.equal(r.permanent, c.permanent);
  });
}

test('hard bounces: only a permanent unknown user or domain; a 5.7.1 block never is', async () => {
  const { isHardBounce } = await import('./classify.ts');
  const hard = (line: string) => isHardBounce(classify(line));
  assert.equal(hard('550 5.1.1 <x@example.com>: Recipient address rejected: User unknown'), true);
  assert.equal(hard('550 5.1.2 Host or domain name not found'), true);
  assert.equal(hard('450 4.1.1 <x@example.com>: Recipient address rejected: User unknown in local recipient table'), false);
  assert.equal(hard("550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending IP address."), false);
  assert.equal(hard('552 5.2.2 Mailbox full'), false);
  // "User unknown" words under a policy status are a block (a 5.7.1 is never the recipient's fault).
  assert.equal(hard('553 5.7.1 Invalid recipient someone@example.org (Mode: normal)'), false);
  assert.equal(classify('553 5.7.1 Invalid recipient someone@example.org').category, 'policy');
});

test('parseReplyLine splits code, enhanced code and text', () => {
  assert.deepEqual(parseReplyLine('550 5.1.1 no such user'), { code: 550, enhanced: '5.1.1', text: 'no such user' });
  assert.deepEqual(parseReplyLine('250 ok'), { code: 250, text: 'ok' });
});

test('config rules override the built-in ones', () => {
  const reply = { ...parseReplyLine('550 5.7.1 weird local wording X42'), phase: 'rcpt' as const };
  assert.equal(classifyReply(reply).category, 'policy');
  assert.equal(classifyReply(reply, [{ category: 'reputation', text: 'X42' }]).category, 'reputation');
});

test('the config schema accepts exactly the classifier\'s categories', async () => {
  const { BounceRuleSchema } = await import('../config/schema.ts');
  assert.deepEqual([...BounceRuleSchema.shape.category.options].sort(), [...BOUNCE_CATEGORIES].sort());
  assert.equal(BounceRuleSchema.safeParse({ category: 'policy', text: '(' }).success, false);
  assert.equal(BounceRuleSchema.safeParse({ category: 'reputation', text: 'X42', enhanced: '5.7.' }).success, true);
});
