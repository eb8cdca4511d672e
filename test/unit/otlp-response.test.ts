import { JsonLogsSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { encodeOtlpResponse, encodeOtlpStatus } from '../../src/sidecar/formats/otlp/index.js';
import { ROOT } from '../helpers/procs.js';

/**
 * The answers an OTLP/HTTP receiver sends, read back by the OpenTelemetry JS
 * SDK's own response deserializers and by the vendored definitions.
 */
const root = new protobuf.Root();
root.resolvePath = (_o, target) => join(ROOT, 'proto', target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
const TraceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const enc = new TextEncoder();

describe('encodeOtlpResponse and encodeOtlpStatus', () => {
  it('answers full success with an empty message, as the SDK expects', () => {
    const bytes = encodeOtlpResponse('traces', 0, '', 'protobuf') as Uint8Array;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(bytes.length).toBe(0);
    expect(ProtobufTraceSerializer.deserializeResponse(bytes)).toEqual({});
    expect(encodeOtlpResponse('logs', 0, '', 'json')).toBe('{}');
  });

  it('answers a partial success the SDK deserializers read back', () => {
    const traces = encodeOtlpResponse('traces', 3, '3 spans refused: record_invalid', 'protobuf') as Uint8Array;
    expect(ProtobufTraceSerializer.deserializeResponse(traces)).toEqual({ partialSuccess: { rejectedSpans: 3, errorMessage: '3 spans refused: record_invalid' } });
    expect(TraceResponse.toObject(TraceResponse.decode(traces), { longs: Number })).toEqual({ partialSuccess: { rejectedSpans: 3, errorMessage: '3 spans refused: record_invalid' } });
    const logs = encodeOtlpResponse('logs', 2, 'two', 'protobuf') as Uint8Array;
    expect(ProtobufLogsSerializer.deserializeResponse(logs)).toEqual({ partialSuccess: { rejectedLogRecords: 2, errorMessage: 'two' } });
    const text = encodeOtlpResponse('logs', 2, 'two', 'json') as string;
    expect(JSON.parse(text)).toEqual({ partialSuccess: { rejectedLogRecords: '2', errorMessage: 'two' } });
    expect(JsonLogsSerializer.deserializeResponse(enc.encode(text))).toEqual({ partialSuccess: { rejectedLogRecords: '2', errorMessage: 'two' } });
    expect(JSON.parse(encodeOtlpResponse('traces', 0, 'warning: clock skew', 'json') as string)).toEqual({ partialSuccess: { errorMessage: 'warning: clock skew' } });
  });

  it('encodes google.rpc.Status in both encodings', () => {
    const Status = protobuf.parse('syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; }').root.lookupType('google.rpc.Status');
    const bytes = encodeOtlpStatus(3, 'resourceSpans[0]: expected an object', 'protobuf') as Uint8Array;
    expect(Status.toObject(Status.decode(bytes))).toEqual({ code: 3, message: 'resourceSpans[0]: expected an object' });
    expect(JSON.parse(encodeOtlpStatus(8, 'slow down', 'json') as string)).toEqual({ code: 8, message: 'slow down' });
  });

  it('refuses a negative or fractional count', () => {
    expect(() => encodeOtlpResponse('traces', -1, '', 'json')).toThrow(RangeError);
    expect(() => encodeOtlpResponse('traces', 1.5, '', 'json')).toThrow(RangeError);
    expect(() => encodeOtlpStatus(2 ** 40, '', 'json')).toThrow(RangeError);
  });
});
