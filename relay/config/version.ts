// The version of a relay config is the hash of the file's bytes: the operator computes it from
// what it rendered and the relay reports the one it runs (/v1/stats configVersion, the
// mailfleet_relay_config_info metric), so both sides name a version the same way with no
// counter to keep in step.
import { createHash } from 'node:crypto';

export function configVersion(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
