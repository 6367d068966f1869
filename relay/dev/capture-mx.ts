// The capture MX of `mailfleet dev`: a local mail server that keeps what the relay delivers
// to it and shows it (a console line per message and a small HTTP listing).
import { SMTPServer } from 'smtp-server';
import { createServer, type Server } from 'node:http';
import { EventEmitter } from 'node:events';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { applySmtpServerPatches } from '../intake/smtp-server-patches.ts';
import { bindError } from '../startup-error.ts';

applySmtpServerPatches();

export interface CapturedMessage {
  seq: number;
  receivedAt: string;
  clientAddress: string;
  helo: string;
  mailFrom: string;
  recipients: string[];
  subject: string;
  messageId: string;
  dkim: string;
  size: number;
  raw: Buffer;
}

function header(raw: Buffer, name: string): string {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end < 0 ? raw.length : end).toString('utf8').replace(/\r\n[ \t]+/g, ' ');
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head);
  return m?.[1]?.trim() ?? '';
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export class CaptureMx extends EventEmitter {
  readonly messages: CapturedMessage[] = [];
  private smtp: SMTPServer | undefined;
  private http: Server | undefined;
  private seq = 0;
  smtpPort = 0;
  httpPort = 0;
  private readonly keep: number;
  private readonly dkimTxt: ((name: string) => Promise<string[][]>) | undefined;

  /** `dkimTxt` answers the TXT lookups of DKIM verification (the dev DNS zone). */
  constructor(o: { keep?: number; dkimTxt?: (name: string) => Promise<string[][]> } = {}) {
    super();
    this.keep = o.keep ?? 1000;
    this.dkimTxt = o.dkimTxt;
  }

  /** "dkim=pass (example.com)" style summary: what a receiving provider would conclude. */
  private async dkimResult(raw: Buffer): Promise<string> {
    const head = raw.subarray(0, Math.max(0, raw.indexOf('\r\n\r\n'))).toString('latin1');
    if (!/^dkim-signature:/im.test(head)) return 'dkim=none';
    if (!this.dkimTxt) return 'dkim=unverified';
    try {
      const res = (await dkimVerify(raw, { resolver: this.dkimTxt })) as { results: { signingDomain?: string; status: { result: string } }[] };
      return res.results.map((r) => `dkim=${r.status.result} (${r.signingDomain ?? '?'})`).join(', ');
    } catch (err) {
      return `dkim=temperror (${(err as Error).message})`;
    }
  }

  async start(o: { host: string; smtpPort: number; httpPort: number }): Promise<void> {
    this.smtp = new SMTPServer({
      name: 'capture.mailfleet.test',
      banner: 'mailfleet dev capture MX',
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      disableReverseLookup: true,
      logger: false,
      greetingDelayMs: 0,
      hideENHANCEDSTATUSCODES: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          const raw = Buffer.concat(chunks);
          const dkim = await this.dkimResult(raw);
          const msg: CapturedMessage = {
            seq: ++this.seq,
            receivedAt: new Date().toISOString(),
            clientAddress: session.remoteAddress,
            helo: session.hostNameAppearsAs || '',
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            recipients: session.envelope.rcptTo.map((r) => r.address),
            subject: header(raw, 'subject'),
            messageId: header(raw, 'message-id'),
            dkim,
            size: raw.length,
            raw,
          };
          this.messages.push(msg);
          if (this.messages.length > this.keep) this.messages.shift();
          this.emit('message', msg);
          callback(null, `captured as #${msg.seq}`);
        });
      },
    } as ConstructorParameters<typeof SMTPServer>[0]);
    await new Promise<void>((resolve, reject) => {
      // smtp-server re-emits its socket's errors; without a listener a taken port would be an
      // unhandled 'error' event (a crash with a stack) instead of a sentence.
      this.smtp!.on('error', () => {});
      this.smtp!.server.once('error', (err) => reject(bindError(err, { what: 'capture MX', address: o.host, port: o.smtpPort })));
      this.smtp!.listen(o.smtpPort, o.host, () => resolve());
    });
    this.smtpPort = (this.smtp.server.address() as { port: number }).port;

    this.http = createServer((req, res) => {
      const url = req.url ?? '/';
      const eml = /^\/messages\/(\d+)\.eml$/.exec(url);
      if (url === '/messages.json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(this.messages.map(({ raw: _raw, ...m }) => m), null, 2));
      } else if (eml) {
        const m = this.messages.find((x) => x.seq === Number(eml[1]));
        if (!m) {
          res.writeHead(404).end('no such message\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'message/rfc822' });
        res.end(m.raw);
      } else if (url === '/') {
        const rows = [...this.messages]
          .reverse()
          .map((m) => `<tr><td><a href="/messages/${m.seq}.eml">#${m.seq}</a></td><td>${m.receivedAt}</td><td>${escapeHtml(m.mailFrom)}</td><td>${escapeHtml(m.recipients.join(', '))}</td><td>${escapeHtml(m.subject)}</td><td>${m.clientAddress}</td><td>${m.dkim}</td></tr>`)
          .join('\n');
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>mailfleet dev: captured mail</title><h1>Captured mail (${this.messages.length})</h1>
<table border=1 cellpadding=4><tr><th>#</th><th>received</th><th>from</th><th>to</th><th>subject</th><th>from IP</th><th>DKIM</th></tr>${rows}</table>`);
      } else {
        res.writeHead(404).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', (err) => reject(bindError(err, { what: 'capture MX web listing', address: o.host, port: o.httpPort })));
      this.http!.listen(o.httpPort, o.host, () => resolve());
    });
    this.httpPort = (this.http.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await Promise.all([
      new Promise<void>((r) => (this.smtp ? this.smtp.close(() => r()) : r())),
      new Promise<void>((r) => {
        if (!this.http) return r();
        this.http.close(() => r());
        this.http.closeAllConnections();
      }),
    ]);
  }
}
