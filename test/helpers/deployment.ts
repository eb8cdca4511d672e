import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, runCli, spawnCli, stop, waitFor, type Proc } from './procs.js';

/** A collector and a sidecar as separate processes, with keys and a config file in a temp dir. */
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

export interface DeploymentOptions {
  sealInterval?: string;
  maxRecords?: number;
  /** rule files for sidecar.redaction.rules (a function gets the deployment dir); default: an email rule */
  rules?: readonly string[] | ((dir: string) => readonly string[]);
  prefix?: string;
  /** seal.heartbeat_interval; default '0' (off) so record counts in tests are exact */
  heartbeat?: string;
  /** more sidecar sources, each a YAML flow mapping, e.g. `{ id: sock, type: socket, path: /x.sock }` (a function gets the dir) */
  extraSources?: readonly string[] | ((dir: string) => readonly string[]);
  /** buffer limits (YAML values) */
  buffer?: { max_bytes?: string; max_records?: number };
}

/** The collector's own read-audit stream in a deployment (docs/read-audit.md). */
export const COLLECTOR_STREAM = 'collector-e2e';

/** Items of /v1/audit that a sidecar wrote (not the collector's records of reads). */
export function sidecarItems<T extends { stream: string }>(items: T[]): T[] {
  return items.filter((i) => i.stream !== COLLECTOR_STREAM);
}

export async function makeDeployment(opts: DeploymentOptions = {}): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'sealtrail-e2e-'));
  const keys = join(dir, 'keys');
  const traces = join(dir, 'traces');
  mkdirSync(traces, { recursive: true });
  const gen = await runCli(['keygen', '--name', 'e2e', '--out', keys, '--hmac']);
  if (gen.code !== 0) throw new Error(`keygen failed: ${gen.stderr}`);
  // The collector's own key for its read-audit stream; its .vkey in the keys dir lets `verify --keys` check that stream too.
  const own = await runCli(['keygen', '--name', 'collector', '--out', keys]);
  if (own.code !== 0) throw new Error(`keygen failed: ${own.stderr}`);
  const [cport, tport] = [await freePort(), await freePort()];
  const token = 'e2e-admin-token-0123456789abcdef';
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
  const bufferYaml = opts.buffer
    ? `\n  buffer: { ${[
        opts.buffer.max_bytes !== undefined ? `max_bytes: ${opts.buffer.max_bytes}` : '',
        opts.buffer.max_records !== undefined ? `max_records: ${opts.buffer.max_records}` : '',
      ].filter(Boolean).join(', ')} }`
    : '';
  const config = join(dir, 'sealtrail.yaml');
  writeFileSync(
    config,
    `
collector:
  listen: 127.0.0.1:${cport}
  store: { type: sqlite, path: ${join(dir, 'collector', 'audit.db')} }
  auth: { admin_tokens: ["${token}"] }
  streams: [{ match: "*", vkey_file: ${join(keys, 'e2e.vkey')} }]
  hmac_keys: [{ id: k1, file: ${join(keys, 'hmac.key')} }]
  keys: { signing_key_file: ${join(keys, 'collector.skey')}, hmac_key_file: ${join(keys, 'hmac.key')}, hmac_key_id: k1 }
  read_audit: { stream: ${COLLECTOR_STREAM} }
sidecar:
  stream: { name: e2e }
  data_dir: ${join(dir, 'sidecar')}
  sources:
    - id: traces
      type: file
      include: ["${join(traces, '*.jsonl')}", "${join(traces, '*.jsonl.*')}"]${extraYaml}
  redaction: { rules: [${rules}] }
  keys: { signing_key_file: ${join(keys, 'e2e.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
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
    collectorDb: join(dir, 'collector', 'audit.db'),
    bufferDb: join(dir, 'sidecar', 'buffer.db'),
  };
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

export async function startCollectorProc(d: Deployment, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = spawnCli(['collector', '--config', d.config], { env });
  await waitFor('collector /healthz', async () => {
    if (p.child.exitCode !== null) throw new Error(`collector exited: ${p.stderr()}`);
    return (await getJson(`${d.collectorUrl}/healthz`)).status === 200;
  }, 30_000);
  return p;
}

export async function startSidecarProc(d: Deployment, waitReady = true, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = spawnCli(['sidecar', '--config', d.config], { env });
  if (waitReady) {
    await waitFor('sidecar /readyz', async () => {
      if (p.child.exitCode !== null) throw new Error(`sidecar exited: ${p.stderr()}`);
      return (await getJson(`${d.telemetryUrl}/readyz`)).status === 200;
    }, 30_000);
  }
  return p;
}

/** Every record of every stream, paging /v1/audit with the cursor. */
export async function queryAll(d: Deployment, params = ''): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const q: string = `${d.collectorUrl}/v1/audit?limit=1000${params}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await getJson(q, d.token);
    if (status !== 200) throw new Error(`GET /v1/audit: ${status} ${JSON.stringify(body)}`);
    items.push(...sidecarItems(body.items as Array<{ stream: string }>));
    cursor = body.next_cursor;
  } while (cursor);
  return items;
}

export async function treeSize(d: Deployment): Promise<number> {
  const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
  // Sidecar records only: the collector's read-audit stream grows with every read, this one included.
  return sidecarItems(body.streams as Array<{ stream: string; tree_size: number }>).reduce((n, s) => n + s.tree_size, 0);
}

export { stop };
