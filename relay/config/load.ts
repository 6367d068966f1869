import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { RelayConfigSchema, type RelayConfig } from './schema.ts';
import { configVersion } from './version.ts';

/** A configuration problem a user must fix; `issues` name the field at fault. */
export class ConfigError extends Error {
  readonly issues: string[];
  constructor(source: string, issues: string[]) {
    super(`${source}: invalid configuration\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const where = formatIssuePath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      return `${keys.map((k) => (where === '(root)' ? k : `${where}.${k}`)).join(', ')}: unknown field`;
    }
    return `${where}: ${issue.message}`;
  });
}

export function parseRelayConfig(value: unknown, source = 'config'): RelayConfig {
  const result = RelayConfigSchema.safeParse(value);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  return result.data;
}

export function parseRelayConfigYaml(text: string, source = 'config'): RelayConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  }
  return parseRelayConfig(doc.toJS(), source);
}

export async function loadRelayConfig(file: string): Promise<RelayConfig> {
  return (await loadRelayConfigFile(file)).config;
}

/** The config, the text it came from and its version (relay/config/version.ts). */
export async function loadRelayConfigFile(file: string): Promise<{ config: RelayConfig; text: string; version: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  return { config: parseRelayConfigYaml(text, file), text, version: configVersion(text) };
}
