/**
 * TLS on the sidecar's listeners, end to end in one process: a real sidecar
 * (startSidecar) with sidecar.telemetry.tls and an otlp source's tls, real
 * certificates made by openssl, real HTTPS clients. Records are checked in
 * the sidecar's own buffer, which answers come after.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSidecarConfig } from '../../src/config/load.js';
import type { ServerTlsConfig } from '../../src/config/types.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { issue, makeTestPki, type TestPki } from '../helpers/certs.js';
import { ackFor, FakeCollector } from '../helpers/sidecar-collector.js';
import { freePort, sleep, waitFor } from '../helpers/procs.js';
import { tlsRequest, type TlsClient } from '../helpers/tls-requests.js';

let dir: string;
let pki: TestPki;
let keys: { skey: string; hmac: string };
let collector: FakeCollector;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-sidecar-tls-'));
  pki = makeTestPki(dir);
  keys = { skey: join(dir, 'keys', 's.skey'), hmac: join(dir, 'keys', 'hmac.key') };
  createSigningKeyFiles(keys.skey, join(dir, 'keys', 's.vkey'), 'tls-test');
  createHmacKeyFile(keys.hmac);
  collector = await new FakeCollector().start();
});

afterAll(async () => {
  await collector?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  sidecar: SidecarHandle;
  telemetry: string;
  otlp: string;
  logs: Record<string, unknown>[];
  dataDir: string;
}

let runs = 0;

async function start(tls: { telemetry?: ServerTlsConfig; otlp?: ServerTlsConfig }): Promise<Running> {
  const dataDir = join(dir, `sidecar-${++runs}`);
  const otlpPort = await freePort();
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  const cfg = defaultSidecarConfig({
    stream: { id: `tls-test-${runs}` },
    data_dir: dataDir,
    sources: [
      { id: 'events', type: 'http' },
      { id: 'otel', type: 'otlp', listen: `127.0.0.1:${otlpPort}`, ...(tls.otlp ? { tls: tls.otlp } : {}) },
    ],
    keys: { signing_key_file: keys.skey, hmac_key_file: keys.hmac },
    ship: { url: collector.url },
    // Long enough that a kept-alive connection outlives a certificate rotation.
    telemetry: { listen: '127.0.0.1:0', http: { keep_alive_timeout: '60s' }, ...(tls.telemetry ? { tls: tls.telemetry } : {}) },
  });
  const sidecar = await startSidecar(cfg, { logger, tlsPollMs: 200 });
  return {
    sidecar,
    telemetry: sidecar.telemetryUrl,
    otlp: `https://127.0.0.1:${otlpPort}`,
    dataDir,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
}

function logged(r: Running, prefix: string): Record<string, unknown>[] {
  return r.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix));
}

/** The sources of the records the sidecar committed, in order. */
function committed(r: Running): string[] {
  const rows = r.sidecar.buffer.db.prepare('SELECT canonical FROM records ORDER BY seq').all() as { canonical: string }[];
  return rows.map((row) => (JSON.parse(row.canonical) as { source: string }).source);
}

const EVENT = JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'u1', type: 'user' }, tool: { name: 'search' } });
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const OTLP_TRACES = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [str('service.name', 'agent')] },
      scopeSpans: [
        {
          scope: { name: 'agent-sdk' },
          spans: [
            {
              traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
              spanId: '00f067aa0ba902b7',
              name: 'execute_tool lookup',
              kind: 1,
              startTimeUnixNano: '1760000000123456789',
              endTimeUnixNano: '1760000000623456789',
              attributes: [str('gen_ai.operation.name', 'execute_tool'), str('gen_ai.tool.name', 'lookup'), str('gen_ai.tool.call.id', 'call-1')],
            },
          ],
        },
      ],
    },
  ],
});

/** Plain HTTP to a port that speaks TLS only: the connection is dropped, nothing answered. */
function plainHttp(url: string): Promise<Error & { code?: string }> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    http.get(`http://127.0.0.1:${port}/healthz`, { agent: false }, () => resolve(new Error('answered'))).on('error', resolve);
  });
}

describe('sidecar listeners over HTTPS', () => {
  let r: Running;
  const certDir = (): string => join(dir, 'rotating');
  beforeAll(async () => {
    // Files rewritten in place later on (the rotation test).
    mkdirSync(certDir(), { recursive: true });
    copyFileSync(pki.server.cert, join(certDir(), 'tls.crt'));
    copyFileSync(pki.server.key, join(certDir(), 'tls.key'));
    const tls = { cert_file: join(certDir(), 'tls.crt'), key_file: join(certDir(), 'tls.key') };
    r = await start({ telemetry: tls, otlp: { cert_file: pki.server.cert, key_file: pki.server.key } });
  });
  afterAll(async () => r?.sidecar.shutdown(Date.now() + 2000));

  const client: TlsClient = { ca: '' };
  beforeAll(() => {
    client.ca = pki.ca.cert;
  });

  it('serves /healthz and /metrics over TLS 1.2+ with its certificate, on an https:// URL', async () => {
    expect(r.telemetry).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await tlsRequest(`${r.telemetry}/healthz`, client);
    expect(res.status).toBe(200);
    expect(res.body).toBe('ok\n');
    expect(res.serial).toBe(pki.server.serial);
    expect(res.socket.getProtocol()).toMatch(/^TLSv1\.[23]$/);
    expect((await tlsRequest(`${r.telemetry}/metrics`, client)).body).toContain('sealtrail_');
  });

  it('commits POST /v1/events and an OTLP/HTTP JSON export sent over TLS', async () => {
    const ev = await tlsRequest(`${r.telemetry}/v1/events`, client, { method: 'POST', body: EVENT });
    expect(ev.status).toBe(202);
    const otlp = await tlsRequest(`${r.otlp}/v1/traces`, client, { method: 'POST', body: OTLP_TRACES });
    expect(otlp.status).toBe(200);
    expect(otlp.serial).toBe(pki.server.serial);
    expect(JSON.parse(otlp.body)).toEqual({});
    expect(committed(r)).toEqual(expect.arrayContaining(['events', 'otel']));
  });

  it('refuses plain HTTP on both TLS ports and logs why', async () => {
    for (const url of [r.telemetry, r.otlp]) {
      const err = await plainHttp(url);
      expect(err.code).toMatch(/ECONNRESET|EPIPE|HPE_INVALID_CONSTANT/);
    }
    await waitFor('the log lines', () => {
      const fields = logged(r, 'sidecar.').filter((l) => String(l.msg).includes('TLS handshake refused: the client spoke plain HTTP')).map((l) => l.field);
      return fields.includes('sidecar.telemetry.tls') && fields.includes('sidecar.sources[1].tls');
    }, 10_000);
  });

  it('refuses TLS 1.1, and a client that does not trust its CA is told why', async () => {
    await expect(
      new Promise((resolve, reject) => {
        https.get(`${r.telemetry}/healthz`, { ca: pki.ca.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', agent: false }, resolve).on('error', reject);
      }),
    ).rejects.toThrow();
    await expect(tlsRequest(`${r.otlp}/v1/traces`, { ca: pki.otherCa.cert }, { method: 'POST', body: OTLP_TRACES })).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('a certificate rewritten on disk is used by new connections; an open kept-alive connection goes on', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await tlsRequest(`${r.telemetry}/healthz`, { ca: pki.ca.cert, agent });
      expect(first.serial).toBe(pki.server.serial);

      const next = issue(pki.ca, 'sidecar-2', { san: ['IP:127.0.0.1', 'DNS:localhost'], usage: ['serverAuth'] });
      copyFileSync(next.cert, join(certDir(), 'tls.crt'));
      copyFileSync(next.key, join(certDir(), 'tls.key'));
      await waitFor('the new certificate', async () => (await tlsRequest(`${r.telemetry}/healthz`, client)).serial === next.serial, 10_000);
      expect(logged(r, 'sidecar.telemetry.tls: certificate reloaded').at(-1)).toMatchObject({ serial: next.serial });

      const again = await tlsRequest(`${r.telemetry}/v1/events`, { ca: pki.ca.cert, agent }, { method: 'POST', body: EVENT });
      expect(again.status).toBe(202);
      expect(again.reused).toBe(true);
      expect(again.socket).toBe(first.socket);
      expect(again.serial).toBe(pki.server.serial);
    } finally {
      agent.destroy();
    }
  });
});

describe('sidecar listeners with client_ca_file (mTLS)', () => {
  let r: Running;
  beforeAll(async () => {
    const tls = { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert };
    r = await start({ telemetry: tls, otlp: tls });
  });
  afterAll(async () => r?.sidecar.shutdown(Date.now() + 2000));

  it('serves a client with a certificate of the CA, and commits what it sends', async () => {
    const valid: TlsClient = { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key };
    expect((await tlsRequest(`${r.telemetry}/metrics`, valid)).status).toBe(200);
    expect((await tlsRequest(`${r.telemetry}/v1/events`, valid, { method: 'POST', body: EVENT })).status).toBe(202);
    expect((await tlsRequest(`${r.otlp}/v1/traces`, valid, { method: 'POST', body: OTLP_TRACES })).status).toBe(200);
    expect(committed(r)).toEqual(expect.arrayContaining(['events', 'otel']));
  });

  it.each([
    ['no certificate', undefined, 'no client certificate presented'],
    ['an expired certificate', 'expired', 'it has expired; renew it (CERT_HAS_EXPIRED)'],
    ['a certificate of another CA', 'stranger', 'it is not issued by a CA of client_ca_file'],
  ] as const)('refuses a client with %s, saying why, in each port\'s own error shape', async (_what, which, why) => {
    const fromClients = (): number => committed(r).filter((s) => s === 'events' || s === 'otel').length;
    const before = fromClients();
    const client: TlsClient = { ca: pki.ca.cert, ...(which === undefined ? {} : { cert: pki[which].cert, key: pki[which].key }) };

    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ev = await tlsRequest(`${r.telemetry}/v1/events`, { ...client, agent }, { method: 'POST', body: EVENT });
      expect(ev.status).toBe(403);
      const err = (JSON.parse(ev.body) as { error: { code: string; message: string } }).error;
      expect(err.code).toBe('client_certificate_refused');
      expect(err.message).toContain(why);
      // The refusal closed the connection: the next request needs a new one, and is refused too,
      // although that one resumes the TLS session (which OpenSSL marks authorized without a certificate).
      const metrics = await tlsRequest(`${r.telemetry}/metrics`, { ...client, agent });
      expect(metrics.status).toBe(403);
      expect(metrics.reused).toBe(false);
      expect(metrics.socket.isSessionReused()).toBe(true);
    } finally {
      agent.destroy();
    }

    // OTLP answers a google.rpc.Status (PERMISSION_DENIED) in the request's encoding.
    const otlp = await tlsRequest(`${r.otlp}/v1/traces`, client, { method: 'POST', body: OTLP_TRACES });
    expect(otlp.status).toBe(403);
    const status = JSON.parse(otlp.body) as { code: number; message: string };
    expect(status.code).toBe(7);
    expect(status.message).toMatch(/^client_certificate_refused: /);
    expect(status.message).toContain(why);

    expect(fromClients()).toBe(before);
  });

  it('lets the kubelet\'s probes through without a client certificate', async () => {
    expect((await tlsRequest(`${r.telemetry}/healthz`, { ca: pki.ca.cert })).status).toBe(200);
    expect((await tlsRequest(`${r.telemetry}/readyz`, { ca: pki.ca.cert })).status).toBe(200);
  });

  it('logs refused clients, rate-limited, naming the listener', async () => {
    await waitFor('the log line', () => logged(r, 'sidecar.sources[1].tls: client refused: ').length > 0, 10_000);
    expect(logged(r, 'sidecar.telemetry.tls: client refused: ')[0]).toMatchObject({ code: 'client_certificate_refused' });
  });

  it('counts OTLP refusals in sealtrail_http_requests_total', async () => {
    const metrics = (await tlsRequest(`${r.telemetry}/metrics`, { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key })).body;
    expect(metrics).toMatch(/source="otel".*code="client_certificate_refused"|code="client_certificate_refused".*source="otel"/);
  });

  it("tells /readyz's notes (why shipping halted) only to a client whose certificate verified", async () => {
    const valid: TlsClient = { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key };
    collector.responder = () => ({ status: 403, body: { error: { code: 'stream_forbidden', message: 'stream x: sender identity pod-a may not post this stream' } } });
    try {
      expect((await tlsRequest(`${r.telemetry}/v1/events`, valid, { method: 'POST', body: EVENT })).status).toBe(202);
      const noted = await waitFor('the halt note', async () => {
        const body = (await tlsRequest(`${r.telemetry}/readyz`, valid)).body;
        return body.includes('stream_forbidden') ? body : undefined;
      }, 20_000);
      expect(noted.split('\n').length).toBeGreaterThan(2);
      const bare = await tlsRequest(`${r.telemetry}/readyz`, { ca: pki.ca.cert });
      expect(bare.status).toBe(200);
      expect(bare.body).toBe('ready\n');
    } finally {
      collector.responder = ackFor;
    }
  });
});

describe('start and stop', () => {
  it('a missing file stops the start with a typed error naming the key and the file, before the buffer is created', async () => {
    const missing = join(dir, 'nope.key');
    const err = await start({ otlp: { cert_file: pki.server.cert, key_file: missing } }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('file_missing');
    expect(err?.message).toContain('sidecar.sources[1].tls.key_file');
    expect(err?.message).toContain(missing);
    expect(existsSync(join(dir, `sidecar-${runs}`, 'buffer.db'))).toBe(false);

    const bad = await start({ telemetry: { cert_file: pki.server.cert, key_file: pki.podA.key } }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(bad?.code).toBe('tls_key_mismatch');
    expect(bad?.message).toContain('sidecar.telemetry.tls.key_file');
  });

  it('shutdown stops following the TLS files: no watcher or poll reacts to them any more', async () => {
    const d = join(dir, 'after-shutdown');
    mkdirSync(d, { recursive: true });
    const tls = { cert_file: join(d, 'tls.crt'), key_file: join(d, 'tls.key') };
    const rewrite = (leaf: { cert: string; key: string }): void => {
      copyFileSync(leaf.cert, tls.cert_file);
      copyFileSync(leaf.key, tls.key_file);
    };
    rewrite(pki.server);
    const r = await start({ telemetry: tls });
    const reloaded = (): number => logged(r, 'sidecar.telemetry.tls: certificate reloaded').length;
    // While running, a rewrite is followed (so what follows is not vacuous).
    const second = issue(pki.ca, 'sidecar-3', { san: ['IP:127.0.0.1'], usage: ['serverAuth'] });
    rewrite(second);
    await waitFor('the reload', () => reloaded() === 1, 10_000);
    await r.sidecar.shutdown(Date.now() + 2000);

    rewrite(pki.server);
    // Several poll periods (200 ms here) and the watch settle time: nothing may look at the files.
    await sleep(1000);
    expect(reloaded()).toBe(1);
    expect(logged(r, 'sidecar.telemetry.tls: new certificate files refused')).toEqual([]);
  });
});
