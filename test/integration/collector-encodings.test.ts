import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { rawConnect, rawJsonBody } from '../helpers/raw-http.js';
import { sleep } from '../harness/wait.js';

const HMAC_KEY = Buffer.alloc(32, 7);
const MAX_BODY = 256 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

async function post(url: string, body: Buffer | string | Readable, headers: Record<string, string>): Promise<Answer> {
  const res = await request(`${url}/v1/batches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

/** A request with `Authorization` twice, written byte for byte. */
async function twoAuthorizations(url: string, method: 'GET' | 'POST', path: string, body = ''): Promise<string> {
  const c = rawConnect(url);
  c.socket.write(
    `${method} ${path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nauthorization: Bearer someone-else-entirely-0123\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  await c.closed;
  return c.received();
}

describe('collector: POST /v1/batches content encodings and charsets', () => {
  let c: TestCollector;
  let b: BatchBuilder;

  const options = () => ({
    streams: [{ match: 'pod-a', vkey: b.vkey }],
    hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
    max_body_bytes: MAX_BODY,
  });

  beforeEach(async () => {
    b = new BatchBuilder({ stream: 'pod-a', hmacKey: HMAC_KEY, keyId: 'k1' });
    c = await startTestCollector(options());
  });
  afterEach(async () => {
    await c.close();
  });

  const nothingStored = async (): Promise<void> => {
    expect(await c.store.getStreamState('pod-a')).toBeUndefined();
  };

  it('a plain body labelled gzip is refused 400 gzip_invalid, and so is a truncated gzip body; nothing is stored', async () => {
    const text = JSON.stringify(b.clone().next(2));
    for (const body of [text, gzipSync(text).subarray(0, 40), Buffer.alloc(0)]) {
      const r = await post(c.url, body, { 'content-encoding': 'gzip' });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('gzip_invalid');
    }
    await nothingStored();
  });

  it('a gzip batch (with a length or chunked, gzip or x-gzip) is acknowledged and stored exactly as the plain one', async () => {
    const plainTwin = await startTestCollector(options());
    try {
      const twin = b.clone();
      const batches = [b.next(2), b.next(3), b.next(1)];
      const twinBatches = [twin.next(2), twin.next(3), twin.next(1)];
      const bodies: Array<{ body: Buffer | Readable; headers: Record<string, string> }> = [
        { body: gzipSync(JSON.stringify(batches[0])), headers: { 'content-encoding': 'gzip' } },
        { body: Readable.from([gzipSync(JSON.stringify(batches[1]))]), headers: { 'content-encoding': 'GZIP' } },
        { body: gzipSync(JSON.stringify(batches[2])), headers: { 'content-encoding': 'x-gzip', 'content-type': 'application/json; charset=utf-8' } },
      ];
      for (const [i, { body, headers }] of bodies.entries()) {
        const r = await post(c.url, body, headers);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.ack.batch).toBe(i);
        expect((await postJson(plainTwin.url, twinBatches[i])).status).toBe(200);
      }
      // everything but the time each collector received it
      const stored = async (t: TestCollector, i: number) => ({ ...(await t.store.getBatch('pod-a', i)), receivedAt: undefined });
      for (let i = 0; i < 3; i++) {
        expect(await stored(c, i)).toEqual(await stored(plainTwin, i));
      }
      const viaGzip = await getJson(c.url, '/v1/streams/pod-a/records?from_seq=0');
      const viaPlain = await getJson(plainTwin.url, '/v1/streams/pod-a/records?from_seq=0');
      expect(viaGzip.status).toBe(200);
      expect(viaGzip.body.records.map((r: { seq: number }) => r.seq)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(viaGzip.body).toEqual(viaPlain.body);
      // the plain resend of a batch stored from gzip is the identical batch
      const again = await postJson(c.url, batches[0]);
      expect(again.status).toBe(200);
      expect(again.body.duplicate).toBe(true);
    } finally {
      await plainTwin.close();
    }
  });

  it('a gzip bomb over max_body_bytes once decoded is refused 413, nothing stored; the stream still works', async () => {
    const batch = b.clone().next(2);
    // valid JSON (trailing whitespace) a few KiB compressed, over the limit decoded
    const bomb = gzipSync(JSON.stringify(batch) + ' '.repeat(8 * MAX_BODY));
    expect(bomb.length).toBeLessThan(MAX_BODY / 4);
    for (const body of [bomb, Readable.from([bomb])]) {
      const r = await post(c.url, body, { 'content-encoding': 'gzip' });
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe('body_too_large');
    }
    await nothingStored();
    expect((await post(c.url, gzipSync(JSON.stringify(b.next(2))), { 'content-encoding': 'gzip' })).status).toBe(200);
  });

  it('a client that goes away in the middle of a gzip body leaves nothing behind; the collector carries on', async () => {
    const gz = gzipSync(JSON.stringify(b.clone().next(2)));
    for (const chunked of [false, true]) {
      const conn = rawConnect(c.url);
      const length = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${gz.length}`;
      conn.socket.write(`POST /v1/batches HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n${length}\r\n\r\n`);
      const part = gz.subarray(0, 30);
      conn.socket.write(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part);
      await sleep(100);
      conn.stop();
      await conn.closed;
    }
    await nothingStored();
    expect((await post(c.url, gzipSync(JSON.stringify(b.next(2))), { 'content-encoding': 'gzip' })).status).toBe(200);
    expect(c.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('any other content coding is refused 415 with Accept-Encoding: gzip, before the body is read', async () => {
    const body = JSON.stringify(b.clone().next(2));
    for (const coding of ['br', 'deflate', 'compress', 'zstd', 'gzip, gzip', 'identity, gzip', 'x-unknown']) {
      const r = await post(c.url, body, { 'content-encoding': coding });
      expect(r.status, coding).toBe(415);
      expect(r.body.error.code, coding).toBe('content_encoding_unsupported');
      expect(r.headers['accept-encoding'], coding).toBe('gzip');
    }
    await nothingStored();
    // identity is no coding at all
    expect((await post(c.url, body, { 'content-encoding': 'identity' })).status).toBe(200);
  });

  it('a charset other than UTF-8 is refused 415; none, utf-8 and "UTF-8" are accepted', async () => {
    const refused = JSON.stringify(b.clone().next(2));
    for (const type of ['application/json; charset=latin1', 'application/json; charset=iso-8859-1', 'application/json;charset="utf-16"']) {
      const r = await post(c.url, refused, { 'content-type': type });
      expect(r.status, type).toBe(415);
      expect(r.body.error.code, type).toBe('unsupported_media_type');
    }
    await nothingStored();
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON; Charset="UTF-8"']) {
      const r = await post(c.url, JSON.stringify(b.next(1)), { 'content-type': type });
      expect(r.status, type).toBe(200);
    }
  });

  it('a body that is not JSON by its Content-Type is refused 415 whatever its encoding', async () => {
    const body = JSON.stringify(b.clone().next(2));
    for (const [type, coding] of [['text/plain', 'identity'], ['text/plain', 'gzip'], ['application/x-ndjson', 'gzip']] as const) {
      const r = await post(c.url, coding === 'gzip' ? gzipSync(body) : body, { 'content-type': type, 'content-encoding': coding });
      expect(r.status, `${type} ${coding}`).toBe(415);
      expect(r.body.error.code).toBe('unsupported_media_type');
    }
    await nothingStored();
  });

  it('two Authorization headers are refused 400 authorization_repeated on /v1/batches and on /v1/audit', async () => {
    const batches = await twoAuthorizations(c.url, 'POST', '/v1/batches', JSON.stringify(b.clone().next(2)));
    expect(batches).toMatch(/^HTTP\/1\.1 400 /);
    expect(rawJsonBody(batches).error.code).toBe('authorization_repeated');
    await nothingStored();

    const audit = await twoAuthorizations(c.url, 'GET', '/v1/audit?limit=1');
    expect(audit).toMatch(/^HTTP\/1\.1 400 /);
    expect(rawJsonBody(audit).error.code).toBe('authorization_repeated');
    // neither token leaks into the answer
    expect(audit).not.toContain(ADMIN_TOKEN);
    expect(audit).not.toContain('someone-else');
    // one header is fine
    expect((await getJson(c.url, '/v1/audit?limit=1')).status).toBe(200);
  });

  it('two Content-Type headers (the second with a latin1 charset Node would ignore) are refused 400 content_type_repeated', async () => {
    const body = JSON.stringify(b.clone().next(2));
    const conn = rawConnect(c.url);
    conn.socket.write(
      `POST /v1/batches HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\ncontent-type: application/json; charset=latin1\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    await conn.closed;
    const answer = conn.received();
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(rawJsonBody(answer).error.code).toBe('content_type_repeated');
    await nothingStored();
  });
});
