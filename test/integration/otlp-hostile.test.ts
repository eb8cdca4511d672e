/**
 * The otlp source against hostile and broken clients, on a real socket with
 * a real buffer. Every case: a clear status and body, nothing half-stored
 * (records counted in SQLite), and the receiver still answers a good
 * request afterwards.
 */
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type HttpLimits } from '../../src/http-limits.js';
import { type OtlpSourceOptions } from '../../src/sidecar/sources/otlp-source.js';
import { ROOT } from '../helpers/procs.js';
import { rawConnect } from '../helpers/raw-http.js';
import { otlpEnvs, type OtlpEnv } from '../helpers/otlp-env.js';

const root = new protobuf.Root();
root.resolvePath = (_o, target) => join(ROOT, 'proto', target);
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto']);
root.define('google.rpc').add(new protobuf.Type('Status').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string')));
root.resolveAll();
const TraceReq = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const Status = root.lookupType('google.rpc.Status');

const CANARY = 'CANARY-4111111111111111';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PB = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };

const spanJson = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  traceId: TRACE,
  spanId: (0x1000 + i).toString(16).padStart(16, '0'),
  name: `span ${i}`,
  startTimeUnixNano: '1760000000000000000',
  attributes: [
    { key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } },
    { key: 'gen_ai.tool.name', value: { stringValue: 'lookup' } },
  ],
  ...extra,
});
const tracesJson = (spans: Array<Record<string, unknown>>): Record<string, unknown> => ({ resourceSpans: [{ scopeSpans: [{ spans }] }] });

function withIdBytes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withIdBytes);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = (k === 'traceId' || k === 'spanId') && typeof x === 'string' ? Buffer.from(x, 'hex') : withIdBytes(x);
  return out;
}

function tracesPb(spans: Array<Record<string, unknown>>): Buffer {
  const saved = protobuf.util.recursionLimit;
  protobuf.util.recursionLimit = 100_000;
  try {
    return Buffer.from(TraceReq.encode(TraceReq.fromObject(withIdBytes(tracesJson(spans)) as Record<string, unknown>)).finish());
  } finally {
    protobuf.util.recursionLimit = saved;
  }
}

type Env = OtlpEnv & {
  /** good requests sent by stillServes() */
  good: number;
}

const envs = otlpEnvs({ name: 'otlp-hostile', maxBodyBytes: 1024 * 1024, maxItems: 100_000 });
afterEach(() => envs.cleanup());

async function startEnv(o: Partial<OtlpSourceOptions> = {}, http: Partial<HttpLimits> = {}): Promise<Env> {
  const env = (await envs.start(o, http)) as Env;
  env.good = 0;
  return env;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function post(env: Env, path: string, body: Buffer | string, headers: Record<string, string>): Promise<Reply> {
  const r = await request(`${env.url}${path}`, { method: 'POST', headers, body });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

function status(r: Reply): { code: number; message: string } {
  if (r.headers['content-type'] === 'application/x-protobuf') return Status.toObject(Status.decode(r.body), { defaults: true }) as never;
  expect(r.headers['content-type']).toBe('application/json');
  return JSON.parse(r.body.toString('utf8'));
}

function records(env: Env): number {
  return env.buffer.stats().records;
}

function reasons(env: Env): string[] {
  return (env.buffer.db.prepare('SELECT reason FROM quarantine ORDER BY id').all() as Array<{ reason: string }>).map((r) => r.reason);
}

/** A good request is still taken, and exactly its one record added. */
async function stillServes(env: Env): Promise<void> {
  const before = records(env);
  const r = await post(env, '/v1/traces', tracesPb([spanJson(env.good++)]), PB);
  expect(r.status).toBe(200);
  expect(records(env)).toBe(before + 1);
}

function noCanary(env: Env, ...replies: Reply[]): void {
  for (const r of replies) expect(r.body.toString('latin1')).not.toContain('CANARY');
  const q = JSON.stringify(env.buffer.db.prepare('SELECT * FROM quarantine').all());
  expect(q).not.toContain('CANARY');
  expect(JSON.stringify(env.summaries)).not.toContain('CANARY');
  expect(env.errors.map((e) => e.message).join('\n')).not.toContain('CANARY');
}

describe('otlp source: undecodable bodies', () => {
  it('invalid protobuf: 400 format_mismatch, one quarantine row, no record', async () => {
    const env = await startEnv();
    const bytes = Buffer.concat([Buffer.from([0x0a, 0x85, 0x01]), Buffer.from(CANARY), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    const r = await post(env, '/v1/traces', bytes, PB);
    expect(r.status).toBe(400);
    const st = status(r);
    expect(st.code).toBe(3);
    expect(st.message).toMatch(/^format_mismatch: the body is not a protobuf ExportTraceServiceRequest/);
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['format_mismatch']);
    noCanary(env, r);
    await stillServes(env);
  });

  it('truncated protobuf: 400 format_mismatch, nothing of the request stored', async () => {
    const env = await startEnv();
    const whole = tracesPb([spanJson(0), spanJson(1), spanJson(2, { name: CANARY })]);
    const r = await post(env, '/v1/traces', whole.subarray(0, whole.length - 7), PB);
    expect(r.status).toBe(400);
    expect(status(r).message).toMatch(/^format_mismatch: .*truncated/);
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['format_mismatch']);
    noCanary(env, r);
    await stillServes(env);
  });

  it('JSON that is not a request object, or not JSON: 400 with a Status in JSON', async () => {
    const env = await startEnv();
    const bodies = ['[1,2,3]', `"${CANARY}"`, 'null', '42', `{"resourceSpans":`, `{"resourceSpans":[{"scopeSpans":[{"spans":"${CANARY}"}]}]}`, '\u00ff\u00fe'];
    for (const b of bodies) {
      const r = await post(env, '/v1/traces', b, JSON_CT);
      expect(r.status, b.slice(0, 40)).toBe(400);
      const st = status(r);
      expect(st.code).toBe(3);
      expect(st.message).toMatch(/^(format_mismatch|record_not_object|record_invalid): /);
      noCanary(env, r);
    }
    expect(records(env)).toBe(0);
    expect(reasons(env)).toHaveLength(bodies.length);
    // wrong types name the member by path
    const wrong = await post(env, '/v1/traces', JSON.stringify(tracesJson([spanJson(0, { traceId: CANARY })])), JSON_CT);
    expect(wrong.status).toBe(400);
    expect(status(wrong).message).toContain('resourceSpans[0].scopeSpans[0].spans[0].traceId');
    const notString = await post(env, '/v1/traces', JSON.stringify(tracesJson([spanJson(0, { name: { CANARY } })])), JSON_CT);
    expect(notString.status).toBe(400);
    expect(status(notString).message).toContain('spans[0].name');
    noCanary(env, wrong, notString);
    expect(records(env)).toBe(0);
    await stillServes(env);
  });

  it('non-UTF-8 bytes in a protobuf string field are refused (400), not replaced', async () => {
    const env = await startEnv();
    const body = tracesPb([spanJson(0), spanJson(1, { name: 'QQQQ' })]);
    const at = body.indexOf('QQQQ');
    body.set([0xff, 0xfe, 0x80, 0xed], at);
    const r = await post(env, '/v1/traces', body, PB);
    expect(r.status).toBe(400);
    expect(status(r).message).toMatch(/^format_mismatch: .*UTF-8/);
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['format_mismatch']);
    await stillServes(env);
  });

  it('attributes nested 100 kvlists deep: 400 record_invalid naming the path, in both encodings', async () => {
    const env = await startEnv();
    let v: Record<string, unknown> = { stringValue: CANARY };
    for (let i = 1; i < 100; i++) v = { kvlistValue: { values: [{ key: 'k', value: v }] } };
    const deep = spanJson(0, { attributes: [{ key: 'deep', value: v }] });
    const j = await post(env, '/v1/traces', JSON.stringify(tracesJson([deep])), JSON_CT);
    expect(j.status).toBe(400);
    const js = status(j);
    expect(js.message).toMatch(/^record_invalid: /);
    expect(js.message).toContain('resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.kvlistValue.values[0]');
    const p = await post(env, '/v1/traces', tracesPb([deep]), PB);
    expect(p.status).toBe(400);
    expect(status(p).message).toMatch(/^record_invalid: /);
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['record_invalid', 'record_invalid']);
    noCanary(env, j, p);
    await stillServes(env);
  });

  it('a "__proto__" attribute key is stored as an ordinary key', async () => {
    const env = await startEnv();
    const s = spanJson(0);
    (s.attributes as unknown[]).push({ key: '__proto__', value: { kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } } });
    const r = await post(env, '/v1/traces', JSON.stringify(tracesJson([s])), JSON_CT);
    expect(r.status).toBe(200);
    const row = env.buffer.db.prepare('SELECT canonical FROM records').get() as { canonical: string };
    const rec = JSON.parse(row.canonical);
    expect(Object.prototype.hasOwnProperty.call(rec.details.attributes, '__proto__')).toBe(true);
    expect(rec.details.attributes['__proto__']).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('otlp source: size and volume', () => {
  it('a gzip bomb is stopped at maxBodyBytes while inflating: 413, nothing but the refusal stored', async () => {
    const env = await startEnv();
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(16 * 1024);
    const r = await post(env, '/v1/traces', bomb, { ...PB, 'content-encoding': 'gzip' });
    expect(r.status).toBe(413);
    expect(status(r)).toEqual({ code: 3, message: 'body_too_large: the body is over the 1048576-byte limit (counted after gzip decoding)' });
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['body_too_large']);
    await stillServes(env);
  });

  it('a body that is not gzip under Content-Encoding: gzip is 400 gzip_invalid', async () => {
    const env = await startEnv();
    const r = await post(env, '/v1/traces', tracesPb([spanJson(0)]), { ...PB, 'content-encoding': 'gzip' });
    expect(r.status).toBe(400);
    expect(status(r).message).toBe('gzip_invalid: the body is not valid gzip');
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['gzip_invalid']);
    await stillServes(env);
  });

  it('10,000 spans in one request: all stored when maxItems allows', async () => {
    const env = await startEnv({ maxBodyBytes: 16 * 1024 * 1024 });
    const spans = Array.from({ length: 10_000 }, (_, i) => spanJson(i));
    const r = await post(env, '/v1/traces', gzipSync(tracesPb(spans)), { ...PB, 'content-encoding': 'gzip' });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(0); // an empty ExportTraceServiceResponse
    expect(records(env)).toBe(10_000);
    const last = JSON.parse((env.buffer.db.prepare('SELECT canonical FROM records WHERE seq = 9999').get() as { canonical: string }).canonical);
    expect(last.span_id).toBe((0x1000 + 9999).toString(16).padStart(16, '0'));
    expect(env.buffer.quarantineCount()).toBe(0);
  });

  it('10,000 spans over maxItems: 400 otlp_too_many_items, none stored', async () => {
    const env = await startEnv({ maxItems: 5000, maxBodyBytes: 16 * 1024 * 1024 });
    const spans = Array.from({ length: 10_000 }, (_, i) => spanJson(i));
    const r = await post(env, '/v1/traces', JSON.stringify(tracesJson(spans)), JSON_CT);
    expect(r.status).toBe(400);
    expect(status(r)).toEqual({ code: 3, message: 'otlp_too_many_items: more than 5000 spans in one request' });
    expect(records(env)).toBe(0);
    expect(reasons(env)).toEqual(['otlp_too_many_items']);
    await stillServes(env);
  });

  it('Expect: 100-continue with a body over the limit gets 413 before any byte is sent', async () => {
    const env = await startEnv();
    const c = rawConnect(env.url);
    c.socket.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n');
    await c.waitFor(/\r\n\r\n[\s\S]*body_too_large/);
    expect(c.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(c.received()).not.toContain('100 Continue');
    expect(c.received().toLowerCase()).toContain('connection: close');
    await c.closed;
    expect(records(env)).toBe(0);
    // refused before any byte was read: nothing to quarantine, so a client cannot grow the table for free
    expect(reasons(env)).toEqual([]);
    await stillServes(env);
  });
});

describe('otlp source: hostile connections', () => {
  it('wrong content types and codings: 415, nothing stored', async () => {
    const env = await startEnv();
    const body = tracesPb([spanJson(0)]);
    for (const ct of ['text/plain', 'application/protobuf', 'application/grpc', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/x-ndjson']) {
      const r = await post(env, '/v1/traces', body, { 'content-type': ct });
      expect(r.status, ct).toBe(415);
      expect(status(r).message).toMatch(/^content_type_unsupported: /);
    }
    const none = await request(`${env.url}/v1/traces`, { method: 'POST', body });
    expect(none.statusCode).toBe(415);
    await none.body.arrayBuffer();
    for (const ce of ['deflate', 'br', 'gzip, gzip', 'zstd']) {
      const r = await post(env, '/v1/traces', body, { ...PB, 'content-encoding': ce });
      expect(r.status, ce).toBe(415);
      expect(status(r).message).toMatch(/^content_encoding_unsupported: /);
    }
    expect(records(env)).toBe(0);
    expect(env.buffer.quarantineCount()).toBe(0);
    await stillServes(env);
  });

  it('path traversal and look-alike paths are 404, never served as /v1/traces', async () => {
    const env = await startEnv();
    const body = tracesPb([spanJson(0)]);
    for (const target of ['/v1/../v1/traces', '/v1/traces/../../etc/passwd', '/%2e%2e/v1/traces', '//v1/traces', '/v1/traces/', '/V1/TRACES', '/v1/traces%00', '/v1/metrics']) {
      const c = rawConnect(env.url);
      c.socket.write(`POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      c.socket.write(body);
      await c.waitFor(/^HTTP\/1\.1 \d{3} [\s\S]*\r\n\r\n/);
      expect(c.received(), target).toMatch(/^HTTP\/1\.1 404 /);
      await c.closed;
    }
    expect(records(env)).toBe(0);
    expect(env.buffer.quarantineCount()).toBe(0);
    expect(env.summaries.every((s) => s.status === 404 && s.path === 'POST (another path)')).toBe(true);
    await stillServes(env);
  });

  it('a huge header is refused 431 by the HTTP parser, and the receiver lives on', async () => {
    const env = await startEnv();
    const c = rawConnect(env.url);
    c.socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\nContent-Length: 0\r\n\r\n`);
    await c.waitFor(/^HTTP\/1\.1 431 /);
    await c.closed;
    const many = rawConnect(env.url);
    many.socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`);
    await many.waitFor(/^HTTP\/1\.1 431 /);
    await many.closed;
    expect(records(env)).toBe(0);
    expect(env.errors).toEqual([]);
    await stillServes(env);
  });

  it('a client that never finishes its body is cut off at request_timeout (408), frees its slot, and stores nothing', async () => {
    const env = await startEnv({ maxInFlight: 1 }, { header_timeout: 300, request_timeout: 800 });
    const body = tracesPb([spanJson(0), spanJson(1)]);
    const c = rawConnect(env.url);
    c.socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.trickle(body.toString('latin1'), 200);
    const started = Date.now();
    await c.waitFor(/^HTTP\/1\.1 408 /, 5000);
    const closedAfter = await c.closed;
    expect(closedAfter).toBeLessThan(3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(records(env)).toBe(0);
    expect(env.buffer.quarantineCount()).toBe(0);
    // the slot it held is free again: not 503 busy
    await stillServes(env);
  });

  it('a client that goes away mid-body leaves nothing behind', async () => {
    const env = await startEnv({ maxInFlight: 1 });
    const body = tracesPb([spanJson(0), spanJson(1)]);
    const c = rawConnect(env.url);
    c.socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`);
    c.socket.write(body.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 100));
    c.stop();
    await c.closed;
    await new Promise((r) => setTimeout(r, 100));
    expect(records(env)).toBe(0);
    expect(env.buffer.quarantineCount()).toBe(0);
    expect(env.summaries).toHaveLength(0);
    await stillServes(env);
  });
});
