// One client of the kill -9 tests: authenticates once, then sends messages until told to stop or
// the connection dies (the relay was killed). Records which Message-IDs got a 250 (and as which
// queue id) and which were complete on the wire (the relay may have committed those without our
// seeing the 250).
import { USER, PASSWORD } from './relay-harness.ts';
import { SmtpProbe } from './smtp-probe.ts';

export interface SubmitLoop {
  /** The DATA of message `n` (without the final "."), given its Message-ID. */
  data(msgId: string, n: number): string | Buffer;
  acked: Map<string, string>;
  completed?: Set<string>;
  stop: { now: boolean };
}

export async function submitUntilDead(port: number, clientNo: number, loop: SubmitLoop): Promise<void> {
  let p: SmtpProbe;
  try {
    p = await SmtpProbe.open(port);
    await p.reply();
    await p.command('EHLO crash.test');
    const auth = await p.command(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASSWORD}`).toString('base64')}`);
    if (auth.code !== 235) throw new Error(auth.text);
  } catch {
    return;
  }
  for (let n = 0; !loop.stop.now; n++) {
    const msgId = `<c${clientNo}.m${n}.${process.hrtime.bigint()}@crash.test>`;
    try {
      p.write('MAIL FROM:<app@example.com>\r\nRCPT TO:<user@gmail.com>\r\nDATA\r\n');
      for (let i = 0; i < 3; i++) if ((await p.reply()).code >= 400) return;
      const data = loop.data(msgId, n);
      p.write(typeof data === 'string' ? `${data}.\r\n` : Buffer.concat([data, Buffer.from('.\r\n')]));
      // From here the message is complete on the wire; the relay may commit it even if we never see the 250.
      loop.completed?.add(msgId);
      const r = await p.reply();
      if (r.code !== 250) return;
      loop.acked.set(msgId, /queued as ([0-9A-Z]{16})/.exec(r.text)![1]!);
    } catch {
      return;
    }
  }
  p.close();
}
