/**
 * OTLP request bodies in, OTLP answers out (OTLP/HTTP, both encodings).
 *
 * A protobuf body is decoded by the reflected type into a protobufjs
 * message (read by reader.ts, which makes its strings flat); an OTLP/JSON body is checked member by member against the same
 * type (json-input), which keeps ids as hex. Either result
 * goes straight to otlpEvents, which reads both (any-value.ts says how) and
 * checks what the wire format cannot: id lengths and AnyValue depth, each
 * reported by path. So a request is held to the same rules whichever
 * encoding carried it. (Converting the message to the OTLP/JSON form first
 * cost a third of the receiver's decoding time for nothing.)
 *
 * A protobuf error names no member (the decoder knows only offsets), so it
 * is reported for the body as a whole, in words of our own: protobufjs's
 * messages are not passed on.
 */
import { isUtf8 } from 'node:buffer';
import type { Type } from 'protobufjs';
import { InputError } from '../../../core/errors.js';
import { jsonToProtoObject, mismatch } from './json-input.js';
import { otlpTypes } from './proto.js';
import { readerOf } from './reader.js';
import { MAX_ANY_DEPTH, type OtlpDecoded, type OtlpEncoding, type OtlpSignal } from './types.js';

function requestType(signal: OtlpSignal): Type {
  const t = otlpTypes();
  return signal === 'traces' ? t.traceRequest : t.logsRequest;
}

function requestName(signal: OtlpSignal): string {
  return signal === 'traces' ? 'ExportTraceServiceRequest' : 'ExportLogsServiceRequest';
}

/** A request body -> what otlpEvents reads; throws InputError (format_mismatch, record_invalid) for a body that is not one. */
export function decodeOtlpRequest(signal: OtlpSignal, body: Uint8Array, encoding: OtlpEncoding): OtlpDecoded {
  const type = requestType(signal);
  if (encoding === 'protobuf') return decodeProtobuf(type, signal, body);
  const value = parseJsonBody(body);
  refuseOtherSignal(signal, value);
  return jsonToProtoObject(type, value);
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

/** An already parsed OTLP/JSON request (a file line), as decodeOtlpRequest returns it. */
export function otlpJsonRequest(signal: OtlpSignal, value: unknown): OtlpDecoded {
  return jsonToProtoObject(requestType(signal), value);
}

function decodeProtobuf(type: Type, signal: OtlpSignal, body: Uint8Array): OtlpDecoded {
  try {
    return type.decode(readerOf(body));
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

const BACKSLASH_U = Buffer.from('\\u');

/**
 * Whether JSON.parse can make no lone surrogate of this body, which is
 * strict UTF-8: such a string comes only from a \uD800–\uDFFF escape,
 * as UTF-8 cannot encode a surrogate. An escaped backslash before a "u"
 * (`\\uD800` as text) also counts as an escape here: that costs ingest a
 * walk of the strings, never a missed repair.
 */
export function noSurrogateEscapes(body: Uint8Array): boolean {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  for (let i = buf.indexOf(BACKSLASH_U); i !== -1; i = buf.indexOf(BACKSLASH_U, i + 2)) {
    const d = buf[i + 2];
    const x = buf[i + 3];
    if ((d === 0x64 || d === 0x44) && x !== undefined && ((x >= 0x38 && x <= 0x39) || (x >= 0x61 && x <= 0x66) || (x >= 0x41 && x <= 0x46))) return false;
  }
  return true;
}

/**
 * The body as text, strictly UTF-8, a leading byte order mark dropped (as
 * TextDecoder would). isUtf8 and Buffer#toString run at memory speed; a
 * fatal TextDecoder took a tenth of decoding a JSON request.
 */
function parseJsonBody(body: Uint8Array): unknown {
  if (!isUtf8(body)) throw new InputError('format_mismatch', 'the body is not valid UTF-8', '');
  const bom = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const text = Buffer.from(body.buffer, body.byteOffset + bom, body.byteLength - bom).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new InputError('format_mismatch', 'the body is not valid JSON', '');
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
