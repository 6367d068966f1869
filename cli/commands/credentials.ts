import { addCredential, removeCredential, listCredentials } from '../../relay/intake/credentials.ts';
import { parseCommand, UsageError } from '../args.ts';
import { MESSAGE_CLASSES_TEXT, isMessageClass } from '../../relay/message-class.ts';

const HELP = `Usage: mailfleet credentials <add USER|remove USER|ls> --file FILE [options]

Edits an SMTP AUTH credentials file (username:scrypt hash per line). A running relay
picks up the change by itself.

Options:
  -f, --file FILE        the credentials file (created when missing)
  --password-stdin       add: read the password from standard input (default: generate one and print it)
  --class CLASS          add: the user's default message class: otp, transactional or bulk
                         (an X-Mailfleet-Class header still overrides it per message)
  -h, --help             show this help`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(argv, { file: { type: 'string', short: 'f' }, 'password-stdin': { type: 'boolean' }, class: { type: 'string' } }, HELP, true);
  if (!args) return 0;
  const [sub, user] = args.positionals;
  const file = args.values.file;
  if (!file) throw new UsageError(`--file is required\n\n${HELP}`);
  switch (sub) {
    case 'add': {
      if (!user) throw new UsageError('"add" needs a USER');
      const cls = args.values.class;
      if (cls !== undefined && !isMessageClass(cls)) throw new UsageError(`--class: expected ${MESSAGE_CLASSES_TEXT}, got "${cls}"`);
      const generated = !args.values['password-stdin'];
      const password = generated ? (await import('node:crypto')).randomBytes(18).toString('base64url') : await readStdin();
      try {
        const what = await addCredential(file, user, password, cls);
        console.log(generated ? `${what} ${user}; password: ${password}` : `${what} ${user}`);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      return 0;
    }
    case 'remove':
      if (!user) throw new UsageError('"remove" needs a USER');
      if (!(await removeCredential(file, user))) {
        console.error(`mailfleet credentials: no user "${user}" in ${file}`);
        return 1;
      }
      console.log(`removed ${user}`);
      return 0;
    case 'ls':
      for (const u of await listCredentials(file)) console.log(u);
      return 0;
    default:
      throw new UsageError(`expected add, remove or ls\n\n${HELP}`);
  }
}
