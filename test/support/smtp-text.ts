// A raw SMTP connection that keeps everything the server said as text, for tests that write
// bytes at their own pace (slow clients, large bodies) and wait for a reply pattern.
import { connect, type Socket } from 'node:net';

export interface SmtpText {
  socket: Socket;
  said(): string;
  /** Resolves with all the text so far once `re` matches it. */
  waitFor(re: RegExp): Promise<string>;
}

/** Connects and waits for the 220 greeting. */
export async function openSmtpText(port: number, host = '127.0.0.1'): Promise<SmtpText> {
  const socket = connect(port, host);
  let text = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  socket.on('data', (d) => {
    text += d.toString('latin1');
    for (const w of [...waiters]) if (w.re.test(text)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(text);
    }
  });
  const waitFor = (re: RegExp) => new Promise<string>((resolve) => (re.test(text) ? resolve(text) : waiters.push({ re, resolve })));
  await waitFor(/^220 /m);
  return { socket, said: () => text, waitFor };
}
