/**
 * OTLP request bodies in, OTLP answers out (OTLP/HTTP, both encodings).
 *
 * Both encodings meet in one protobufjs message: protobuf bytes are decoded
 * by the reflected type, OTLP/JSON is checked member by member (json-input)
 * and built with fromObject. The message then becomes the OTLP/JSON form
 * (types.ts) through toObject, and one walk over that form turns ids into
 * hex and checks what the wire format cannot: id lengths and AnyValue
 * depth, each reported by path. So a request is held to the same rules
 * whichever encoding carried it.
 *
 * A protobuf error names no member (the decoder knows only offsets), so it
 * is reported for the body as a whole, in words of our own: protobufjs's
 * messages are not passed on.
 */
import type { Message, Type } from 'protobufjs';
import { InputError } from '../../../core/errors.js';
import { ID_BYTES, jsonToProtoObject, mismatch, tooDeep } from './json-input.js';
import { otlpTypes } from './proto.js';
import {
  MAX_ANY_DEPTH,
  type OtlpAnyValue,
  type OtlpEncoding,
  type OtlpKeyValue,
  type OtlpLogsRequest,
  type OtlpRequest,
  type OtlpSignal,
  type OtlpTracesRequest,
} from './types.js';

const TO_FORM = { longs: String, enums: Number, bytes: String, json: true } as const;

function requestType(signal: OtlpSignal): Type {
  const t = otlpTypes();
  return signal === 'traces' ? t.traceRequest : t.logsRequest;
}

function requestName(signal: OtlpSignal): string {
  return signal === 'traces' ? 'ExportTraceServiceRequest' : 'ExportLogsServiceRequest';
}

export function decodeOtlpRequest(signal: OtlpSignal, body: Uint8Array, encoding: OtlpEncoding): OtlpRequest {
  const type = requestType(signal);
  if (encoding === 'protobuf') return messageToForm(signal, type, decodeProtobuf(type, signal, body));
  const value = parseJsonBody(body);
  refuseOtherSignal(signal, value);
  return messageToForm(signal, type, messageFromJson(type, value));
}

/**
 * Unknown members are ignored, but a JSON request carrying the other
 * signal's list was sent to the wrong endpoint: taking it as an empty
 * request would drop its records unseen. (In protobuf both lists are field
 * 1, so nothing tells them apart there.)
 */
function refuseOtherSignal(signal: OtlpSignal, value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  const other = signal === 'traces' ? ['resourceLogs', 'resource_logs'] : ['resourceSpans', 'resource_spans'];
  for (const name of other) {
    if (Array.isArray((value as Record<string, unknown>)[name])) {
      throw mismatch(name, `belongs to an OTLP ${signal === 'traces' ? 'logs' : 'traces'} request, not a ${requestName(signal)}`);
    }
  }
}

/** An already parsed OTLP/JSON request (a file line) in the form decodeOtlpRequest returns. */
export function otlpJsonToForm(signal: OtlpSignal, value: unknown): OtlpRequest {
  const type = requestType(signal);
  return messageToForm(signal, type, messageFromJson(type, value));
}

function decodeProtobuf(type: Type, signal: OtlpSignal, body: Uint8Array): Message {
  try {
    return type.decode(body);
  } catch (err) {
    const text = err instanceof Error ? err.message : '';
    if (/max depth/.test(text)) {
      throw new InputError('record_invalid', `the body nests messages too deeply (AnyValue nesting is limited to ${MAX_ANY_DEPTH} levels)`, '');
    }
    const why = /index out of range/.test(text)
      ? 'it ends inside a field (truncated?)'
      : /wire type|illegal tag|group/.test(text)
        ? 'a field has an invalid wire type or tag'
        : /utf-?8/i.test(text)
          ? 'a string is not valid UTF-8'
          : 'it cannot be decoded';
    throw new InputError('format_mismatch', `the body is not a protobuf ${requestName(signal)}: ${why}`, '');
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function parseJsonBody(body: Uint8Array): unknown {
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new InputError('format_mismatch', 'the body is not valid UTF-8', '');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError('format_mismatch', 'the body is not valid JSON', '');
  }
}

function messageFromJson(type: Type, value: unknown): Message {
  const plain = jsonToProtoObject(type, value);
  try {
    return type.fromObject(plain);
  } catch {
    // jsonToProtoObject has checked every member fromObject reads; this is a safety net.
    throw new InputError('format_mismatch', `the request is not a valid ${type.name}`, '');
  }
}

function messageToForm(signal: OtlpSignal, type: Type, message: Message): OtlpRequest {
  const form = type.toObject(message, TO_FORM);
  if (signal === 'traces') walkTraces(form as OtlpTracesRequest);
  else walkLogs(form as OtlpLogsRequest);
  return form as OtlpRequest;
}

function walkTraces(req: OtlpTracesRequest): void {
  req.resourceSpans?.forEach((rs, i) => {
    const rp = `resourceSpans[${i}]`;
    checkAttributes(rs.resource?.attributes, `${rp}.resource.attributes`);
    rs.scopeSpans?.forEach((ss, j) => {
      const sp = `${rp}.scopeSpans[${j}]`;
      checkAttributes(ss.scope?.attributes, `${sp}.scope.attributes`);
      ss.spans?.forEach((span, k) => {
        const p = `${sp}.spans[${k}]`;
        hexIds(span as Record<string, unknown>, p);
        checkAttributes(span.attributes, `${p}.attributes`);
        span.events?.forEach((ev, e) => checkAttributes(ev.attributes, `${p}.events[${e}].attributes`));
        span.links?.forEach((link, l) => {
          hexIds(link as Record<string, unknown>, `${p}.links[${l}]`);
          checkAttributes(link.attributes, `${p}.links[${l}].attributes`);
        });
      });
    });
  });
}

function walkLogs(req: OtlpLogsRequest): void {
  req.resourceLogs?.forEach((rl, i) => {
    const rp = `resourceLogs[${i}]`;
    checkAttributes(rl.resource?.attributes, `${rp}.resource.attributes`);
    rl.scopeLogs?.forEach((sl, j) => {
      const sp = `${rp}.scopeLogs[${j}]`;
      checkAttributes(sl.scope?.attributes, `${sp}.scope.attributes`);
      sl.logRecords?.forEach((rec, k) => {
        const p = `${sp}.logRecords[${k}]`;
        hexIds(rec as Record<string, unknown>, p);
        if (rec.body) checkAnyValue(rec.body, `${p}.body`, 1);
        checkAttributes(rec.attributes, `${p}.attributes`);
      });
    });
  });
}

/** toObject wrote ids as base64; OTLP/JSON and sealtrail write them as lowercase hex. */
function hexIds(o: Record<string, unknown>, path: string): void {
  for (const [name, length] of ID_BYTES) {
    const v = o[name];
    if (typeof v !== 'string') continue;
    const raw = Buffer.from(v, 'base64');
    if (raw.length === 0) {
      delete o[name];
      continue;
    }
    if (raw.length !== length) throw mismatch(`${path}.${name}`, `expected ${length} bytes or none`);
    o[name] = raw.toString('hex');
  }
}

function checkAttributes(list: OtlpKeyValue[] | undefined, path: string): void {
  if (!list) return;
  for (let i = 0; i < list.length; i++) {
    const value = list[i]!.value;
    if (value) checkAnyValue(value, `${path}[${i}].value`, 1);
  }
}

function checkAnyValue(v: OtlpAnyValue, path: string, depth: number): void {
  if (depth > MAX_ANY_DEPTH) throw tooDeep(path);
  const items = v.arrayValue?.values;
  if (items) for (let i = 0; i < items.length; i++) checkAnyValue(items[i]!, `${path}.arrayValue.values[${i}]`, depth + 1);
  const pairs = v.kvlistValue?.values;
  if (pairs) {
    for (let i = 0; i < pairs.length; i++) {
      const inner = pairs[i]!.value;
      if (inner) checkAnyValue(inner, `${path}.kvlistValue.values[${i}].value`, depth + 1);
    }
  }
}

/**
 * ExportTraceServiceResponse / ExportLogsServiceResponse. partialSuccess is
 * left out when nothing was rejected and there is no message (OTLP: an
 * empty partial_success means full success); a message with 0 rejected is
 * sent, as OTLP allows for warnings.
 */
export function encodeOtlpResponse(signal: OtlpSignal, rejected: number, errorMessage: string, encoding: OtlpEncoding): Uint8Array | string {
  if (!Number.isSafeInteger(rejected) || rejected < 0) throw new RangeError('rejected must be a non-negative integer');
  const t = otlpTypes();
  const type = signal === 'traces' ? t.traceResponse : t.logsResponse;
  const plain: Record<string, unknown> = {};
  if (rejected > 0 || errorMessage !== '') {
    plain.partialSuccess = signal === 'traces' ? { rejectedSpans: rejected, errorMessage } : { rejectedLogRecords: rejected, errorMessage };
  }
  return encode(type, plain, encoding);
}

/** google.rpc.Status, the body of an OTLP/HTTP 4xx/5xx answer. */
export function encodeOtlpStatus(code: number, message: string, encoding: OtlpEncoding): Uint8Array | string {
  if (!Number.isInteger(code) || code < -(2 ** 31) || code >= 2 ** 31) throw new RangeError('code must be a 32-bit integer');
  return encode(otlpTypes().status, { code, message }, encoding);
}

function encode(type: Type, plain: Record<string, unknown>, encoding: OtlpEncoding): Uint8Array | string {
  const message = type.fromObject(plain);
  if (encoding === 'protobuf') return type.encode(message).finish();
  // protobuf's JSON mapping: defaults left out, int64 as a decimal string
  return JSON.stringify(type.toObject(message, { longs: String, enums: Number, json: true }));
}
