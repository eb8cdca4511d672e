/**
 * OpenTelemetry in: OTLP/HTTP request bodies (protobuf or JSON) and
 * OTLP/JSON file lines decoded, and their spans and log records mapped to
 * sealtrail events following the GenAI semantic conventions (docs/otlp.md).
 * Pure apart from reading the vendored .proto files once (proto.ts).
 */
export { decodeOtlpRequest, encodeOtlpResponse, encodeOtlpStatus, noSurrogateEscapes } from './decode.js';
export { countOtlpItems, otlpEvents, otlpEventStream } from './events.js';
export { looksLikeOtlpJson, otlpJsonFormat } from './line-format.js';
export { MAX_ANY_DEPTH } from './types.js';
export type { OtlpEncoding, OtlpRequest, OtlpSignal, OtlpLogsRequest, OtlpTracesRequest } from './types.js';
