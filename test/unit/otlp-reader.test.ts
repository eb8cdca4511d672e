import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { decodeOtlpRequest, otlpEvents } from '../../src/sidecar/formats/otlp/index.js';
import { jsonToProtoObject } from '../../src/sidecar/formats/otlp/json-input.js';
import { otlpTypes } from '../../src/sidecar/formats/otlp/proto.js';
import { readerOf } from '../../src/sidecar/formats/otlp/reader.js';
import { decodeBody, OtlpRefusal } from '../../src/sidecar/sources/otlp-request.js';
import { thrown } from '../helpers/errors.js';
import { ROOT } from '../helpers/procs.js';

/** The vendored definitions, loaded here independently of the module under test. */
const root = new protobuf.Root();
root.resolvePath = (_o, target) => join(ROOT, 'proto', target);
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto']);
const TraceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

const STRINGS = [
  '',
  'a',
  'gen_ai.operation.name',
  'x'.repeat(63),
  'y'.repeat(64),
  'z'.repeat(5000),
  'caf\u00e9 na\u00efve',
  '\u{1f600} emoji and \u4e2d\u6587',
  '\ufeffleading byte order mark',
  'tab\tnewline\nquote"backslash\\',
  '\u0000nul and \u007f',
  '\u0080\u07ff\u0800\uffff',
];

function requestWith(names: readonly string[]): Uint8Array {
  const spans = names.map((name, i) => ({
    traceId: Buffer.from(TRACE, 'hex'),
    spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex'),
    name,
    attributes: [{ key: name, value: { stringValue: name } }],
  }));
  return TraceRequest.encode(TraceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans }] }] })).finish();
}

describe('the receiver reader (flat strings)', () => {
  it('reads every string as protobufjs own reader does', () => {
    const body = requestWith(STRINGS);
    const ours = TraceRequest.decode(readerOf(body)).toJSON();
    const theirs = TraceRequest.decode(body).toJSON();
    expect(ours).toEqual(theirs);
    const events = otlpEvents('traces', decodeOtlpRequest('traces', body, 'protobuf'));
    expect(events.map((e) => (e.event.details as Record<string, unknown>).span_name ?? '')).toEqual(STRINGS);
  });

  it('reads a Uint8Array that is not a Buffer, at an offset, without copying it', () => {
    const body = requestWith(STRINGS);
    const padded = new Uint8Array(body.length + 7);
    padded.set(body, 7);
    const view = padded.subarray(7);
    expect(Buffer.isBuffer(view)).toBe(false);
    expect(otlpEvents('traces', decodeOtlpRequest('traces', view, 'protobuf'))).toEqual(otlpEvents('traces', decodeOtlpRequest('traces', body, 'protobuf')));
  });

  it.each([
    ['an overlong encoding', [0xc0, 0x80]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['a lone continuation byte', [0x80]],
    ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('refuses %s in a string field, short or long', (_what, bad) => {
    for (const length of [8, 100]) {
      const marker = 'M'.repeat(length);
      const body = Buffer.from(requestWith([marker]));
      const at = body.indexOf(marker);
      body.set(bad, at + 2);
      const err = thrown(() => decodeOtlpRequest('traces', body, 'protobuf'), InputError);
      expect(err.code).toBe('format_mismatch');
      expect(err.message).toMatch(/a string is not valid UTF-8/);
      // protobufjs's own strict reader refuses the same bytes
      expect(() => TraceRequest.decode(body)).toThrow();
    }
  });

  it('refuses a string whose length runs past the body as truncated', () => {
    const body = Buffer.from(requestWith(['a name that will be cut short']));
    const err = thrown(() => decodeOtlpRequest('traces', body.subarray(0, body.length - 5), 'protobuf'), InputError);
    expect(err.message).toMatch(/truncated/);
  });
});

describe('decodeBody: items mapped ahead of ingest in batches', () => {
  it('yields every span once, in order, across batch boundaries', () => {
    const names = Array.from({ length: 200 }, (_, i) => `span-${i}`);
    const lines = [...decodeBody('traces', requestWith(names), 'protobuf', 1000).lines];
    expect(lines.map((l) => l.offset)).toEqual(names.map((_, i) => i));
    expect(lines.map((l) => ((l.value as Record<string, unknown>).details as Record<string, unknown>).span_name)).toEqual(names);
    expect(lines.every((l) => l.wellFormed === true && l.path === `resourceSpans[0].scopeSpans[0].spans[${l.offset}]`)).toBe(true);
  });

  it('refuses the request whole when a span past the first batch cannot be mapped', () => {
    const spans = Array.from({ length: 150 }, (_, i) => ({ traceId: Buffer.from(TRACE, 'hex'), spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex'), name: `s${i}` }));
    // protobuf has no id lengths: only the mapping can tell
    spans[130]!.spanId = Buffer.from('0102030405', 'hex');
    const body = TraceRequest.encode(TraceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans }] }] })).finish();
    const decoded = decodeBody('traces', body, 'protobuf', 1000);
    expect(decoded.count).toBe(150);
    const err = thrown(() => [...decoded.lines], OtlpRefusal);
    expect(err.code).toBe('format_mismatch');
    expect(err.message).toContain('resourceSpans[0].scopeSpans[0].spans[130].spanId');
  });
});

describe('the oneof setter installed at load', () => {
  it('keeps the last member of a oneof the wire sets twice, as protobufjs does', () => {
    const { anyValue } = otlpTypes();
    const str = anyValue.encode(anyValue.fromObject({ stringValue: 'first' })).finish();
    const int = anyValue.encode(anyValue.fromObject({ intValue: 5 })).finish();
    const twice = Buffer.concat([str, int]);
    const m = anyValue.decode(readerOf(twice)) as unknown as Record<string, unknown>;
    expect(Object.keys(m)).toEqual(['intValue']);
    expect(m.value).toBe('intValue');
    const back = anyValue.decode(readerOf(Buffer.concat([int, str]))) as unknown as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(['stringValue']);
    expect(back.value).toBe('stringValue');
  });

  it('clears the other members when one is set on a message built by hand', () => {
    const { anyValue } = otlpTypes();
    const m = anyValue.fromObject({ stringValue: 'x' }) as unknown as Record<string, unknown>;
    m.boolValue = true;
    m.value = 'boolValue';
    expect(Object.keys(m)).toEqual(['boolValue']);
    m.value = undefined;
    expect(Object.keys(m)).toEqual([]);
  });
});

describe('OTLP/JSON checked in place', () => {
  const traceType = (): protobuf.Type => otlpTypes().traceRequest;
  const canonical = (): Record<string, unknown> => ({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{ scope: { name: 'lib' }, spans: [{ traceId: TRACE, spanId: '00f067aa0ba902b7', name: 'op', kind: 1, startTimeUnixNano: '1700000000000000000' }] }],
      },
    ],
  });

  it('returns a request already in the OTLP/JSON form itself, unchanged', () => {
    const value = canonical();
    const before = structuredClone(value);
    expect(jsonToProtoObject(traceType(), value)).toBe(value);
    expect(value).toEqual(before);
  });

  it('copies only the objects on the way to a member it converts, leaving the input as it was', () => {
    const value = canonical();
    const rs = (value.resourceSpans as Array<Record<string, unknown>>)[0]!;
    const span = ((rs.scopeSpans as Array<Record<string, unknown>>)[0]!.spans as Array<Record<string, unknown>>)[0]!;
    span.end_time_unix_nano = 1700000000001;
    span.unknownMember = 'ignored';
    const before = structuredClone(value);
    const out = jsonToProtoObject(traceType(), value) as typeof value;
    expect(value).toEqual(before);
    const outRs = (out.resourceSpans as Array<Record<string, unknown>>)[0]!;
    expect(outRs).not.toBe(rs);
    // the resource, untouched, is shared
    expect(outRs.resource).toBe(rs.resource);
    const outSpan = ((outRs.scopeSpans as Array<Record<string, unknown>>)[0]!.spans as Array<Record<string, unknown>>)[0]!;
    expect(outSpan).toEqual({ traceId: TRACE, spanId: '00f067aa0ba902b7', name: 'op', kind: 1, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000001' });
  });

  it.each([
    ['the lowerCamelCase name first', { startTimeUnixNano: '1', start_time_unix_nano: '2' }, 'start_time_unix_nano'],
    ['the snake_case name first', { start_time_unix_nano: '2', startTimeUnixNano: '1' }, 'startTimeUnixNano'],
  ])('refuses a member given twice, %s', (_what, members, second) => {
    const value = { resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'op', ...members }] }] }] };
    const err = thrown(() => jsonToProtoObject(traceType(), value), InputError);
    expect(err.field).toBe(`resourceSpans[0].scopeSpans[0].spans[0].${second}`);
    expect(err.message).toMatch(/given twice/);
  });
});
