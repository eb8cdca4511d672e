import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SealtrailError } from '../../src/core/errors.js';
import { waitFor } from '../harness/wait.js';
import { issue, makeTestPki, type TestPki } from '../helpers/certs.js';
import { startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { tlsRequest } from '../helpers/tls-requests.js';

let dir: string;
let pki: TestPki;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-tls-'));
  pki = makeTestPki(dir);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The collector's log lines with this message prefix. */
function logged(c: TestCollector, prefix: string): Record<string, unknown>[] {
  return c.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(prefix));
}

describe('collector over HTTPS', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector({ tls: { cert_file: pki.server.cert, key_file: pki.server.key } });
  });
  afterAll(async () => c.close());

  it('answers over TLS with its certificate, on an https:// URL', async () => {
    expect(c.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert });
    expect(res.status).toBe(200);
    expect(res.serial).toBe(pki.server.serial);
    expect(res.socket.getProtocol()).toMatch(/^TLSv1\.[23]$/);
  });

  it('refuses a client that does not trust its CA (the client says why)', async () => {
    await expect(tlsRequest(`${c.url}/healthz`, { ca: pki.otherCa.cert })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('refuses plain HTTP on the HTTPS port and logs why', async () => {
    const port = new URL(c.url).port;
    const err = await new Promise<Error & { code?: string }>((resolve) => {
      http.get(`http://127.0.0.1:${port}/healthz`, () => resolve(new Error('answered'))).on('error', resolve);
    });
    expect(err.code).toMatch(/ECONNRESET|EPIPE|HPE_INVALID_CONSTANT/);
    await waitFor('the log line', () => logged(c, 'TLS handshake refused: the client spoke plain HTTP').length > 0, 5000);
  });

  it('refuses TLS 1.1', async () => {
    await expect(
      new Promise((resolve, reject) => {
        https
          .get(`${c.url}/healthz`, { ca: pki.ca.cert, maxVersion: 'TLSv1.1', minVersion: 'TLSv1', agent: false }, resolve)
          .on('error', reject);
      }),
    ).rejects.toThrow();
  });
});

describe('collector with client_ca_file (mTLS)', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector({ tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert } });
  });
  afterAll(async () => c.close());

  it('answers a client with a certificate of the CA', async () => {
    const res = await tlsRequest(`${c.url}/metrics`, { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key });
    expect(res.status).toBe(200);
  });

  it.each([
    ['no certificate', undefined, 'no client certificate presented'],
    ['an expired certificate', 'expired', 'it has expired; renew it (CERT_HAS_EXPIRED)'],
    ['a certificate of another CA', 'stranger', 'it is not issued by a CA of client_ca_file'],
  ] as const)('refuses a client with %s: 403 client_certificate_refused saying why, connection closed', async (_what, which, why) => {
    const cert = which === undefined ? {} : { cert: pki[which].cert, key: pki[which].key };
    const res = await tlsRequest(`${c.url}/metrics`, { ca: pki.ca.cert, ...cert });
    expect(res.status).toBe(403);
    const body = JSON.parse(res.body) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('client_certificate_refused');
    expect(body.error.message).toContain(why);
    // Every route, the batches route and unknown ones included.
    const post = await tlsRequest(`${c.url}/v1/batches`, { ca: pki.ca.cert, ...cert }, { method: 'POST', body: '{}' });
    expect(post.status).toBe(403);
    expect((await tlsRequest(`${c.url}/nope`, { ca: pki.ca.cert, ...cert })).status).toBe(403);
    // The kubelet's probes present no certificate: they are the exception.
    expect((await tlsRequest(`${c.url}/readyz`, { ca: pki.ca.cert, ...cert })).status).toBe(200);
  });

  it('refuses a client without a certificate on a resumed TLS session too (OpenSSL marks those authorized)', async () => {
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    try {
      const probe = await tlsRequest(`${c.url}/readyz`, { ca: pki.ca.cert, agent });
      expect(probe.status).toBe(200);
      const next = await tlsRequest(`${c.url}/v1/streams`, { ca: pki.ca.cert, agent });
      expect(next.socket.isSessionReused()).toBe(true);
      expect(next.status).toBe(403);
      expect(JSON.parse(next.body).error.message).toContain('no client certificate presented');
    } finally {
      agent.destroy();
    }
  });
});

/** A kubelet-style secret volume: name -> ..data/name, ..data -> a timestamped directory, swapped atomically. */
function secretVolume(root: string, files: Record<string, string>): { path: (name: string) => string; swap: (next: Record<string, string>) => void } {
  let n = 0;
  const write = (next: Record<string, string>): string => {
    const d = join(root, `..${++n}`);
    mkdirSync(d);
    for (const [name, from] of Object.entries(next)) cpSync(from, join(d, name));
    return d;
  };
  mkdirSync(root, { recursive: true });
  symlinkSync(write(files), join(root, '..data'));
  for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(root, name));
  return {
    path: (name) => join(root, name),
    swap: (next) => {
      const d = write(next);
      symlinkSync(d, join(root, '..data_tmp'));
      renameSync(join(root, '..data_tmp'), join(root, '..data'));
    },
  };
}

describe('certificate rotation on disk', () => {
  it('new connections get the new certificate, an open kept-alive connection goes on, bad files keep the old', async () => {
    const vol = secretVolume(join(dir, 'rotating'), { 'tls.crt': pki.server.cert, 'tls.key': pki.server.key });
    const c = await startTestCollector({ tls: { cert_file: vol.path('tls.crt'), key_file: vol.path('tls.key'), poll_ms: 200 } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert, agent });
      expect(first.serial).toBe(pki.server.serial);

      const next = issue(pki.ca, 'server-2', { san: ['IP:127.0.0.1', 'DNS:localhost'], usage: ['serverAuth'] });
      vol.swap({ 'tls.crt': next.cert, 'tls.key': next.key });
      await waitFor('the new certificate', async () => (await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert })).serial === next.serial, 10_000);
      expect(logged(c, 'collector.tls: certificate reloaded')[0]).toMatchObject({ serial: next.serial });

      // The connection opened before the swap was not dropped: reused, still the old certificate.
      const again = await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert, agent });
      expect(again.reused).toBe(true);
      expect(again.socket).toBe(first.socket);
      expect(again.serial).toBe(pki.server.serial);

      // A half-rotated secret (new cert, old key) is refused; the good pair stays in use.
      const third = issue(pki.ca, 'server-3', { san: ['IP:127.0.0.1'], usage: ['serverAuth'] });
      vol.swap({ 'tls.crt': third.cert, 'tls.key': pki.server.key });
      await waitFor('the log line', () => logged(c, 'collector.tls: new certificate files refused').length > 0, 10_000);
      expect(logged(c, 'collector.tls: new certificate files refused')[0]).toMatchObject({ code: 'tls_key_mismatch' });
      expect((await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert })).serial).toBe(next.serial);

      // Once the pair is complete it is taken.
      vol.swap({ 'tls.crt': third.cert, 'tls.key': third.key });
      await waitFor('the new certificate', async () => (await tlsRequest(`${c.url}/healthz`, { ca: pki.ca.cert })).serial === third.serial, 10_000);
    } finally {
      agent.destroy();
      await c.close();
    }
  });
});

describe('refusing bad files at start', () => {
  async function startError(tls: { cert_file: string; key_file: string; client_ca_file?: string }): Promise<SealtrailError> {
    try {
      const c = await startTestCollector({ tls });
      await c.close();
    } catch (err) {
      return err as SealtrailError;
    }
    throw new Error('collector started');
  }

  it('a missing file names it and its key', async () => {
    const err = await startError({ cert_file: join(dir, 'nope.crt'), key_file: pki.server.key });
    expect(err.code).toBe('file_missing');
    expect(err.message).toContain('nope.crt');
    expect(err.message).toContain('collector.tls.cert_file');
  });

  it('a file that is not PEM', async () => {
    const bad = join(dir, 'garbled.crt');
    writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n');
    const err = await startError({ cert_file: bad, key_file: pki.server.key });
    expect(err.code).toBe('tls_pem_invalid');
    expect(err.message).toContain('collector.tls.cert_file');
    const noKey = join(dir, 'garbled.key');
    writeFileSync(noKey, 'hello');
    const err2 = await startError({ cert_file: pki.server.cert, key_file: noKey });
    expect(err2.code).toBe('tls_pem_invalid');
    expect(err2.message).toContain('collector.tls.key_file');
  });

  it('a chain or CA bundle cut off after its first certificate (caught half-written)', async () => {
    const full = `${readFileSync(pki.server.cert, 'utf8')}${readFileSync(pki.ca.cert, 'utf8')}`;
    const cut = full.slice(0, full.lastIndexOf('-----END CERTIFICATE-----') - 40);
    const chain = join(dir, 'cut-chain.crt');
    writeFileSync(chain, cut);
    const err = await startError({ cert_file: chain, key_file: pki.server.key });
    expect(err.code).toBe('tls_pem_invalid');
    expect(err.message).toMatch(/certificate 2 of the file is cut off/);
    const bundle = join(dir, 'cut-bundle.crt');
    const cas = `${readFileSync(pki.ca.cert, 'utf8')}${readFileSync(pki.otherCa.cert, 'utf8')}`;
    writeFileSync(bundle, cas.slice(0, cas.length - 60));
    const err2 = await startError({ cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: bundle });
    expect(err2.code).toBe('tls_pem_invalid');
    expect(err2.message).toContain('collector.tls.client_ca_file');
  });

  it('a key that is not the certificate\'s', async () => {
    const err = await startError({ cert_file: pki.server.cert, key_file: pki.podA.key });
    expect(err.code).toBe('tls_key_mismatch');
    expect(err.message).toMatch(/collector\.tls\.key_file.*collector\.tls\.cert_file/);
  });

  it('a client CA bundle without certificates', async () => {
    const err = await startError({ cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.server.key });
    expect(err.code).toBe('tls_pem_invalid');
    expect(err.message).toContain('collector.tls.client_ca_file');
  });
});
