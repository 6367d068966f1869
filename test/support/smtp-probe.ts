// A raw SMTP client for tests that must send exactly the bytes they mean (smuggling, pipelining,
// early talking). Replies are parsed as RFC 5321 multi-line replies.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface Reply {
  code: number;
  lines: string[];
  text: string;
}

export class SmtpProbe {
  socket: Socket;
  private buffer = '';
  private replies: Reply[] = [];
  private waiters: ((r: Reply) => void)[] = [];
  private closedWaiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.closedWaiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  static open(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpProbe> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) }, () => resolve(new SmtpProbe(s)));
      s.once('error', reject);
    });
  }

  static openTls(port: number, host = '127.0.0.1'): Promise<SmtpProbe> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ port, host, rejectUnauthorized: false }, () => resolve(new SmtpProbe(s)));
      s.once('error', reject);
    });
  }

  private onData(d: string): void {
    this.buffer += d;
    let idx: number;
    let lines: string[] = [];
    while ((idx = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, idx);
      this.buffer = this.buffer.slice(idx + 2);
      lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const reply = { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
        lines = [];
        const w = this.waiters.shift();
        if (w) w(reply);
        else this.replies.push(reply);
      }
    }
    if (lines.length) this.buffer = lines.map((l) => l + '\r\n').join('') + this.buffer;
  }

  /** The next reply; rejects if the connection closes first. */
  reply(): Promise<Reply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push(resolve);
      this.closedWaiters.push(() => reject(new Error('connection closed before a reply')));
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Upgrades with STARTTLS (the caller has already had the 220 to STARTTLS). */
  async upgrade(): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false }, () => resolve());
      s.once('error', reject);
      this.socket = s;
      this.attach(s);
    });
  }

  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.closedWaiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}
