import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import { openPostgresStore, type PostgresAuditStore } from '../../src/collector/store/postgres.js';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, memoryLogger, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { sleep } from '../harness/wait.js';
import { tlsRequest } from '../helpers/tls-requests.js';

/**
 * The collector's probes and metrics: /healthz says the process serves,
 * /readyz says the store answers now (a real Postgres cut off mid-run by
 * closing the TCP path to it), /metrics counts what was stored and refused,
 * and under mTLS the probes need no client certificate while /metrics does.
 */

const HMAC_KEY = Buffer.alloc(32, 9);
/** past the 1 s for which a readiness answer is reused */
const READY_CACHE_WAIT = 1_100;

async function text(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type'] ?? '') };
}

/** The value of one series in Prometheus text, or undefined. */
function series(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('collector probes and metrics (SQLite)', () => {
  let c: TestCollector;
  let b: BatchBuilder;
  beforeAll(async () => {
    b = new BatchBuilder({ stream: 'pod-h', hmacKey: HMAC_KEY });
    c = await startTestCollector({ streams: [{ match: 'pod-h', vkey: b.vkey }], hmac_keys: [{ id: 'k1', key: HMAC_KEY }] });
  });
  afterAll(async () => c.close());

  it('is live and ready while its store answers', async () => {
    expect((await getJson(c.url, '/healthz', null)).status).toBe(200);
    const ready = await getJson(c.url, '/readyz', null);
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('counts stored batches and records, duplicates and refusals by code', async () => {
    const batch = b.next(7);
    expect((await postJson(c.url, batch)).status).toBe(200);
    expect((await postJson(c.url, batch)).body.duplicate).toBe(true);
    const refused = await getJson(c.url, '/v1/streams', null);
    expect(refused.status).toBe(401);
    const code = refused.body.error.code as string;
    const m = await text(`${c.url}/metrics`);
    expect(m.status).toBe(200);
    expect(m.type).toContain('text/plain');
    expect(series(m.body, 'sealtrail_collector_batches_stored_total')).toBe(1);
    expect(series(m.body, 'sealtrail_collector_records_stored_total')).toBe(7);
    expect(series(m.body, 'sealtrail_collector_batches_duplicate_total')).toBe(1);
    expect(series(m.body, 'sealtrail_collector_store_ready')).toBe(1);
    expect(m.body).toContain(`sealtrail_collector_errors_total{route="/v1/streams",code="${code}"} 1`);
    expect(m.body).toMatch(/sealtrail_collector_http_requests_total\{route="\/v1\/batches",method="POST",status="200"\} 2/);
    expect(m.body).toContain('sealtrail_process_cpu_seconds_total');
    // No stream id labels a series: a fleet has one stream per pod.
    expect(m.body).not.toContain('pod-h');
  });

  it('refuses other methods on the probes', async () => {
    const res = await request(`${c.url}/readyz`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    await res.body.text();
    expect(res.statusCode).toBe(404);
  });
});

/** A TCP path to the real Postgres that the test can cut, as a network partition would. */
async function cuttableProxy(): Promise<{ port: number; cut(): void; mend(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const up = net.connect(5432, '127.0.0.1');
        sockets.add(client).add(up);
        const end = () => (client.destroy(), up.destroy(), sockets.delete(client), sockets.delete(up));
        client.on('error', end).on('close', end);
        up.on('error', end).on('close', end);
        client.pipe(up).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const cut = () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
  return { port, cut, mend: listen, close: async () => cut() };
}

describe('collector readiness on Postgres', () => {
  let db: TestDatabase;
  let proxy: Awaited<ReturnType<typeof cuttableProxy>>;
  let store: PostgresAuditStore;
  let running: Awaited<ReturnType<typeof startCollector>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    (await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl })).close();
    proxy = await cuttableProxy();
    const viaProxy = new URL(db.appUrl);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    store = await openPostgresStore({ url: viaProxy.toString(), poolSize: 2, connectTimeoutMs: 1000 });
    const opts: CollectorOptions = {
      listen: { host: '127.0.0.1', port: 0 },
      max_body_bytes: 1 << 20,
      admin_tokens: [ADMIN_TOKEN],
      streams: [],
      trust_on_first_use: false,
      hmac_keys: [],
    };
    running = await startCollector(opts, store, memoryLogger().logger);
  });
  afterAll(async () => {
    await running?.close();
    await store?.close().catch(() => {});
    await proxy?.close();
    await db?.drop();
  });

  it('is unready while the database cannot be reached, live all along, and ready again once it can', async () => {
    expect((await getJson(running.url, '/readyz', null)).status).toBe(200);
    proxy.cut();
    await sleep(READY_CACHE_WAIT);
    const down = await getJson(running.url, '/readyz', null);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe('store_unavailable');
    expect(down.body.error.message).toMatch(/^not ready: /);
    // Anyone may ask the probe: it names no URL, host, role or driver error.
    expect(down.body.error.message).not.toMatch(/postgres|127\.0\.0\.1|sealtrail_app|ECONN/);
    expect((await getJson(running.url, '/healthz', null)).status).toBe(200);
    expect(series((await text(`${running.url}/metrics`)).body, 'sealtrail_collector_store_ready')).toBe(0);
    await proxy.mend();
    await sleep(READY_CACHE_WAIT);
    expect((await getJson(running.url, '/readyz', null)).status).toBe(200);
  });
});

describe('collector probes under mTLS', () => {
  let dir: string;
  let pki: TestPki;
  let c: TestCollector;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-health-tls-'));
    pki = makeTestPki(dir);
    c = await startTestCollector({ tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert } });
  });
  afterAll(async () => {
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /healthz and /readyz without a client certificate, as the kubelet asks', async () => {
    expect((await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert })).status).toBe(200);
    const ready = await tlsRequest(`${c.url}/readyz`, { ca: pki.ca.cert });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
  });

  it('refuses /metrics and the API without one, and serves /metrics with one', async () => {
    for (const path of ['/metrics', '/v1/streams', '/readyz/x']) {
      const res = await tlsRequest(`${c.url}${path}`, { ca: pki.ca.cert });
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.body).error.code).toBe('client_certificate_refused');
    }
    const expired = await tlsRequest(`${c.url}/metrics`, { ca: pki.ca.cert, cert: pki.expired.cert, key: pki.expired.key });
    expect(expired.status).toBe(403);
    const ok = await tlsRequest(`${c.url}/metrics`, { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('sealtrail_collector_store_ready 1');
  });
});
