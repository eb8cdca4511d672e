/**
 * The OTLP/JSON form of an export request: what otlpEvents takes from a
 * caller that builds a request by hand (a benchmark, a test):
 * lowerCamelCase member names, trace and span ids as lowercase hex, 64-bit
 * integers as decimal strings or numbers, enums as numbers, bytes as
 * base64. Requests from the wire reach otlpEvents as decodeOtlpRequest
 * returns them (OtlpDecoded) instead.
 */

/**
 * What decodeOtlpRequest returns and otlpEvents reads: a protobufjs message
 * or a checked OTLP/JSON object, not meant to be read member by member.
 */
export type OtlpDecoded = object;

/** A 64-bit integer: a decimal string (as decoded) or a number. */
export type OtlpInt64 = string | number;

export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: OtlpInt64;
  /** a number, or "NaN" / "Infinity" / "-Infinity" as protobuf's JSON mapping writes them */
  doubleValue?: number | string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  /** base64 */
  bytesValue?: string;
}

export interface OtlpKeyValue {
  key?: string;
  value?: OtlpAnyValue;
}

export interface OtlpEntityRef {
  schemaUrl?: string;
  type?: string;
  idKeys?: string[];
  descriptionKeys?: string[];
}

export interface OtlpResource {
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  entityRefs?: OtlpEntityRef[];
}

export interface OtlpScope {
  name?: string;
  version?: string;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
}

export interface OtlpSpanEvent {
  timeUnixNano?: OtlpInt64;
  name?: string;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
}

export interface OtlpSpanLink {
  traceId?: string;
  spanId?: string;
  traceState?: string;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  flags?: number;
}

export interface OtlpSpan {
  traceId?: string;
  spanId?: string;
  traceState?: string;
  parentSpanId?: string;
  flags?: number;
  name?: string;
  kind?: number;
  startTimeUnixNano?: OtlpInt64;
  endTimeUnixNano?: OtlpInt64;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  events?: OtlpSpanEvent[];
  droppedEventsCount?: number;
  links?: OtlpSpanLink[];
  droppedLinksCount?: number;
  status?: { message?: string; code?: number };
}

export interface OtlpScopeSpans {
  scope?: OtlpScope;
  spans?: OtlpSpan[];
  schemaUrl?: string;
}

export interface OtlpResourceSpans {
  resource?: OtlpResource;
  scopeSpans?: OtlpScopeSpans[];
  schemaUrl?: string;
}

export interface OtlpLogRecord {
  timeUnixNano?: OtlpInt64;
  observedTimeUnixNano?: OtlpInt64;
  severityNumber?: number;
  severityText?: string;
  body?: OtlpAnyValue;
  attributes?: OtlpKeyValue[];
  droppedAttributesCount?: number;
  flags?: number;
  traceId?: string;
  spanId?: string;
  eventName?: string;
}

export interface OtlpScopeLogs {
  scope?: OtlpScope;
  logRecords?: OtlpLogRecord[];
  schemaUrl?: string;
}

export interface OtlpResourceLogs {
  resource?: OtlpResource;
  scopeLogs?: OtlpScopeLogs[];
  schemaUrl?: string;
}

/** ExportTraceServiceRequest */
export interface OtlpTracesRequest {
  resourceSpans?: OtlpResourceSpans[];
}

/** ExportLogsServiceRequest */
export interface OtlpLogsRequest {
  resourceLogs?: OtlpResourceLogs[];
}

export type OtlpRequest = OtlpTracesRequest | OtlpLogsRequest;

export type OtlpSignal = 'traces' | 'logs';
export type OtlpEncoding = 'protobuf' | 'json';

/** The deepest AnyValue nesting (arrays and kvlists inside one another) a request may hold. */
export const MAX_ANY_DEPTH = 64;
