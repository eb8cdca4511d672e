import http from 'node:http';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { sleep } from '../harness/wait.js';
import { type Deployment } from './deployment.js';
import { freePort } from './procs.js';

/**
 * Helpers for collector-fault tests: a programmable HTTP stand-in placed
 * between a real sidecar process and a real collector process, metric
 * scraping, buffer inspection and line bookkeeping by unique id.
 */

export { sleep };

/** What the fault proxy does with one POST /v1/batches. */
export type FaultMode =
  | { kind: 'proxy'; delayMs?: number }
  /** forwards (so the collector stores the batch), then sends the status and headers and trickles spaces forever: the ack never completes */
  | { kind: 'trickle'; intervalMs: number }
  | { kind: 'answer'; status: number; body?: string | ((batch: ParsedBatch) => string); headers?: Record<string, string> };

export interface ParsedBatch {
  stream: string;
  batch: number;
  first_seq: number;
  last_seq: number;
}

export interface ProxiedRequest {
  at: number;
  batch: number;
  /** the status this proxy answered */
  status: number;
  /** 'proxy' when the real collector's answer was relayed whole */
  by: 'proxy' | 'fault' | 'trickle';
}

/**
 * Listens on `port` (where the sidecar ships) and either forwards to the real
 * collector at `target` or answers what the current mode says. Every answered
 * request is recorded.
 */
export class FaultProxy {
  mode: FaultMode = { kind: 'proxy' };
  readonly requests: ProxiedRequest[] = [];
  private server: http.Server | undefined;

  constructor(readonly port: number, readonly target: string) {}

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.handle(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(599);
          res.end(String((err as Error).message));
        });
      });
    });
    // keep-alive sockets of the sidecar must not keep close() waiting
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  /** Batch numbers of the requests answered while in a fault mode. */
  faulted(): number[] {
    return this.requests.filter((r) => r.by === 'fault').map((r) => r.batch);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    let parsed: ParsedBatch = { stream: '', batch: -1, first_seq: -1, last_seq: -1 };
    try {
      parsed = JSON.parse(body.toString('utf8')) as ParsedBatch;
    } catch {
      // forwarded as is
    }
    const mode = this.mode;
    if (mode.kind === 'answer') {
      const text = typeof mode.body === 'function' ? mode.body(parsed) : (mode.body ?? '');
      this.requests.push({ at: Date.now(), batch: parsed.batch, status: mode.status, by: 'fault' });
      res.writeHead(mode.status, { 'content-type': 'application/json', ...(mode.headers ?? {}) });
      res.end(text);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'authorization']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const up = await request(`${this.target}${req.url ?? '/'}`, { method: (req.method ?? 'POST') as 'POST', headers, body });
    const answer = await up.body.text();
    if (mode.kind === 'trickle') {
      this.requests.push({ at: Date.now(), batch: parsed.batch, status: up.statusCode, by: 'trickle' });
      res.writeHead(up.statusCode, { 'content-type': 'application/json' });
      res.write(' ');
      const timer = setInterval(() => res.write(' '), mode.intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (mode.delayMs) await sleep(mode.delayMs);
    this.requests.push({ at: Date.now(), batch: parsed.batch, status: up.statusCode, by: 'proxy' });
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
    res.end(answer);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/**
 * Moves the real collector of `d` to a fresh port, so a FaultProxy can listen
 * where the sidecar ships (d.collectorUrl). Returns a deployment view whose
 * collectorUrl is the real collector (for queries and verify) and the port
 * the proxy must take.
 */
export async function interpose(d: Deployment): Promise<{ real: Deployment; shipPort: number }> {
  const shipPort = Number(new URL(d.collectorUrl).port);
  const realPort = await freePort();
  const text = readFileSync(d.config, 'utf8');
  const listen = `listen: 127.0.0.1:${shipPort}\n  store:`;
  if (!text.includes(listen)) throw new Error('unexpected deployment config layout');
  writeFileSync(d.config, text.replace(listen, `listen: 127.0.0.1:${realPort}\n  store:`));
  return { real: { ...d, collectorUrl: `http://127.0.0.1:${realPort}` }, shipPort };
}

/** One sample of a Prometheus text exposition (`labels` as written, e.g. `reason="network"`); 0 when absent. */
export async function metric(telemetryUrl: string, name: string, labels = ''): Promise<number> {
  const res = await request(`${telemetryUrl}/metrics`);
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
  const want = labels ? `${name}{${labels}}` : name;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === want) return Number(line.slice(sp + 1));
  }
  return 0;
}

/** Seqs of the records held in a sidecar buffer, read through a read-only connection. */
export function bufferSeqs(bufferDb: string): number[] {
  const db = new Database(bufferDb, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT seq FROM records ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);
  } finally {
    db.close();
  }
}

/** Peak resident set size (VmHWM) of a live process in MiB. */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Appends lines with the unique ids from..from+n-1 (`details.line`) to `file`. */
export function appendLines(file: string, from: number, n: number): void {
  let chunk = '';
  for (let k = from; k < from + n; k++) {
    chunk += `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: `u${k % 7}`, type: 'agent' }, tool: { name: 'lookup' }, details: { line: k } })}\n`;
  }
  appendFileSync(file, chunk);
}

export interface Delivery {
  /** ids in 0..total-1 that the collector does not hold */
  missing: number[];
  /** ids held more than once */
  duplicated: number[];
  /** ids in seq order */
  idsBySeq: number[];
  /** seqs in order (should be 0..n-1) */
  seqs: number[];
}

/** Checks collector items (from queryAll) against the ids 0..total-1 written with appendLines. */
export function delivery(items: any[], total: number): Delivery {
  const sorted = [...items].sort((a, b) => a.seq - b.seq);
  const counts = new Map<number, number>();
  const idsBySeq: number[] = [];
  for (const it of sorted) {
    const id = it.record?.details?.line;
    if (typeof id !== 'number') continue; // not one of ours (e.g. a heartbeat)
    counts.set(id, (counts.get(id) ?? 0) + 1);
    idsBySeq.push(id);
  }
  const missing: number[] = [];
  for (let k = 0; k < total; k++) if (!counts.has(k)) missing.push(k);
  const duplicated = [...counts].filter(([, c]) => c > 1).map(([k]) => k);
  return { missing, duplicated, idsBySeq, seqs: sorted.map((it) => it.seq as number) };
}

/** Parsed JSON log lines of a process's stderr. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial line
    }
  }
  return out;
}

/** 0..n-1 */
export function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}
