import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ShipIdentity } from '../../src/collector/options.js';
import { createLogger } from '../../src/log.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Shipper } from '../../src/sidecar/ship/shipper.js';
import { SidecarMetrics } from '../../src/sidecar/telemetry/metrics.js';
import { waitFor } from '../harness/wait.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { makeTestPki, POD_A, POD_B, type TestPki } from '../helpers/certs.js';
import { startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { HMAC_KEY, KEY_ID, makeKeys, nextRecords } from '../helpers/sidecar-fixtures.js';

const TOKEN_A = 'ship-token-of-pod-a-0123456789';
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

const IDENTITIES: ShipIdentity[] = [
  { id: 'pod-a', san_uri: POD_A, streams: ['pod-a'] },
  { id: 'pod-b', san_uri: POD_B, streams: ['pod-b-*'] },
  { id: 'token-a', token_sha256: sha(TOKEN_A), streams: ['tok-a'] },
];

let dir: string;
let pki: TestPki;
const keys = makeKeys('agents');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-ident-'));
  pki = makeTestPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; code?: string; message?: string }> {
  const res = await request(`${url}/v1/batches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const answer = (await res.body.json()) as { error?: { code: string; message: string } };
  return { status: res.statusCode, ...(answer.error ? { code: answer.error.code, message: answer.error.message } : {}) };
}

describe('ship tokens map to streams', () => {
  let c: TestCollector;
  beforeAll(async () => {
    c = await startTestCollector({ streams: [{ match: '*', vkey: keys.vkey }], hmac_keys: [{ id: KEY_ID, key: HMAC_KEY }], ship_identities: IDENTITIES });
  });
  afterAll(async () => c.close());
  const batch = (stream: string): unknown => new BatchBuilder({ stream, skey: keys.skey, hmacKey: HMAC_KEY, keyId: KEY_ID }).next(2);

  it('takes its own stream', async () => {
    expect(await post(c.url, batch('tok-a'), TOKEN_A)).toMatchObject({ status: 200 });
  });

  it('refuses another stream with 403 stream_forbidden naming the identity, though the key is trusted', async () => {
    const res = await post(c.url, batch('pod-b-1'), TOKEN_A);
    expect(res).toMatchObject({ status: 403, code: 'stream_forbidden' });
    expect(res.message).toContain('token-a');
    expect(res.message).toContain('pod-b-1');
  });

  it('refuses no credentials (401 ship_identity_required) and an unknown token (403 ship_identity_unknown)', async () => {
    expect(await post(c.url, batch('tok-a'))).toMatchObject({ status: 401, code: 'ship_identity_required' });
    expect(await post(c.url, batch('tok-a'), 'some-other-token-0123456789')).toMatchObject({ status: 403, code: 'ship_identity_unknown' });
  });
});

describe('a sidecar shipper over mTLS', () => {
  let c: TestCollector;
  const open: { shipper: Shipper; buffer: AuditBuffer }[] = [];
  beforeAll(async () => {
    c = await startTestCollector({
      tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert },
      streams: [{ match: '*', vkey: keys.vkey }],
      hmac_keys: [{ id: KEY_ID, key: HMAC_KEY }],
      ship_identities: IDENTITIES,
    });
  });
  afterEach(async () => {
    for (const o of open.splice(0)) {
      await o.shipper.close();
      o.buffer.close();
    }
  });
  afterAll(async () => c.close());

  function shipper(stream: string, tls: { ca_file?: string; cert_file?: string; key_file?: string }): { shipper: Shipper; buffer: AuditBuffer } {
    const buffer = AuditBuffer.open(join(mkdtempSync(join(dir, 'buf-')), 'buffer.db'), { newStreamId: () => stream });
    buffer.commit(nextRecords(buffer, 3));
    buffer.seal(keys.signer, 1000, 1e9);
    const s = new Shipper(buffer, {
      url: c.url,
      tls,
      timeoutMs: 5000,
      backoffInitialMs: 20,
      backoffMaxMs: 200,
      logger: createLogger('test', 'silent'),
      metrics: new SidecarMetrics(),
    });
    const o = { shipper: s, buffer };
    open.push(o);
    s.start();
    return o;
  }

  it('pod A ships its own stream: stored', async () => {
    const { buffer } = shipper('pod-a', { ca_file: pki.ca.cert, cert_file: pki.podA.cert, key_file: pki.podA.key });
    await waitFor('the ack', () => buffer.nextToShip() === undefined, 10_000);
    expect((await c.store.getStreamState('pod-a'))?.nextBatch).toBe(1);
  });

  it('pod A is refused pod B\'s stream: shipping halts with 403 stream_forbidden', async () => {
    const { shipper: s } = shipper('pod-b-7', { ca_file: pki.ca.cert, cert_file: pki.podA.cert, key_file: pki.podA.key });
    const halt = await waitFor('the halt', () => s.halt(), 10_000);
    expect(halt).toMatchObject({ status: 403, reason: 'stream_forbidden' });
    expect(halt.message).toContain('pod-a');
    expect(await c.store.getStreamState('pod-b-7')).toBeUndefined();
  });

  it('an expired client certificate halts with 403 client_certificate_refused saying it expired', async () => {
    const { shipper: s } = shipper('pod-a', { ca_file: pki.ca.cert, cert_file: pki.expired.cert, key_file: pki.expired.key });
    const halt = await waitFor('the halt', () => s.halt(), 10_000);
    expect(halt).toMatchObject({ status: 403, reason: 'client_certificate_refused' });
    expect(halt.message).toContain('expired');
  });
});
