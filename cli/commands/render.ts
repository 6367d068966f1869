import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { parseCommand, UsageError } from '../args.ts';
import { renderPreview, PreviewError, type PreviewInput } from '../../operator/render/preview.ts';
import { DEFAULT_RELAY_IMAGE } from '../../operator/render/pool.ts';

const HELP = `Usage: mailfleet render -f FILE [-f FILE…] [-o yaml|json] [options]

Prints every object the operator would apply for the SendingPools and MailDomains in the files,
with no cluster: the same render the operator runs, including each relay's config (its warm-up
plan and state). Review a change in a pull request with it, as with \`helm template\`.

Options:
  -f, --filename FILE   a YAML or JSON file (several documents and List kinds allowed); repeatable
  -o, --output FORMAT   yaml (default) or json (a v1 List)
  -n, --namespace NS    namespace for objects that name none (default: default)
  --keys-dir DIR        DKIM private keys as DIR/<secret-name>.pem (<maildomain>-dkim-<selector>);
                        without one, a Secret shows a placeholder (the operator generates keys)
  --relay-image IMAGE   relay image for SendingPools without spec.image
                        (default: $RELAY_IMAGE, else ${DEFAULT_RELAY_IMAGE})
  -h, --help            show this help

Exit code 2 and the file, object and field at fault when an object is invalid.`;

function readInputs(file: string): PreviewInput[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`-f ${file}: cannot read the file: ${(err as Error).message}`);
  }
  const out: PreviewInput[] = [];
  parseAllDocuments(text).forEach((doc, i) => {
    const source = `${file} (document ${i + 1})`;
    if (doc.errors.length > 0) throw new PreviewError([`${source}: YAML syntax: ${doc.errors[0]!.message.split('\n')[0]}`]);
    const obj = doc.toJS() as { kind?: string; items?: unknown[] } | null;
    if (obj && typeof obj === 'object' && typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
      obj.items.forEach((item, j) => out.push({ source: `${source} items[${j}]`, object: item }));
    } else {
      out.push({ source, object: obj });
    }
  });
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      filename: { type: 'string', short: 'f', multiple: true },
      output: { type: 'string', short: 'o' },
      namespace: { type: 'string', short: 'n' },
      'keys-dir': { type: 'string' },
      'relay-image': { type: 'string' },
    },
    HELP,
  );
  if (!args) return 0;
  const v = args.values;
  const files = v.filename ?? [];
  if (files.length === 0) throw new UsageError(`-f FILE is required\n\n${HELP}`);
  const output = v.output ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError(`-o: expected yaml or json, got "${output}"`);
  const keysDir = v['keys-dir'];
  if (keysDir !== undefined && !existsSync(keysDir)) throw new UsageError(`--keys-dir ${keysDir}: no such directory`);
  const relayImage = v['relay-image'] || process.env.RELAY_IMAGE || undefined;
  try {
    const { objects, notes } = renderPreview(files.flatMap(readInputs), {
      ...(v.namespace ? { namespace: v.namespace } : {}),
      ...(relayImage ? { defaultImage: relayImage } : {}),
      ...(keysDir !== undefined
        ? {
            dkimKey: (name: string) => {
              const f = join(keysDir, `${name}.pem`);
              return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
            },
          }
        : {}),
    });
    for (const n of notes) console.error(`mailfleet render: note: ${n}`);
    if (output === 'json') console.log(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2));
    else process.stdout.write(objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return 0;
  } catch (err) {
    if (!(err instanceof PreviewError)) throw err;
    console.error(`mailfleet render: invalid input\n${err.problems.map((p) => `  - ${p}`).join('\n')}`);
    return 2;
  }
}
