import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { request } from 'undici';
import { startCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

/**
 * Options of a collector that audits its reads: the admin token, one reader
 * token for tenant acme (id acme-reader), sidecar batches verified with
 * `sidecar`'s keys under "*", and `readAudit` as its own stream.
 */
export function auditedCollectorOptions(
  sidecar: { vkey: string; hmacKey: Buffer },
  readerToken: string,
  readAudit: NonNullable<CollectorOptions['read_audit']>,
): CollectorOptions {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    max_body_bytes: 8 * 1024 * 1024,
    admin_tokens: [ADMIN_TOKEN],
    tokens: [{ id: 'acme-reader', sha256: createHash('sha256').update(readerToken).digest('hex'), role: 'reader', tenant: 'acme' }],
    // A catch-all pattern must not take over the collector's own stream.
    streams: [{ match: '*', vkey: sidecar.vkey }],
    trust_on_first_use: false,
    hmac_keys: [{ id: 'k1', key: sidecar.hmacKey }],
    read_audit: readAudit,
  };
}

export interface TestCollector {
  url: string;
  store: SqliteAuditStore;
  dbPath: string;
  dir: string;
  /** every log line written so far, parsed */
  logs: Record<string, unknown>[];
  /** raw log text, for "never contains" checks */
  logText(): string;
  close(): Promise<void>;
}

export function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

/** `shareDbPath` opens another store on an existing file: a second replica. */
export async function startTestCollector(
  over: Partial<CollectorOptions> = {},
  shareDbPath?: string,
): Promise<TestCollector> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-collector-'));
  const dbPath = shareDbPath ?? join(dir, 'audit.db');
  const store = new SqliteAuditStore(dbPath);
  const { logger, lines } = memoryLogger();
  const opts: CollectorOptions = {
    listen: { host: '127.0.0.1', port: 0 },
    max_body_bytes: 8 * 1024 * 1024,
    admin_tokens: [ADMIN_TOKEN],
    streams: [],
    trust_on_first_use: false,
    hmac_keys: [],
    ...over,
  };
  const running = await startCollector(opts, store, logger);
  return {
    url: running.url,
    store,
    dbPath,
    dir,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join(''),
    async close() {
      await running.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

export async function postJson(url: string, body: unknown, raw?: string): Promise<JsonResponse> {
  const res = await request(`${url}/v1/batches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: parse(text), text };
}

export async function getJson(url: string, path: string, token: string | null = ADMIN_TOKEN): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await request(`${url}${path}`, { method: 'GET', headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: parse(text), text };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
