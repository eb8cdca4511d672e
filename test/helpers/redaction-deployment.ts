/**
 * A collector and a sidecar as separate processes, like deployment.ts, but
 * with the redaction rule files chosen by the test (the shipped packs, or a
 * rules file the test rewrites and reloads with SIGHUP), a log level, and
 * helpers to read metrics and every byte the deployment left on disk.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { getJson, makeDeployment, sidecarItems, startCollectorProc, startSidecarProc, type Deployment } from './deployment.js';
import { freePort, ROOT, runCli, spawnCli, waitFor, type Proc } from './procs.js';

export const PACKS_DIR = join(ROOT, 'config', 'redaction');

export function packPath(name: string): string {
  return join(PACKS_DIR, `${name}.yaml`);
}

export interface RedactionDeploymentOptions {
  /** rule files for sidecar.redaction.rules, in order (a function gets the deployment dir) */
  rules: readonly string[] | ((dir: string) => readonly string[]);
  sealInterval?: string;
  maxRecords?: number;
}

export async function makeRedactionDeployment(opts: RedactionDeploymentOptions): Promise<Deployment> {
  return makeDeployment({ ...opts, prefix: 'sealtrail-redact-e2e-' });
}

export function startCollector(d: Deployment, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  return startCollectorProc(d, env);
}

export function startSidecar(d: Deployment, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  return startSidecarProc(d, true, env);
}

/** Prometheus text from the sidecar's /metrics, summed per metric name over all label sets. */
/**
 * Each metric summed over its labels, leaving out the sidecar's own records
 * (source "sealtrail": heartbeats, ingest_rejected reports), which no input
 * line became.
 */
export async function sidecarMetrics(d: Deployment): Promise<Map<string, number>> {
  const { status, body } = await getJson(`${d.telemetryUrl}/metrics`);
  if (status !== 200) throw new Error(`/metrics: ${status}`);
  const sums = new Map<string, number>();
  for (const line of String(body).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[2]?.includes('source="sealtrail"')) continue;
    sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + Number(m[3]));
  }
  return sums;
}

/**
 * Waits until the sidecar has turned `lines` non-blank input lines into
 * records or quarantine rows and the collector acknowledged every record.
 * Returns the record and quarantine counts.
 */
export async function waitDelivered(
  d: Deployment,
  lines: number,
  timeoutMs = 90_000,
): Promise<{ records: number; quarantined: number }> {
  return waitFor(
    `${lines} lines ingested and acknowledged`,
    async () => {
      const m = await sidecarMetrics(d);
      const records = m.get('sealtrail_records_ingested_total') ?? 0;
      const quarantined = m.get('sealtrail_records_quarantined_total') ?? 0;
      if (records + quarantined < lines) return false;
      if ((m.get('sealtrail_unanchored_records') ?? 1) !== 0) return false;
      const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
      // Sidecar records only (the collector's read-audit stream grows with every read).
      const stored = sidecarItems(body.streams as Array<{ stream: string; tree_size: number }>).reduce((n, s) => n + s.tree_size, 0);
      return stored >= records ? { records, quarantined } : false;
    },
    timeoutMs,
    200,
  );
}

export interface FileBytes {
  /** path relative to the deployment dir */
  name: string;
  bytes: Buffer;
}

/** Every regular file under `dir`, recursively, except those under the `exclude` dirs. */
export function readAllFiles(dir: string, exclude: readonly string[] = []): FileBytes[] {
  const out: FileBytes[] = [];
  const visit = (p: string): void => {
    if (exclude.some((e) => p === e || p.startsWith(`${e}/`))) return;
    let st;
    try {
      st = statSync(p);
    } catch {
      return; // removed meanwhile (a -wal or -shm at checkpoint)
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) visit(join(p, e));
    } else if (st.isFile()) {
      try {
        out.push({ name: relative(dir, p), bytes: readFileSync(p) });
      } catch {
        // removed between stat and read
      }
    }
  };
  if (existsSync(dir)) visit(dir);
  return out;
}

/**
 * The byte strings under which a secret could show up: itself (and in upper
 * and lower case), JSON \u escapes, UTF-16LE, hex, percent-encoding, and
 * base64 / base64url at each of the three byte alignments (only the part
 * that does not depend on the neighbouring bytes).
 */
export function encodingsOf(needle: string): Map<string, Buffer> {
  const forms = new Map<string, Buffer>();
  const add = (name: string, s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    if (b.length > 0) forms.set(name, b);
  };
  add('plain', needle);
  add('upper', needle.toUpperCase());
  add('lower', needle.toLowerCase());
  const utf8 = Buffer.from(needle, 'utf8');
  add('json-escaped', [...needle].map((c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`).join(''));
  add('json-escaped-upper', [...needle].map((c) => `\\u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`).join(''));
  add('utf16le', Buffer.from(needle, 'utf16le'));
  add('hex', utf8.toString('hex'));
  add('HEX', utf8.toString('hex').toUpperCase());
  add('percent-uri', encodeURIComponent(needle));
  add('percent-all', [...utf8].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
  add('percent-all-lower', [...utf8].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k, 0x20), utf8]).toString('base64');
    const from = 4 * Math.ceil(k / 3);
    const to = 4 * Math.floor((k + utf8.length) / 3);
    const stable = b64.slice(from, to);
    if (stable.length >= 8) {
      add(`base64@${k}`, stable);
      add(`base64url@${k}`, stable.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return forms;
}

/** Where any encoding of any needle occurs in the given byte sources: "source: needle as form" lines. */
export function findLeaks(sources: ReadonlyArray<FileBytes>, needles: readonly string[]): string[] {
  const leaks: string[] = [];
  for (const needle of needles) {
    for (const [form, bytes] of encodingsOf(needle)) {
      for (const src of sources) {
        if (src.bytes.indexOf(bytes) !== -1) leaks.push(`${src.name}: ${JSON.stringify(needle)} as ${form}`);
      }
    }
  }
  return [...new Set(leaks)];
}
