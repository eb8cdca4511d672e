import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import {
  JsonLogsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { decodeOtlpRequest, noSurrogateEscapes, otlpEvents } from '../../src/sidecar/formats/otlp/index.js';
import { thrown } from '../helpers/errors.js';
import { ROOT } from '../helpers/procs.js';

/** The vendored definitions, loaded here independently of the module under test. */
const root = new protobuf.Root();
root.resolvePath = (_o, target) => join(ROOT, 'proto', target);
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/logs/v1/logs_service.proto']);
const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const LogsRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');

const enc = new TextEncoder();
const CANARY = 'CANARY-secret-7f3e';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

function json(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** protobuf bytes built from a plain object by the vendored definitions; ids as bytes. */
function pb(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  const saved = protobuf.util.recursionLimit;
  protobuf.util.recursionLimit = 100_000;
  try {
    return type.encode(type.fromObject(value)).finish();
  } finally {
    protobuf.util.recursionLimit = saved;
  }
}

function refuse(fn: () => unknown): InputError {
  const err = thrown(fn, InputError);
  expect(err.message).not.toContain(CANARY);
  expect(err.field ?? '').not.toContain(CANARY);
  return err;
}

/** A traces JSON request with one span holding `attributes`. */
function spanRequest(span: Record<string, unknown>): Record<string, unknown> {
  return { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: TRACE, spanId: SPAN, name: 'op', ...span }] }] }] };
}

/** An AnyValue nesting `levels` kvlists (levels = 1: a plain string). */
function nestedKvlist(levels: number): Record<string, unknown> {
  let v: Record<string, unknown> = { stringValue: CANARY };
  for (let i = 1; i < levels; i++) v = { kvlistValue: { values: [{ key: 'k', value: v }] } };
  return v;
}

function deepPath(prefix: string, levels: number): string {
  return prefix + '.kvlistValue.values[0].value'.repeat(levels - 1);
}

function sdkSpans() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'support-agent', 'k8s.pod.name': 'agent-0' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('agent-sdk', '3.1.0');
  const parent = tracer.startSpan('invoke_agent helper', {
    kind: SpanKind.INTERNAL,
    startTime: [1760000000, 123456789],
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'helper' },
  });
  const ctx = trace.setSpan(context.active(), parent);
  const child = tracer.startSpan(
    'execute_tool lookup',
    {
      kind: SpanKind.CLIENT,
      startTime: [1760000001, 5],
      attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', n: 5, big: 2 ** 60, flag: false, ratio: 0.5, list: ['a', 'b'] },
      links: [{ context: parent.spanContext(), attributes: { why: 'caused' } }],
    },
    ctx,
  );
  child.addEvent('gen_ai.content.prompt', { 'gen_ai.prompt': 'hello' }, [1760000001, 7]);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
  child.end([1760000002, 0]);
  parent.end([1760000003, 0]);
  return { spans: exporter.getFinishedSpans(), parent, child };
}

describe('decodeOtlpRequest: requests the OpenTelemetry JS SDK serialised', () => {
  it('maps the SDK protobuf and OTLP/JSON encodings of the same spans to the same events', () => {
    const { spans, parent, child } = sdkSpans();
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', ProtobufTraceSerializer.serializeRequest(spans)!, 'protobuf'));
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', JsonTraceSerializer.serializeRequest(spans)!, 'json'));
    expect(fromJson).toEqual(fromPb);
    expect(fromPb.map((e) => e.path)).toEqual(['resourceSpans[0].scopeSpans[0].spans[0]', 'resourceSpans[0].scopeSpans[0].spans[1]']);

    const [c, p] = fromPb.map((e) => e.event as Record<string, unknown> & { details: Record<string, unknown> });
    expect(c!.details.resource).toEqual({ 'service.name': 'support-agent', 'k8s.pod.name': 'agent-0' });
    expect(c!.details.scope).toEqual({ name: 'agent-sdk', version: '3.1.0' });
    expect(c!.trace_id).toBe(child.spanContext().traceId);
    expect(c!.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(c!.span_id).toBe(child.spanContext().spanId);
    expect(c!.details.parent_span_id).toBe(parent.spanContext().spanId);
    expect(c!.details.span_kind).toBe('client');
    expect(c!.time).toBe('2025-10-09T08:53:21.000Z');
    expect(c!.details.start_time).toBe('2025-10-09T08:53:21.000000005Z');
    expect(c!.details.end_time).toBe('2025-10-09T08:53:22.000000000Z');
    expect(c!.details.duration).toBe('0.999999995s');
    expect(c!.outcome).toBe('error');
    expect(c!.details).toMatchObject({ status_code: 'error', status_message: 'boom' });
    expect(c!.details.attributes).toMatchObject({ big: '1152921504606846976', flag: false, ratio: 0.5 });
    expect(c!.details.events).toEqual([{ name: 'gen_ai.content.prompt', time: '2025-10-09T08:53:21.000000007Z', attributes: { 'gen_ai.prompt': 'hello' } }]);
    expect((c!.details.links as Array<Record<string, unknown>>)[0]!.span_id).toBe(parent.spanContext().spanId);
    expect(p!.details.parent_span_id).toBeUndefined();
  });

  it('maps the SDK protobuf and OTLP/JSON encodings of the same log records to the same events', async () => {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'support-agent' }),
      processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger('gen-ai-events', '1.0.0');
    logger.emit({
      eventName: 'gen_ai.client.inference.operation.details',
      timestamp: [1760000005, 250],
      observedTimestamp: [1760000005, 999],
      severityNumber: SeverityNumber.INFO,
      severityText: 'INFO',
      body: { messages: [{ role: 'user', content: 'hi' }], raw: new Uint8Array([1, 2, 255]) },
      attributes: { 'gen_ai.operation.name': 'chat', nested: { a: { b: 1 } } },
    });
    await provider.forceFlush();
    const records = exporter.getFinishedLogRecords();
    const fromPb = otlpEvents('logs', decodeOtlpRequest('logs', ProtobufLogsSerializer.serializeRequest(records)!, 'protobuf'));
    const fromJson = otlpEvents('logs', decodeOtlpRequest('logs', JsonLogsSerializer.serializeRequest(records)!, 'json'));
    expect(fromJson).toEqual(fromPb);
    const rec = fromPb[0]!.event as Record<string, unknown> & { details: Record<string, unknown> };
    expect(rec.event_type).toBe('gen_ai.client.inference.operation.details');
    expect(rec.time).toBe('2025-10-09T08:53:25.000Z');
    expect(rec.details.time).toBe('2025-10-09T08:53:25.000000250Z');
    expect(rec.details.observed_time).toBe('2025-10-09T08:53:25.000000999Z');
    expect(rec.details.severity_number).toBe(9);
    expect(rec.details.body).toMatchObject({ raw: 'AQL/' });
  });
});

describe('decodeOtlpRequest: values of every kind', () => {
  const span = {
    traceId: Buffer.from(TRACE, 'hex'),
    spanId: Buffer.from(SPAN, 'hex'),
    name: 'kinds',
    startTimeUnixNano: '18446744073709551615',
    attributes: [
      { key: 'max', value: { intValue: '9223372036854775807' } },
      { key: 'min', value: { intValue: '-9223372036854775808' } },
      { key: 'safe', value: { intValue: '-42' } },
      { key: 'nan', value: { doubleValue: Number.NaN } },
      { key: 'inf', value: { doubleValue: Number.NEGATIVE_INFINITY } },
      { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 250]) } },
      { key: 'empty', value: {} },
      { key: 'no-value' },
      { key: 'dup', value: { stringValue: 'first' } },
      { key: 'dup', value: { stringValue: 'second' } },
      { key: '__proto__', value: { kvlistValue: { values: [{ key: '__proto__', value: { boolValue: true } }] } } },
    ],
  };

  it('gives the same event for protobuf and JSON input, int64 exact, NaN and ±Infinity as text', () => {
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, { resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] }), 'protobuf'));
    const jsonSpan = {
      traceId: TRACE.toUpperCase(),
      span_id: SPAN,
      name: 'kinds',
      start_time_unix_nano: '18446744073709551615',
      attributes: [
        { key: 'max', value: { intValue: '9223372036854775807' } },
        { key: 'min', value: { int_value: '-9223372036854775808' } },
        { key: 'safe', value: { intValue: -42 } },
        { key: 'nan', value: { doubleValue: 'NaN' } },
        { key: 'inf', value: { doubleValue: '-Infinity' } },
        { key: 'bytes', value: { bytesValue: 'AAEC+g==' } },
        { key: 'empty', value: {} },
        { key: 'no-value' },
        { key: 'dup', value: { stringValue: 'first' } },
        { key: 'dup', value: { stringValue: 'second' } },
        { key: '__proto__', value: { kvlistValue: { values: [{ key: '__proto__', value: { boolValue: true } }] } } },
      ],
    };
    const text = JSON.stringify({ resource_spans: [{ scope_spans: [{ spans: [jsonSpan] }] }] });
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', enc.encode(text), 'json'));
    expect(fromJson).toEqual(fromPb);

    const event = fromPb[0]!.event;
    expect(event.time).toBe('2554-07-21T23:34:33.709Z');
    expect(event.trace_id).toBe(TRACE);
    const details = event.details as Record<string, unknown>;
    expect(details.start_time).toBe('2554-07-21T23:34:33.709551615Z');
    const attrs = details.attributes as Record<string, unknown>;
    expect(Object.getPrototypeOf(attrs)).toBe(Object.prototype);
    expect(Object.keys(attrs)).toEqual(['max', 'min', 'safe', 'nan', 'inf', 'bytes', 'empty', 'no-value', 'dup', 'dup#2', '__proto__']);
    expect(attrs.max).toBe('9223372036854775807');
    expect(attrs.min).toBe('-9223372036854775808');
    expect(attrs.safe).toBe(-42);
    expect(attrs.nan).toBe('NaN');
    expect(attrs.inf).toBe('-Infinity');
    expect(attrs.bytes).toBe('AAEC+g==');
    expect(attrs.empty).toBeNull();
    expect(attrs['no-value']).toBeNull();
    expect([attrs.dup, attrs['dup#2']]).toEqual(['first', 'second']);
    const proto = Object.getOwnPropertyDescriptor(attrs, '__proto__')!.value as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(proto, '__proto__')!.value).toBe(true);
    expect(JSON.stringify(attrs)).toContain('"__proto__":{"__proto__":true}');
  });

  it('keeps enum values OTLP does not define (enums are open) instead of refusing the span', () => {
    const body = pb(TraceRequest, {
      resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'odd', kind: -3, status: { code: 7, message: 'm' } }, { name: 'ok', kind: 42, status: { code: 1 } }] }] }],
    });
    const [odd, ok] = otlpEvents('traces', decodeOtlpRequest('traces', body, 'protobuf'));
    expect(odd!.event.outcome).toBeUndefined();
    expect(odd!.event.details).toMatchObject({ span_kind: -3, status_code: 7, status_message: 'm' });
    expect(ok!.event.outcome).toBe('success');
    expect(ok!.event.details).toMatchObject({ span_kind: 42, status_code: 'ok' });
    const logs = pb(LogsRequest, { resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityNumber: -9 }] }] }] });
    expect(otlpEvents('logs', decodeOtlpRequest('logs', logs, 'protobuf'))[0]!.event).toEqual({ event_type: 'log', details: { severity_number: -9 } });
  });

  it('reads a JSON body with a leading byte order mark, and refuses one that is not UTF-8 without quoting it', () => {
    const text = JSON.stringify(spanRequest({ attributes: [{ key: 'a', value: { stringValue: 'é' } }] }));
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(text)]);
    const [event] = otlpEvents('traces', decodeOtlpRequest('traces', withBom, 'json'));
    expect((event!.event.details as Record<string, unknown>).attributes).toEqual({ a: 'é' });
    // a lone continuation byte inside a string, and a truncated two-byte sequence at the end
    for (const bad of [enc.encode(text.replace('é', '\\u00e9')).map((b, i, all) => (i === all.indexOf(0x5c) ? 0x80 : b)), new Uint8Array([...enc.encode(text), 0xc3])]) {
      const err = refuse(() => decodeOtlpRequest('traces', bad, 'json'));
      expect(err.code).toBe('format_mismatch');
      expect(err.message).toBe('the body is not valid UTF-8');
    }
  });

  it('keeps the member read last when a protobuf AnyValue carries two (protobuf\'s rule for a oneof on the wire)', () => {
    const AnyValue = root.lookupType('opentelemetry.proto.common.v1.AnyValue');
    // built by hand, as no encoder would: a length-delimited field is tag, length, bytes
    const field = (no: number, bytes: Uint8Array): Buffer => Buffer.concat([Buffer.from([(no << 3) | 2, bytes.length]), bytes]);
    const value = Buffer.concat([AnyValue.encode({ stringValue: CANARY }).finish(), AnyValue.encode({ intValue: 5 }).finish()]);
    const kv = Buffer.concat([field(1, enc.encode('k')), field(2, value)]);
    const span = Buffer.concat([field(5, enc.encode('two')), field(9, kv)]);
    const body = field(1, field(2, field(2, span)));
    const [event] = otlpEvents('traces', decodeOtlpRequest('traces', body, 'protobuf'));
    expect((event!.event.details as Record<string, unknown>).attributes).toEqual({ k: 5 });
  });

  it('takes an empty body as an empty request', () => {
    expect(otlpEvents('traces', decodeOtlpRequest('traces', new Uint8Array(0), 'protobuf'))).toEqual([]);
    expect(otlpEvents('logs', decodeOtlpRequest('logs', enc.encode('{}'), 'json'))).toEqual([]);
    expect(otlpEvents('traces', decodeOtlpRequest('traces', enc.encode('{"resourceSpans":[{"scopeSpans":[{}]}]}'), 'json'))).toEqual([]);
  });

  it('ignores unknown members of OTLP/JSON, as receivers must', () => {
    const req = spanRequest({ someFutureField: { deep: [1, 2] }, attributes: [{ key: 'a', value: { stringValue: 'x', futureValue: 1 } }] });
    const events = otlpEvents('traces', decodeOtlpRequest('traces', json(req), 'json'));
    expect((events[0]!.event.details as Record<string, unknown>).attributes).toEqual({ a: 'x' });
  });

  it('decodes 10,000 spans in one request, in either encoding, into 10,000 events in order', () => {
    const spans = Array.from({ length: 10_000 }, (_, i) => ({
      traceId: TRACE,
      spanId: i.toString(16).padStart(16, '0'),
      name: `s${i}`,
      startTimeUnixNano: String(1_760_000_000_000_000_000n + BigInt(i) * 1_000_000n),
      attributes: [{ key: 'i', value: { intValue: i } }],
    }));
    const req = { resourceSpans: [{ scopeSpans: [{ spans }] }] };
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', json(req), 'json'));
    const asBytes = { resourceSpans: [{ scopeSpans: [{ spans: spans.map((s) => ({ ...s, traceId: Buffer.from(s.traceId, 'hex'), spanId: Buffer.from(s.spanId, 'hex') })) }] }] };
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, asBytes), 'protobuf'));
    expect(fromJson).toHaveLength(10_000);
    expect(fromPb).toEqual(fromJson);
    expect(fromJson[9_999]!.path).toBe('resourceSpans[0].scopeSpans[0].spans[9999]');
    expect(fromJson[9_999]!.event.span_id).toBe((9_999).toString(16).padStart(16, '0'));
    expect(fromJson[9_999]!.event.time).toBe('2025-10-09T08:53:29.999Z');
  });

  it('keeps lone surrogates of JSON input as they are (ingest repairs and counts them)', () => {
    const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"${TRACE}","spanId":"${SPAN}","name":"a\\ud800b","attributes":[{"key":"k\\udc00","value":{"stringValue":"\\udbff"}}]}]}]}]}`;
    const [event] = otlpEvents('traces', decodeOtlpRequest('traces', enc.encode(text), 'json'));
    const details = event!.event.details as Record<string, unknown>;
    expect(details.span_name).toBe('a\ud800b');
    expect(details.attributes).toEqual({ 'k\udc00': '\udbff' });
  });
});

describe('decodeOtlpRequest: AnyValue depth', () => {
  const PREFIX = 'resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value';

  it('takes 64 nested levels in either encoding', () => {
    const req = spanRequest({ attributes: [{ key: 'deep', value: nestedKvlist(64) }] });
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', json(req), 'json'));
    let v = (fromJson[0]!.event.details as { attributes: Record<string, unknown> }).attributes.deep;
    for (let i = 1; i < 64; i++) v = (v as Record<string, unknown>).k;
    expect(v).toBe(CANARY);
    const asBytes = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(TRACE, 'hex'), name: 'op', attributes: [{ key: 'deep', value: nestedKvlist(64) }] }] }] }] };
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, asBytes), 'protobuf'));
    expect((fromPb[0]!.event.details as Record<string, unknown>).attributes).toEqual((fromJson[0]!.event.details as Record<string, unknown>).attributes);
  });

  it('refuses 65 levels with record_invalid and the path of the 65th, in either encoding', () => {
    const req = spanRequest({ attributes: [{ key: 'deep', value: nestedKvlist(65) }] });
    const e1 = refuse(() => decodeOtlpRequest('traces', json(req), 'json'));
    expect(e1.code).toBe('record_invalid');
    expect(e1.field).toBe(deepPath(PREFIX, 65));
    const asBytes = { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'op', attributes: [{ key: 'deep', value: nestedKvlist(65) }] }] }] }] };
    // protobuf ids and depth are checked as the message is mapped (the receiver does both in one step)
    const e2 = refuse(() => otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, asBytes), 'protobuf')));
    expect(e2.code).toBe('record_invalid');
    expect(e2.field).toBe(deepPath(PREFIX, 65));
  });

  it('refuses arrays nested too deep in a log body, with the path', () => {
    let body: Record<string, unknown> = { stringValue: 'x' };
    for (let i = 1; i < 70; i++) body = { arrayValue: { values: [body] } };
    const req = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ body }] }] }] };
    const err = refuse(() => decodeOtlpRequest('logs', json(req), 'json'));
    expect(err.code).toBe('record_invalid');
    expect(err.field).toBe('resourceLogs[0].scopeLogs[0].logRecords[0].body' + '.arrayValue.values[0]'.repeat(64));
  });

  it('refuses 10,000 nested levels without a stack overflow', () => {
    // built as text: JSON.stringify itself would overflow the stack on this
    const open = '{"kvlistValue":{"values":[{"key":"k","value":'.repeat(9_999);
    const close = '}]}}'.repeat(9_999);
    const text = `{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"op","attributes":[{"key":"deep","value":${open}{"stringValue":"x"}${close}}]}]}]}]}`;
    const e1 = refuse(() => decodeOtlpRequest('traces', enc.encode(text), 'json'));
    expect(e1.code).toBe('record_invalid');
    expect(e1.field).toBe(deepPath(PREFIX, 65));
    // protobufjs's encoder recurses too, so the nesting is written a level at a time
    const W = (): protobuf.Writer => protobuf.Writer.create();
    let value = W().uint32(0x0a).string('x').finish(); // AnyValue.string_value
    for (let i = 1; i < 2_000; i++) {
      const kv = W().uint32(0x0a).string('k').uint32(0x12).bytes(value).finish(); // KeyValue{key, value}
      const list = W().uint32(0x0a).bytes(kv).finish(); // KeyValueList.values
      value = W().uint32(0x32).bytes(list).finish(); // AnyValue.kvlist_value
    }
    const attr = W().uint32(0x0a).string('deep').uint32(0x12).bytes(value).finish();
    const span = W().uint32(0x4a).bytes(attr).finish(); // Span.attributes
    const scoped = W().uint32(0x12).bytes(span).finish(); // ScopeSpans.spans
    const resource = W().uint32(0x12).bytes(scoped).finish(); // ResourceSpans.scope_spans
    const body = W().uint32(0x0a).bytes(resource).finish(); // ExportTraceServiceRequest.resource_spans
    const e2 = refuse(() => decodeOtlpRequest('traces', body, 'protobuf'));
    expect(e2.code).toBe('record_invalid');
    expect(e2.field).toBe('');
  });
});

describe('decodeOtlpRequest: refusals name the member by path and quote nothing', () => {
  const S = 'resourceSpans[0].scopeSpans[0].spans[0]';
  const cases: Array<[string, unknown, string]> = [
    ['a JSON array', [1, 2], ''],
    ['a JSON string', CANARY, ''],
    ['null', null, ''],
    ['resourceSpans an object', { resourceSpans: { a: CANARY } }, 'resourceSpans'],
    ['spans not an array', { resourceSpans: [{ scopeSpans: [{ spans: CANARY }] }] }, 'resourceSpans[0].scopeSpans[0].spans'],
    ['a span a string', { resourceSpans: [{ scopeSpans: [{ spans: [CANARY] }] }] }, `${S}`],
    ['a null span', { resourceSpans: [{ scopeSpans: [{ spans: [null] }] }] }, `${S}`],
    ['traceId not hex', spanRequest({ traceId: `${CANARY}${'x'.repeat(32 - CANARY.length)}` }), `${S}.traceId`],
    ['traceId too short', spanRequest({ traceId: 'abcd' }), `${S}.traceId`],
    ['traceId base64 instead of hex', spanRequest({ traceId: Buffer.from(TRACE, 'hex').toString('base64') }), `${S}.traceId`],
    ['spanId a number', spanRequest({ spanId: 12345 }), `${S}.spanId`],
    ['parentSpanId of 16 bytes', spanRequest({ parentSpanId: TRACE }), `${S}.parentSpanId`],
    ['name an object', spanRequest({ name: { CANARY } }), `${S}.name`],
    ['startTimeUnixNano text', spanRequest({ startTimeUnixNano: CANARY }), `${S}.startTimeUnixNano`],
    ['startTimeUnixNano negative', spanRequest({ startTimeUnixNano: '-1' }), `${S}.startTimeUnixNano`],
    ['startTimeUnixNano past 2^64', spanRequest({ startTimeUnixNano: '18446744073709551616' }), `${S}.startTimeUnixNano`],
    ['startTimeUnixNano a fraction', spanRequest({ startTimeUnixNano: 1.5 }), `${S}.startTimeUnixNano`],
    ['kind an unknown name', spanRequest({ kind: CANARY }), `${S}.kind`],
    ['kind a fraction', spanRequest({ kind: 1.5 }), `${S}.kind`],
    ['flags negative', spanRequest({ flags: -1 }), `${S}.flags`],
    ['status a string', spanRequest({ status: CANARY }), `${S}.status`],
    ['attributes an object', spanRequest({ attributes: { k: CANARY } }), `${S}.attributes`],
    ['an attribute key a number', spanRequest({ attributes: [{ key: 7, value: { stringValue: CANARY } }] }), `${S}.attributes[0].key`],
    ['stringValue a number', spanRequest({ attributes: [{ key: 'k', value: { stringValue: 5 } }] }), `${S}.attributes[0].value.stringValue`],
    ['boolValue a string', spanRequest({ attributes: [{ key: 'k', value: { boolValue: 'true' } }] }), `${S}.attributes[0].value.boolValue`],
    ['intValue a fraction', spanRequest({ attributes: [{ key: 'k', value: { intValue: 1.25 } }] }), `${S}.attributes[0].value.intValue`],
    ['intValue past int64', spanRequest({ attributes: [{ key: 'k', value: { intValue: '9223372036854775808' } }] }), `${S}.attributes[0].value.intValue`],
    ['doubleValue text', spanRequest({ attributes: [{ key: 'k', value: { doubleValue: CANARY } }] }), `${S}.attributes[0].value.doubleValue`],
    ['bytesValue not base64', spanRequest({ attributes: [{ key: 'k', value: { bytesValue: `${CANARY}!` } }] }), `${S}.attributes[0].value.bytesValue`],
    ['two AnyValue members', spanRequest({ attributes: [{ key: 'k', value: { stringValue: CANARY, intValue: 1 } }] }), `${S}.attributes[0].value.intValue`],
    ['arrayValue.values an object', spanRequest({ attributes: [{ key: 'k', value: { arrayValue: { values: { a: 1 } } } }] }), `${S}.attributes[0].value.arrayValue.values`],
    ['a null array element', spanRequest({ attributes: [{ key: 'k', value: { arrayValue: { values: [null] } } }] }), `${S}.attributes[0].value.arrayValue.values[0]`],
    ['a member twice under both names', spanRequest({ startTimeUnixNano: '1', start_time_unix_nano: '2' }), `${S}.start_time_unix_nano`],
    ['a logs request sent as traces', { resourceLogs: [] }, 'resourceLogs'],
  ];
  for (const [name, value, field] of cases) {
    it(`refuses ${name} with format_mismatch at "${field}"`, () => {
      const err = refuse(() => decodeOtlpRequest('traces', json(value), 'json'));
      expect(err.code).toBe('format_mismatch');
      expect(err.field).toBe(field);
      if (field) expect(err.message).toContain(field);
    });
  }

  it('refuses a JSON body that is not JSON, or not UTF-8', () => {
    for (const body of [enc.encode(`{"resourceSpans":[${CANARY}`), new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), new Uint8Array(0)]) {
      const err = refuse(() => decodeOtlpRequest('traces', body, 'json'));
      expect(err.code).toBe('format_mismatch');
      expect(err.field).toBe('');
    }
  });

  it('refuses protobuf bytes that are not a request, truncated, or with invalid UTF-8', () => {
    const { spans } = sdkSpans();
    const good = ProtobufTraceSerializer.serializeRequest(spans)!;
    const garbage = enc.encode(`${CANARY}, not protobuf`);
    const truncated = good.slice(0, good.length - 7);
    const badWire = new Uint8Array([0x2f, 0x01]); // field 5 with wire type 7
    const named = pb(TraceRequest, { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'AAAA' }] }] }] });
    const at = Buffer.from(named).indexOf('AAAA');
    const badUtf8 = Uint8Array.from(named);
    badUtf8.set([0xed, 0xa0, 0x80, 0x41], at); // a UTF-16 surrogate written as UTF-8
    for (const [body, why] of [
      [garbage, /not a protobuf ExportTraceServiceRequest/],
      [truncated, /truncated/],
      [badWire, /wire type/],
      [badUtf8, /UTF-8/],
    ] as const) {
      const err = refuse(() => decodeOtlpRequest('traces', body, 'protobuf'));
      expect(err.code).toBe('format_mismatch');
      expect(err.field).toBe('');
      expect(err.message).toMatch(why);
    }
  });

  it('refuses protobuf ids of the wrong length with their path', () => {
    const body = pb(TraceRequest, {
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(TRACE, 'hex'), spanId: Buffer.from('0102', 'hex') }] }] }],
    });
    const err = refuse(() => otlpEvents('traces', decodeOtlpRequest('traces', body, 'protobuf')));
    expect(err.code).toBe('format_mismatch');
    expect(err.field).toBe('resourceSpans[0].scopeSpans[0].spans[0].spanId');
    expect(err.message).toContain('expected 8 bytes or none');
    const logs = pb(LogsRequest, { resourceLogs: [{ scopeLogs: [{ logRecords: [{ traceId: Buffer.alloc(15, 1) }] }] }] });
    expect(refuse(() => otlpEvents('logs', decodeOtlpRequest('logs', logs, 'protobuf'))).field).toBe('resourceLogs[0].scopeLogs[0].logRecords[0].traceId');
  });
});

describe('noSurrogateEscapes: when ingest may skip the walk for lone surrogates in a JSON body', () => {
  const body = (text: string): Buffer => Buffer.from(text, 'utf8');
  it.each([
    ['no escape at all', '{"a":"plain é 😀"}', true],
    ['escapes of other characters', '{"a":"\\u00e9\\u0041\\n\\u2028\\uD7FF\\ue000"}', true],
    ['a backslash-u at the very end', '{"a":"x"}\\u', true],
    ['a lone high surrogate', '{"a":"\\ud800"}', false],
    ['a lone low surrogate, upper case', '{"a":"\\uDFFF"}', false],
    ['a surrogate pair (well-formed, but only a walk can tell)', '{"a":"\\uD83D\\uDE00"}', false],
    ['an escaped backslash before "ud800" (text, not an escape: a needless walk, never a miss)', '{"a":"\\\\ud800"}', false],
  ])('%s', (_name, text, expected) => {
    expect(noSurrogateEscapes(body(text))).toBe(expected);
    // what the answer promises: true only when JSON.parse makes no lone surrogate
    if (expected) expect(JSON.stringify(JSON.parse(text.endsWith('\\u') ? text.slice(0, -2) : text))).not.toMatch(/\\ud[89a-f]/i);
  });
  it('reads a body that is a view into a larger buffer by its own bytes only', () => {
    const whole = body('{"a":"\\ud800"}{"b":"ok"}');
    expect(noSurrogateEscapes(whole.subarray(0, 13))).toBe(false);
    expect(noSurrogateEscapes(whole.subarray(14))).toBe(true);
  });
});

describe('decodeOtlpRequest: 64-bit integers in JSON read as protobuf carries them', () => {
  // decimal strings and numbers near every limit of the quick path (no BigInt) and past it
  const ints: Array<string | number> = [
    '0', '7', '007', '-0', '-7', '999999999999999999', '-999999999999999999', '1000000000000000000', '-1000000000000000000',
    '9223372036854775807', '-9223372036854775808', 9007199254740991, -9007199254740991, 0, 42,
  ];
  const times: Array<string | number> = ['1', '0001', '9999999999999999999', '10000000000000000000', '18446744073709551615', 1_760_000_000_123_456, '1760000000123456789'];

  it.each(ints.map((v) => [v]))('intValue %j', (v) => {
    const attrs = [{ key: 'n', value: { intValue: v } }];
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', json(spanRequest({ traceId: TRACE, spanId: SPAN, attributes: attrs })), 'json'));
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, spanRequest({ traceId: Buffer.from(TRACE, 'hex'), spanId: Buffer.from(SPAN, 'hex'), attributes: [{ key: 'n', value: { intValue: String(v) } }] })), 'protobuf'));
    expect(fromJson).toEqual(fromPb);
    expect(JSON.stringify(fromJson[0]!.event)).toContain(`"n":${typeof v === 'number' || /^-?0*\d{1,15}$/.test(v) ? String(BigInt(v)) : `"${BigInt(v)}"`}`);
  });

  it.each(times.map((v) => [v]))('startTimeUnixNano %j', (v) => {
    const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', json(spanRequest({ traceId: TRACE, spanId: SPAN, startTimeUnixNano: v })), 'json'));
    const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', pb(TraceRequest, spanRequest({ traceId: Buffer.from(TRACE, 'hex'), spanId: Buffer.from(SPAN, 'hex'), startTimeUnixNano: String(v) })), 'protobuf'));
    expect(fromJson).toEqual(fromPb);
  });

  it('refuses what is out of range, by path, whichever path reads it', () => {
    for (const v of ['-1', -1, '18446744073709551616', '99999999999999999999']) {
      const err = refuse(() => decodeOtlpRequest('traces', json(spanRequest({ traceId: TRACE, spanId: SPAN, startTimeUnixNano: v })), 'json'));
      expect(err.field).toBe('resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano');
    }
    for (const v of ['9223372036854775808', '-9223372036854775809']) {
      const err = refuse(() => decodeOtlpRequest('traces', json(spanRequest({ traceId: TRACE, spanId: SPAN, attributes: [{ key: 'n', value: { intValue: v } }] })), 'json'));
      expect(err.field).toBe('resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue');
    }
  });

  it('reads ids in upper-case hex as the same ids', () => {
    const upper = otlpEvents('traces', decodeOtlpRequest('traces', json(spanRequest({ traceId: TRACE.toUpperCase(), spanId: SPAN.toUpperCase() })), 'json'));
    expect(upper[0]!.event).toMatchObject({ trace_id: TRACE, span_id: SPAN });
  });
});
