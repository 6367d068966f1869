// A throw-away CA and certificates for TLS tests, made with openssl (EC keys: fast).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  key: string;
  cert: string;
}

export interface TestCa {
  ca: Pem;
  /** A certificate for `names`, signed by the CA. */
  issue(names: string[]): Pem;
  /** A self-signed certificate for `names` (what an MX with a bad certificate presents). */
  selfSigned(names: string[]): Pem;
}

function ssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'mailfleet-ca-'));
  const p = (f: string) => join(dir, f);
  ssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p('ca.key')]);
  ssl(['req', '-x509', '-new', '-key', p('ca.key'), '-subj', '/CN=mailfleet test CA', '-days', '2', '-out', p('ca.crt'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  let n = 0;
  const leaf = (names: string[], signed: boolean): Pem => {
    const id = `leaf${n++}`;
    ssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', p(`${id}.key`)]);
    const san = `subjectAltName=${names.map((x) => `DNS:${x}`).join(',')}`;
    if (signed) {
      ssl(['req', '-new', '-key', p(`${id}.key`), '-subj', `/CN=${names[0]}`, '-out', p(`${id}.csr`)]);
      writeFileSync(p(`${id}.ext`), `${san}\nextendedKeyUsage=serverAuth\n`);
      ssl(['x509', '-req', '-in', p(`${id}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p(`${id}.ext`), '-out', p(`${id}.crt`)]);
    } else {
      ssl(['req', '-x509', '-new', '-key', p(`${id}.key`), '-subj', `/CN=${names[0]}`, '-days', '2', '-addext', san, '-out', p(`${id}.crt`)]);
    }
    return { key: readFileSync(p(`${id}.key`), 'utf8'), cert: readFileSync(p(`${id}.crt`), 'utf8') };
  };
  return {
    ca: { key: readFileSync(p('ca.key'), 'utf8'), cert: readFileSync(p('ca.crt'), 'utf8') },
    issue: (names) => leaf(names, true),
    selfSigned: (names) => leaf(names, false),
  };
}
