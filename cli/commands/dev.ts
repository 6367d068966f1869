import { startDev } from '../../relay/dev/dev.ts';
import { devDataDir } from '../../relay/dev/paths.ts';
import { createLogger } from '../../relay/log.ts';
import { parseCommand, untilSignal, intOption } from '../args.ts';

const HELP = `Usage: mailfleet dev [options]

Runs a whole mailfleet on this machine, no cluster needed: a relay accepting mail on
127.0.0.1:2525 (AUTH with a printed dev credential) and a capture MX that receives
everything the relay delivers and lists it on http://127.0.0.1:8025/.

Options:
  --port PORT           relay submission port (default 2525)
  --capture-port PORT   capture MX SMTP port (default 1025)
  --ui-port PORT        capture MX web listing (default 8025)
  --http-port PORT      relay /metrics, /healthz, /readyz (default 8026)
  --dir DIR             state directory: queue, credentials, certificate, DKIM key (default ./.dev)
  --dkim-domain DOMAIN  sign mail from this author domain with the dev DKIM key (repeatable;
                        default example.com)
  --log-level LEVEL     relay log level (default warn; the console shows each captured message)
  -h, --help            show this help`;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      port: { type: 'string' },
      'capture-port': { type: 'string' },
      'ui-port': { type: 'string' },
      'http-port': { type: 'string' },
      dir: { type: 'string' },
      'log-level': { type: 'string' },
      'dkim-domain': { type: 'string', multiple: true },
    },
    HELP,
  );
  if (!args) return 0;
  const v = args.values;
  const fleet = await startDev({
    dir: v.dir ?? devDataDir(),
    smtpPort: intOption('port', v.port, 2525),
    capturePort: intOption('capture-port', v['capture-port'], 1025),
    captureHttpPort: intOption('ui-port', v['ui-port'], 8025),
    httpPort: intOption('http-port', v['http-port'], 8026),
    ...(v['dkim-domain'] ? { dkimDomains: v['dkim-domain'] } : {}),
    logger: createLogger(v['log-level'] ?? 'warn', 'relay'),
  });
  const port = fleet.relay.port('submission');
  console.log(`mailfleet dev is running.

  relay (submission):  127.0.0.1:${port}${fleet.tls ? ' (STARTTLS offered)' : ''}
  dev credential:      user ${fleet.user}  password ${fleet.password}
  captured mail:       http://127.0.0.1:${fleet.capture.httpPort}/   (capture MX on 127.0.0.1:${fleet.capture.smtpPort})
  relay metrics:       http://127.0.0.1:${fleet.relay.http.port}/metrics
  delivery:            every domain's MX is the capture MX (dev DNS); mail leaves from 127.0.0.2
                       (mta1.dev.mailfleet.test), DKIM-signed for ${fleet.dkimDomains.join(', ')}

Try it:
  swaks --server 127.0.0.1:${port} --auth-user ${fleet.user} --auth-password ${fleet.password} --from you@example.com --to a@example.com
  mailfleet queue ls     (npm run mailfleet -- queue ls)

Ctrl-C stops.`);
  fleet.capture.on('message', (m: { seq: number; mailFrom: string; recipients: string[]; subject: string; clientAddress: string; helo: string; dkim: string }) => {
    console.log(`captured #${m.seq}: <${m.mailFrom}> -> ${m.recipients.map((r) => `<${r}>`).join(', ')}  "${m.subject}"  from ${m.clientAddress} (${m.helo}), ${m.dkim}`);
  });
  await untilSignal();
  await fleet.stop();
  return 0;
}
