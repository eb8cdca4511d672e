/**
 * Process and HTTP plumbing for bench/soak.ts and the e2e helpers in
 * test/helpers/: a collector and a sidecar as separate `sealtrail`
 * processes sharing one config file in a temp dir. It lives in test/harness/
 * (compiled with the benchmarks) so that test helpers never import bench/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { sleep, waitFor } from './wait.js';

export { sleep, waitFor };

/**
 * The compiled CLI: two levels up when this runs from dist/test/harness/
 * (a benchmark), under dist/ when it runs from source (vitest).
 */
export function cliPath(): string {
  for (const rel of ['../../src/cli/main.js', '../../dist/src/cli/main.js']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('dist/src/cli/main.js not found: run `npm run build` first');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface Child {
  child: ChildProcess;
  /** the last 64 KiB of stderr */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, [cliPath(), ...args], {
    env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 128 * 1024) err = err.slice(-64 * 1024);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, stderr: () => err.slice(-64 * 1024), exited };
}

export async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout: out, stderr: err };
}

export async function stopChild(c: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
  return c.exited;
}

export async function getJson(url: string, token?: string): Promise<{ status: number; body: any }> {
  const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, body };
}

/** A collector and a sidecar sharing one config file, with their keys, in a temp dir. */
export interface Deployment {
  dir: string;
  traces: string;
  config: string;
  keys: string;
  token: string;
  collectorUrl: string;
  telemetryUrl: string;
  collectorDb: string;
  bufferDb: string;
}

export type SoakDeployment = Deployment;

export interface DeploymentOptions {
  /** temp dir prefix; default 'sealtrail-soak-' */
  prefix?: string;
  /** the sidecar's stream name and its key files' name; default 'soak' */
  name?: string;
  /** the collector's read-audit stream; default COLLECTOR_STREAM */
  collectorStream?: string;
  token?: string;
  sealInterval?: string;
  maxRecords?: number;
  /** rule files for sidecar.redaction.rules (a function gets the deployment dir); default: an email rule */
  rules?: readonly string[] | ((dir: string) => readonly string[]);
  /** seal.heartbeat_interval; default '0' (off) so record counts are exact */
  heartbeat?: string;
  /** more sidecar sources, each a YAML flow mapping, e.g. `{ id: sock, type: socket, path: /x.sock }` (a function gets the dir) */
  extraSources?: readonly string[] | ((dir: string) => readonly string[]);
  /** buffer limits (YAML values) */
  buffer?: { max_bytes?: string; max_records?: number };
}

/**
 * Keys and a config file for a collector and a sidecar following
 * `traces/*.jsonl` (and rotated `*.jsonl.*`); test/helpers/deployment.ts
 * builds the e2e deployments on this too.
 */
export async function makeDeployment(opts: DeploymentOptions = {}): Promise<Deployment> {
  const name = opts.name ?? 'soak';
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'sealtrail-soak-'));
  const keys = join(dir, 'keys');
  const traces = join(dir, 'traces');
  mkdirSync(traces, { recursive: true });
  createSigningKeyFiles(join(keys, `${name}.skey`), join(keys, `${name}.vkey`), name);
  createHmacKeyFile(join(keys, 'hmac.key'));
  // the collector's own key: it records every read in its own signed stream (docs/read-audit.md);
  // its .vkey in the keys dir lets `verify --keys` check that stream too
  createSigningKeyFiles(join(keys, 'collector.skey'), join(keys, 'collector.vkey'), 'collector');
  const [cport, tport] = [await freePort(), await freePort()];
  const token = opts.token ?? 'soak-admin-token-0123456789abcdef';
  let files: readonly string[];
  if (opts.rules === undefined) {
    const emailRule = join(dir, 'rules.yaml');
    writeFileSync(emailRule, `rules:\n  - id: email\n    pattern: '(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}'\n`);
    files = [emailRule];
  } else {
    files = typeof opts.rules === 'function' ? opts.rules(dir) : opts.rules;
  }
  const rules = files.map((r) => JSON.stringify(r)).join(', ');
  const extra = typeof opts.extraSources === 'function' ? opts.extraSources(dir) : (opts.extraSources ?? []);
  const extraYaml = extra.map((s) => `\n    - ${s}`).join('');
  const limits = opts.buffer
    ? [
        opts.buffer.max_bytes !== undefined ? `max_bytes: ${opts.buffer.max_bytes}` : '',
        opts.buffer.max_records !== undefined ? `max_records: ${opts.buffer.max_records}` : '',
      ].filter(Boolean)
    : [];
  const bufferYaml = opts.buffer ? `\n  buffer: { ${limits.join(', ')} }` : '';
  const config = join(dir, 'sealtrail.yaml');
  const collectorDb = join(dir, 'collector', 'audit.db');
  writeFileSync(
    config,
    `collector:
  listen: 127.0.0.1:${cport}
  store: { type: sqlite, path: ${collectorDb} }
  auth: { admin_tokens: ["${token}"] }
  streams: [{ match: "*", vkey_file: ${join(keys, `${name}.vkey`)} }]
  hmac_keys: [{ id: k1, file: ${join(keys, 'hmac.key')} }]
  keys: { signing_key_file: ${join(keys, 'collector.skey')}, hmac_key_file: ${join(keys, 'hmac.key')}, hmac_key_id: k1 }
  read_audit: { stream: ${opts.collectorStream ?? COLLECTOR_STREAM} }
sidecar:
  stream: { name: ${name} }
  data_dir: ${join(dir, 'sidecar')}
  sources:
    - id: traces
      type: file
      include: ["${join(traces, '*.jsonl')}", "${join(traces, '*.jsonl.*')}"]${extraYaml}
  redaction: { rules: [${rules}] }
  keys: { signing_key_file: ${join(keys, `${name}.skey`)}, hmac_key_file: ${join(keys, 'hmac.key')} }
  seal: { max_records: ${opts.maxRecords ?? 1000}, max_interval: ${opts.sealInterval ?? '200ms'}, heartbeat_interval: ${opts.heartbeat ?? '0'} }${bufferYaml}
  ship: { url: "http://127.0.0.1:${cport}", backoff_initial: 50ms, backoff_max: 1s }
  telemetry: { listen: 127.0.0.1:${tport} }
`,
  );
  return {
    dir,
    traces,
    config,
    keys,
    token,
    collectorUrl: `http://127.0.0.1:${cport}`,
    telemetryUrl: `http://127.0.0.1:${tport}`,
    collectorDb,
    bufferDb: join(dir, 'sidecar', 'buffer.db'),
  };
}

export async function makeSoakDeployment(opts: { sealInterval?: string; maxRecords?: number } = {}): Promise<SoakDeployment> {
  return makeDeployment({ sealInterval: opts.sealInterval ?? '100ms', maxRecords: opts.maxRecords ?? 500 });
}

export async function startCollector(d: SoakDeployment): Promise<Child> {
  const c = spawnCli(['collector', '--config', d.config]);
  await waitFor('collector /healthz', async () => {
    if (c.child.exitCode !== null) throw new Error(`collector exited: ${c.stderr()}`);
    return (await getJson(`${d.collectorUrl}/healthz`)).status === 200;
  }, 30_000);
  return c;
}

export function startSidecar(d: SoakDeployment): Child {
  return spawnCli(['sidecar', '--config', d.config]);
}

/** The collector's read-audit stream: its records are reads, not written lines. */
export const COLLECTOR_STREAM = 'collector-soak';

/** Records of the sidecar streams (the collector's own stream left out). */
export async function treeSize(d: SoakDeployment): Promise<number> {
  const { status, body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
  if (status !== 200) throw new Error(`GET /v1/streams: ${status}`);
  return (body.streams as Array<{ stream: string; tree_size: number }>)
    .filter((s) => s.stream !== COLLECTOR_STREAM)
    .reduce((n, s) => n + s.tree_size, 0);
}

/** Calls `each` for every record item of every sidecar stream, paging GET /v1/audit with its cursor. */
export async function forEachItem(d: SoakDeployment, each: (item: any) => void): Promise<void> {
  let cursor: string | null = null;
  do {
    const q: string = `${d.collectorUrl}/v1/audit?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await getJson(q, d.token);
    if (status !== 200) throw new Error(`GET /v1/audit: ${status} ${JSON.stringify(body).slice(0, 300)}`);
    for (const it of body.items as Array<{ stream: string }>) if (it.stream !== COLLECTOR_STREAM) each(it);
    cursor = body.next_cursor as string | null;
  } while (cursor);
}
