/**
 * The otlp source end to end in one process: a real OtlpSource on a real
 * port, committing through the real Ingest into a real AuditBuffer (SQLite).
 * Requests are built from the vendored OTLP definitions by protobufjs (not
 * by the module under test) and answers decoded the same way.
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { SealtrailError } from '../../src/core/errors.js';
import { DEFAULT_HTTP_LIMITS } from '../../src/http-limits.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest } from '../../src/sidecar/ingest.js';
import { OtlpSource, type OtlpSourceOptions } from '../../src/sidecar/sources/otlp-source.js';
import { codeOf } from '../helpers/errors.js';
import { rawConnect } from '../helpers/raw-http.js';
import { ROOT } from '../helpers/procs.js';
import { otlpEnvs, type OtlpEnv } from '../helpers/otlp-env.js';

// ---- OTLP messages, independently of src/ ----------------------------------

const root = new protobuf.Root();
root.resolvePath = (_o, target) => join(ROOT, 'proto', target);
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto']);
root.define('google.rpc').add(new protobuf.Type('Status').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string')));
root.resolveAll();
const T = {
  traceReq: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
  traceRes: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
  logsReq: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
  logsRes: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
  status: root.lookupType('google.rpc.Status'),
};
const PLAIN = { longs: String, enums: Number, defaults: false } as const;

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const START_NS = '1760000000123456789';
const END_NS = '1760000000623456789';

const str = (key: string, v: string) => ({ key, value: { stringValue: v } });

/** A span in the OTLP/JSON form: hex ids, int64 as decimal strings. */
function span(i: number, attributes: Array<Record<string, unknown>>): Record<string, unknown> {
  const spanId = (0x1000 + i).toString(16).padStart(16, '0');
  return { traceId: TRACE, spanId, name: `span ${i}`, kind: 1, startTimeUnixNano: START_NS, endTimeUnixNano: END_NS, attributes };
}

const toolSpan = (i: number, tool = 'lookup'): Record<string, unknown> =>
  span(i, [str('gen_ai.operation.name', 'execute_tool'), str('gen_ai.tool.name', tool), str('gen_ai.tool.call.id', `call-${i}`), str('enduser.id', 'user-7')]);
const chatSpan = (i: number): Record<string, unknown> =>
  span(i, [str('gen_ai.operation.name', 'chat'), str('gen_ai.request.model', 'gpt-4o'), str('gen_ai.provider.name', 'openai')]);

function tracesJson(spans: Array<Record<string, unknown>>): Record<string, unknown> {
  const scopeSpans = [{ scope: { name: 'agent-sdk', version: '1.0.0' }, spans }];
  return { resourceSpans: [{ resource: { attributes: [str('service.name', 'support-agent')] }, scopeSpans }] };
}

/** Hex ids → bytes, for protobufjs. */
function withIdBytes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withIdBytes);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = (k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof x === 'string' ? Buffer.from(x, 'hex') : withIdBytes(x);
  return out;
}

function tracesPb(spans: Array<Record<string, unknown>>): Buffer {
  return Buffer.from(T.traceReq.encode(T.traceReq.fromObject(withIdBytes(tracesJson(spans)) as Record<string, unknown>)).finish());
}

function logsJson(n: number): Record<string, unknown> {
  const logRecords = Array.from({ length: n }, (_, i) => ({ timeUnixNano: START_NS, severityNumber: 9, severityText: 'INFO', eventName: 'gen_ai.user.message', body: { stringValue: `message ${i}` }, attributes: [str('gen_ai.conversation.id', 'conv-1')], traceId: TRACE, spanId: '00f067aa0ba902b7' }));
  return { resourceLogs: [{ resource: { attributes: [str('service.name', 'support-agent')] }, scopeLogs: [{ scope: { name: 'agent-sdk' }, logRecords }] }] };
}

// ---- environment -------------------------------------------------------------

type Env = OtlpEnv;

const envs = otlpEnvs({ name: 'otlp', maxBodyBytes: 1024 * 1024, maxItems: 1000 });
afterEach(() => envs.cleanup());
const startEnv = (o: Partial<OtlpSourceOptions> = {}): Promise<Env> => envs.start(o);

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

async function post(env: Env, path: string, body: Buffer | string, headers: Record<string, string>, method = 'POST'): Promise<Reply> {
  const r = await request(`${env.url}${path}`, { method: method as 'POST', headers, body });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

const PB = { 'content-type': 'application/x-protobuf' };
const JSON_CT = { 'content-type': 'application/json' };

function pbStatus(r: Reply): { code?: number; message?: string } {
  expect(r.headers['content-type']).toBe('application/x-protobuf');
  return T.status.toObject(T.status.decode(r.body), PLAIN);
}

function jsonStatus(r: Reply): { code?: number; message?: string } {
  expect(r.headers['content-type']).toBe('application/json');
  return JSON.parse(r.body.toString('utf8'));
}

type Rec = Record<string, any>;

function records(env: Env): Rec[] {
  return (env.buffer.db.prepare('SELECT canonical FROM records ORDER BY seq').all() as Array<{ canonical: string }>).map((r) => JSON.parse(r.canonical));
}

function quarantine(env: Env): Array<{ source: string; path: string; file_key: string; offset: number; length: number; reason: string; message: string; field: string | null }> {
  return env.buffer.db.prepare('SELECT source, path, file_key, offset, length, reason, message, field FROM quarantine ORDER BY id').all() as never;
}

function nothingStored(env: Env): void {
  expect(env.buffer.stats().records).toBe(0);
  expect(env.buffer.quarantineCount()).toBe(0);
}

// ---- tests -------------------------------------------------------------------

describe('otlp source: accepted requests', () => {
  it('commits a protobuf traces request and answers 200 with an empty ExportTraceServiceResponse', async () => {
    const env = await startEnv();
    const r = await post(env, '/v1/traces', tracesPb([toolSpan(0), chatSpan(1)]), PB);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-protobuf');
    expect(T.traceRes.toObject(T.traceRes.decode(r.body), PLAIN)).toEqual({});
    const requestId = r.headers['x-request-id'];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);

    const recs = records(env);
    expect(recs).toHaveLength(2);
    expect(recs.map((x) => x.seq)).toEqual([0, 1]);
    expect(recs[0]).toMatchObject({
      event_type: 'tool_invoked',
      source: 'otel',
      time: '2025-10-09T08:53:20.123Z',
      tool: { name: 'lookup', call_id: 'call-0' },
      actor: { id: 'user-7', type: 'user' },
      trace_id: TRACE,
      span_id: '0000000000001000',
      outcome: 'success',
    });
    expect(recs[1]).toMatchObject({ event_type: 'model_called', model: { provider: 'openai', name: 'gpt-4o' } });
    expect(JSON.stringify(recs[1]!.details)).toContain('support-agent');
    expect(env.buffer.quarantineCount()).toBe(0);
    expect(env.metas).toEqual([{ requestId, path: 'POST /v1/traces' }]);
    expect(env.sinkLines[0]!.map((l) => [l.offset, l.length, l.text, typeof l.value])).toEqual([
      [0, 0, undefined, 'object'],
      [1, 0, undefined, 'object'],
    ]);
    expect(env.summaries.at(-1)).toMatchObject({ source: 'otel', requestId, path: 'POST /v1/traces', status: 200, items: 2, accepted: 2, rejected: 0 });
  });

  it('commits a JSON logs request and answers in JSON', async () => {
    const env = await startEnv();
    const r = await post(env, '/v1/logs', JSON.stringify(logsJson(3)), { 'content-type': 'application/json; charset=utf-8' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body.toString())).toEqual({});
    const recs = records(env);
    expect(recs).toHaveLength(3);
    expect(recs[2]).toMatchObject({ event_type: 'gen_ai.user.message', session_id: 'conv-1', trace_id: TRACE, time: '2025-10-09T08:53:20.123Z' });
    expect(JSON.stringify(recs[2]!.details)).toContain('message 2');
    expect(env.metas[0]!.path).toBe('POST /v1/logs');
  });

  it('repairs lone surrogates a JSON body escapes, and marks only the lines of such a body for the walk', async () => {
    const env = await startEnv();
    const clean = await post(env, '/v1/traces', JSON.stringify(tracesJson([toolSpan(0, 'lookup \u00e9')])), JSON_CT);
    const lone = await post(env, '/v1/traces', JSON.stringify(tracesJson([toolSpan(1, 'x\ud800y')])), JSON_CT);
    expect([clean.status, lone.status]).toEqual([200, 200]);
    const [a, b] = records(env);
    expect(a!.tool.name).toBe('lookup é');
    expect(a!.redaction.repaired).toBeUndefined();
    expect(b!.tool.name).toBe('x\ufffdy');
    expect(b!.redaction.repaired).toEqual({ lone_surrogates: 1 });
    expect(env.sinkLines.map((lines) => lines.map((l) => l.wellFormed === true))).toEqual([[true], [false]]);
  });

  it('takes gzip bodies in both encodings, and traces sent as JSON', async () => {
    const env = await startEnv();
    const a = await post(env, '/v1/traces', gzipSync(tracesPb([toolSpan(0)])), { ...PB, 'content-encoding': 'gzip' });
    const b = await post(env, '/v1/traces', gzipSync(JSON.stringify(tracesJson([toolSpan(1, 'search')]))), { ...JSON_CT, 'content-encoding': 'gzip' });
    const c = await post(env, '/v1/logs?x=1', gzipSync(T.logsReq.encode(T.logsReq.fromObject(withIdBytes(logsJson(1)) as Rec)).finish()), {
      ...PB,
      'content-encoding': 'x-gzip',
    });
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(JSON.parse(b.body.toString())).toEqual({});
    expect(records(env).map((x) => x.tool?.name ?? x.event_type)).toEqual(['lookup', 'search', 'gen_ai.user.message']);
  });

  it('answers an empty request 200 without committing anything', async () => {
    const env = await startEnv();
    const a = await post(env, '/v1/traces', Buffer.alloc(0), PB);
    const b = await post(env, '/v1/traces', JSON.stringify({ resourceSpans: [] }), JSON_CT);
    const c = await post(env, '/v1/logs', JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [] }] }] }), JSON_CT);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    expect(T.traceRes.decode(a.body).toJSON()).toEqual({});
    expect(env.sinkLines).toHaveLength(0);
    nothingStored(env);
  });

  it('reports items ingest quarantined as a partial success, naming reasons and counts, never values', async () => {
    const env = await startEnv({ maxBodyBytes: 8 * 1024 * 1024 });
    // an attribute that makes its span's record larger than a record may be: record_too_large for that span only
    const secret = `SECRET-${'x'.repeat(1_100_000)}`;
    const huge = (i: number): Record<string, unknown> => span(i, [str('gen_ai.operation.name', 'execute_tool'), str('gen_ai.tool.name', 'lookup'), str('blob', secret)]);
    const body = tracesPb([toolSpan(0), huge(1), chatSpan(2)]);
    const r = await post(env, '/v1/traces', body, PB);
    expect(r.status).toBe(200);
    const res = T.traceRes.toObject(T.traceRes.decode(r.body), PLAIN);
    expect(res.partialSuccess.rejectedSpans).toBe('1');
    expect(res.partialSuccess.errorMessage).toBe('1 of 3 spans quarantined by sealtrail: record_too_large ×1 (first: span 1)');
    expect(records(env).map((x) => x.event_type)).toEqual(['tool_invoked', 'model_called']);
    const q = quarantine(env);
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ source: 'otel', path: 'POST /v1/traces', file_key: `otlp:${r.headers['x-request-id']}`, offset: 1, reason: 'record_too_large' });
    // the refused span is named by its place in the request
    expect(q[0]!.field).toBe('resourceSpans[0].scopeSpans[0].spans[1]');
    expect(q[0]!.message).not.toContain('SECRET');

    const j = await post(env, '/v1/traces', JSON.stringify(tracesJson([huge(3)])), JSON_CT);
    expect(j.status).toBe(200);
    expect(JSON.parse(j.body.toString())).toEqual({
      partialSuccess: { rejectedSpans: '1', errorMessage: '1 of 1 spans quarantined by sealtrail: record_too_large ×1 (first: span 0)' },
    });
    expect(env.summaries.at(-1)).toMatchObject({ status: 200, items: 1, accepted: 0, rejected: 1 });
  });
});

describe('otlp source: refusals', () => {
  it('refuses an undecodable body 400 with a Status in the request encoding, and quarantines the refusal only', async () => {
    const env = await startEnv();
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const r = await post(env, '/v1/traces', garbage, PB);
    expect(r.status).toBe(400);
    const st = pbStatus(r);
    expect(st.code).toBe(3);
    expect(st.message).toMatch(/^format_mismatch: /);
    expect(env.buffer.stats().records).toBe(0);
    const q = quarantine(env);
    const fileKey = `otlp:${r.headers['x-request-id']}`;
    expect(q).toEqual([{ source: 'otel', path: 'POST /v1/traces', file_key: fileKey, offset: 0, length: garbage.length, reason: 'format_mismatch', message: expect.any(String), field: null }]);

    const j = await post(env, '/v1/logs', '{"resourceLogs": 5}', JSON_CT);
    expect(j.status).toBe(400);
    const js = jsonStatus(j);
    expect(js.code).toBe(3);
    expect(js.message).toMatch(/^format_mismatch: .*resourceLogs/);
    expect(quarantine(env).map((x) => [x.path, x.reason, x.length])).toEqual([
      ['POST /v1/traces', 'format_mismatch', garbage.length],
      ['POST /v1/logs', 'format_mismatch', 19],
    ]);
  });

  it('refuses a request whose last span cannot be mapped whole, though the spans before it were already being stored', async () => {
    const env = await startEnv();
    const ok = await post(env, '/v1/traces', tracesPb([toolSpan(0)]), PB);
    expect(ok.status).toBe(200);
    // Spans are mapped 64 at a time as ingest reaches them: the 256 of the first
    // four batches are turned into records before the batch holding the 300th,
    // whose span id is 2 bytes, refuses the request.
    const spans = Array.from({ length: 300 }, (_, i) => toolSpan(i + 1));
    const body = Buffer.from(
      T.traceReq.encode(T.traceReq.fromObject(withIdBytes(tracesJson(spans)) as Record<string, unknown>)).finish(),
    );
    const bad = T.traceReq.decode(body) as unknown as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ spanId: Uint8Array }> }> }> };
    bad.resourceSpans[0]!.scopeSpans[0]!.spans[299]!.spanId = Buffer.from('0102', 'hex');
    const r = await post(env, '/v1/traces', Buffer.from(T.traceReq.encode(bad as never).finish()), PB);
    expect(r.status).toBe(400);
    const st = pbStatus(r);
    expect(st.code).toBe(3);
    expect(st.message).toBe('format_mismatch: resourceSpans[0].scopeSpans[0].spans[299].spanId: expected 8 bytes or none');
    // nothing of it stored; the chain goes on from the record before it
    expect(env.buffer.stats().records).toBe(1);
    expect(quarantine(env).map((x) => [x.reason, x.field, x.offset])).toEqual([['format_mismatch', null, 0]]);
    expect(env.sinkLines[1]).toHaveLength(256);
    // an input refusal, not a server fault
    expect(env.errors).toEqual([]);
    expect(env.summaries.at(-1)).toMatchObject({ status: 400, code: 'format_mismatch', items: 0, accepted: 0, rejected: 0 });
    const next = await post(env, '/v1/traces', tracesPb([toolSpan(400)]), PB);
    expect(next.status).toBe(200);
    expect(records(env).map((x) => x.seq)).toEqual([records(env)[0]!.seq, records(env)[0]!.seq + 1]);
  });

  it('refuses more than maxItems spans 400 otlp_too_many_items, storing none of them', async () => {
    const env = await startEnv({ maxItems: 2 });
    const r = await post(env, '/v1/traces', tracesPb([toolSpan(0), toolSpan(1), toolSpan(2)]), PB);
    expect(r.status).toBe(400);
    expect(pbStatus(r).message).toBe('otlp_too_many_items: more than 2 spans in one request');
    expect(env.buffer.stats().records).toBe(0);
    expect(quarantine(env).map((x) => x.reason)).toEqual(['otlp_too_many_items']);
    // exactly the limit is fine
    expect((await post(env, '/v1/traces', tracesPb([toolSpan(0), toolSpan(1)]), PB)).status).toBe(200);
    expect(env.buffer.stats().records).toBe(2);
  });

  it('refuses a body over maxBodyBytes 413, by its Content-Length or while reading it', async () => {
    const env = await startEnv({ maxBodyBytes: 4096 });
    const big = tracesPb(Array.from({ length: 60 }, (_, i) => toolSpan(i)));
    expect(big.length).toBeGreaterThan(4096);
    const r = await post(env, '/v1/traces', big, PB);
    expect(r.status).toBe(413);
    expect(pbStatus(r).message).toMatch(/^body_too_large: the body is over the 4096-byte limit/);
    // chunked: no Content-Length, found while reading
    const chunked = await request(`${env.url}/v1/traces`, {
      method: 'POST',
      headers: PB,
      body: Readable.from([big.subarray(0, 3000), big.subarray(3000)]),
    });
    expect(chunked.statusCode).toBe(413);
    await chunked.body.arrayBuffer();
    expect(env.buffer.stats().records).toBe(0);
    // refused by its Content-Length alone: answered, not quarantined (no byte of it was read);
    // refused while reading: quarantined with the bytes received when the limit was passed
    expect(quarantine(env).map((x) => [x.reason, x.length])).toEqual([['body_too_large', big.length]]);
  });

  it('answers 503 with Retry-After while paused, reads nothing, and takes the request once resumed', async () => {
    const env = await startEnv();
    env.source.pause();
    const r = await post(env, '/v1/traces', tracesPb([toolSpan(0)]), PB);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    expect(pbStatus(r)).toEqual({ code: 14, message: 'buffer_full: the local buffer is full; retry later' });
    // a malformed request is not quarantined while paused either: no sink call at all
    const bad = await post(env, '/v1/traces', Buffer.from([0xff]), PB);
    expect(bad.status).toBe(503);
    expect(env.sinkLines).toHaveLength(0);
    nothingStored(env);
    env.source.resume();
    expect((await post(env, '/v1/traces', tracesPb([toolSpan(0)]), PB)).status).toBe(200);
    expect(env.buffer.stats().records).toBe(1);
  });

  it('answers 503 + Retry-After when the commit fails, stores nothing, and logs no body bytes', async () => {
    const env = await startEnv({ retryAfterSeconds: 2 });
    env.failSink = 1;
    const r = await post(env, '/v1/traces', tracesPb([toolSpan(0, 'CANARY-tool')]), PB);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('2');
    expect(pbStatus(r).message).toMatch(/^commit_failed: /);
    nothingStored(env);
    expect(env.errors).toHaveLength(1);
    expect(env.errors[0]!.message).not.toContain('CANARY');
    // the client's retry is stored once
    expect((await post(env, '/v1/traces', tracesPb([toolSpan(0, 'CANARY-tool')]), PB)).status).toBe(200);
    expect(env.buffer.stats().records).toBe(1);
    expect(JSON.stringify(env.summaries)).not.toContain('CANARY');
  });

  it('answers 503 shutting_down from the moment drain() is called, and closes the port on close()', async () => {
    const env = await startEnv();
    expect(env.source.ready).toBe(true);
    await env.source.drain(Date.now() + 1000);
    const r = await post(env, '/v1/logs', JSON.stringify(logsJson(1)), JSON_CT);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(jsonStatus(r)).toEqual({ code: 14, message: 'shutting_down: the sidecar is shutting down; retry against its replacement' });
    nothingStored(env);
    await env.source.close();
    expect(env.source.ready).toBe(false);
    await expect(request(`${env.url}/v1/logs`, { method: 'POST', headers: JSON_CT, body: '{}' })).rejects.toThrow();
  });

  it('bounds the requests held at once: past maxInFlight, 503 busy with Retry-After', async () => {
    const env = await startEnv({ maxInFlight: 1 });
    const body = tracesPb([toolSpan(0)]);
    const slow = rawConnect(env.url);
    slow.socket.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${body.length}\r\n\r\n`);
    slow.socket.write(body.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 150));
    expect(env.summaries).toHaveLength(0);
    const busy = await post(env, '/v1/traces', body, PB);
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(pbStatus(busy).message).toBe('busy: 1 requests are already being read; retry later');
    slow.socket.write(body.subarray(5));
    await slow.waitFor(/HTTP\/1\.1 200/);
    slow.stop();
    expect(env.buffer.stats().records).toBe(1);
    expect((await post(env, '/v1/traces', body, PB)).status).toBe(200);
  });

  it('refuses other paths, methods, media types and codings without storing anything', async () => {
    const env = await startEnv();
    const body = tracesPb([toolSpan(0)]);
    const metrics = await post(env, '/v1/metrics', body, PB);
    expect(metrics.status).toBe(404);
    expect(pbStatus(metrics)).toEqual({ code: 5, message: 'not_found: the OTLP receiver serves /v1/traces and /v1/logs only' });
    const get = await request(`${env.url}/v1/traces`, { method: 'GET' });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe('POST');
    await get.body.arrayBuffer();
    const text = await post(env, '/v1/traces', body, { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(jsonStatus(text).message).toMatch(/^content_type_unsupported: /);
    const latin1 = await post(env, '/v1/traces', '{}', { 'content-type': 'application/json; charset=iso-8859-1' });
    expect(latin1.status).toBe(415);
    const br = await post(env, '/v1/traces', body, { ...PB, 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect(br.headers['accept-encoding']).toBe('gzip');
    expect(pbStatus(br).message).toMatch(/^content_encoding_unsupported: /);
    nothingStored(env);
    expect(env.sinkLines).toHaveLength(0);
  });
});

describe('otlp source: lifecycle and options', () => {
  it('fails to start on a port in use with a typed listen_failed error naming the source and address', async () => {
    const env = await startEnv();
    const listen = `127.0.0.1:${env.source.port}`;
    const second = new OtlpSource({ id: 'second', listen, maxBodyBytes: 1024, maxItems: 10, http: { ...DEFAULT_HTTP_LIMITS }, sink: () => [] });
    const err = await second.start().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SealtrailError);
    expect((err as SealtrailError).code).toBe('listen_failed');
    expect((err as Error).message).toMatch(new RegExp(`^otlp source second: cannot listen on ${listen}: .*EADDRINUSE`));
    expect(second.ready).toBe(false);
    await second.close();
    // the first still answers
    expect((await post(env, '/v1/traces', tracesPb([toolSpan(0)]), PB)).status).toBe(200);
  });

  it('refuses bad options in the constructor and a second start', async () => {
    const base = { id: 'o', listen: '127.0.0.1:0', maxBodyBytes: 1024, maxItems: 10, http: { ...DEFAULT_HTTP_LIMITS }, sink: () => [] };
    expect(codeOf(() => new OtlpSource({ ...base, listen: 'nowhere' }))).toBe('source_config_invalid');
    expect(codeOf(() => new OtlpSource({ ...base, maxItems: 0 }))).toBe('source_config_invalid');
    expect(codeOf(() => new OtlpSource({ ...base, maxBodyBytes: 1.5 }))).toBe('source_config_invalid');
    expect(codeOf(() => new OtlpSource({ ...base, http: { ...DEFAULT_HTTP_LIMITS, header_timeout: 5 } }))).toBe('source_config_invalid');
    const env = await startEnv();
    await expect(env.source.start()).rejects.toMatchObject({ code: 'source_state' });
  });
});
