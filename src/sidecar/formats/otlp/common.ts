/**
 * What spans and log records share when they become events: reading the
 * members of the OTLP/JSON form (a member of the wrong type is a request
 * shape error, format_mismatch by path), timestamps, ids, and the
 * resource and scope every event carries in its details.
 *
 * The resource and scope details are built once per scope list and shared
 * by its events: copying them into every span made memory grow with
 * attributes × spans, so a small request with thousands of resource
 * attributes could exhaust it. Sharing is safe because nothing downstream
 * mutates an event's members (redaction returns new objects where it
 * changes something; normalisation copies references into a new event).
 * OTLP's defaults (empty strings, zero counts, empty lists) are left out.
 */
import { attributeList, attributesObject, isPlainObject, type Attribute } from './any-value.js';
import { mismatch } from './json-input.js';

const HEX = /^(?:[0-9a-fA-F]{2}){1,32}$/;
const DECIMAL = /^\d{1,20}$/;
const NS_PER_MS = 1_000_000n;
const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

/** Sets o[key] unless the value is absent or one of OTLP's empty defaults. */
export function put(o: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined || value === '' || value === 0) return;
  if (Array.isArray(value) && value.length === 0) return;
  if (isPlainObject(value) && Object.keys(value).length === 0) return;
  o[key] = value;
}

export function objectAt(o: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw mismatch(`${path}.${key}`, 'expected an object');
  return v;
}

export function arrayAt(o: Record<string, unknown>, key: string, path: string): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw mismatch(`${path}.${key}`, 'expected an array');
  return v;
}

export function stringAt(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw mismatch(`${path}.${key}`, 'expected a string');
  return v;
}

/**
 * An integer member (count, flags, enum); 0 (unset) -> undefined. Negative
 * values pass: OTLP's enums are open, so a decoded request may carry any
 * int32 there, and an unknown value is kept rather than refused.
 */
export function intAt(o: Record<string, unknown>, key: string, path: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === 0) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw mismatch(`${path}.${key}`, 'expected an integer');
  return v;
}

/** An id as lowercase hex (at most 32 bytes; OTLP's are 16 and 8); empty means absent. */
export function idAt(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = stringAt(o, key, path);
  if (v === undefined) return undefined;
  if (!HEX.test(v)) throw mismatch(`${path}.${key}`, 'expected hexadecimal digits');
  return v.toLowerCase();
}

/** A *UnixNano member as a bigint; 0 (unset) -> undefined. */
export function nanosAt(o: Record<string, unknown>, key: string, path: string): bigint | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  let n: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) n = BigInt(v);
  else if (typeof v === 'string' && DECIMAL.test(v)) n = BigInt(v);
  else throw mismatch(`${path}.${key}`, 'expected nanoseconds since the epoch (a non-negative integer)');
  if (n >= 2n ** 64n) throw mismatch(`${path}.${key}`, 'out of range for a 64-bit timestamp');
  return n === 0n ? undefined : n;
}

/**
 * RFC 3339 UTC with milliseconds (what the record keeps); the nanoseconds
 * stay in details. Any fixed64 falls before the year 2555, so this always
 * yields a time the record accepts.
 */
export function rfc3339(nanos: bigint): string {
  return new Date(Number(nanos / NS_PER_MS)).toISOString();
}

/**
 * RFC 3339 UTC with all nine digits: how details keep OTLP's nanoseconds.
 * Not a bare decimal string: redaction rules read 10- to 19-digit strings
 * as phone or card numbers and would redact a timestamp.
 */
export function rfc3339Nanos(nanos: bigint): string {
  const ms = rfc3339(nanos);
  return `${ms.slice(0, -4)}${(nanos % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

/**
 * A duration as protobuf's JSON form of google.protobuf.Duration: seconds
 * with nine decimals and an "s" ("8.876543211s"), exact at any length. Not
 * a number: redaction rules read numbers as text too, and a 10-digit count
 * of nanoseconds looks like a phone number.
 */
export function durationText(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}s`;
}

export function spanKindName(kind: number): string | number {
  return SPAN_KINDS[kind] ?? kind;
}

/** One resource or scope, read once and turned into fresh details for each event. */
export interface Envelope {
  resource: Record<string, unknown> | undefined;
  resourcePath: string;
  resourceSchemaUrl: string | undefined;
  scope: Record<string, unknown> | undefined;
  scopePath: string;
  scopeSchemaUrl: string | undefined;
  /** the resource's attributes, for mappings that look at them (tenant.id) */
  resourceAttributes: Attribute[];
  /** envelopeDetails' result, built on first use */
  details?: Record<string, unknown>;
}

export function envelope(
  container: Record<string, unknown>,
  containerPath: string,
  scoped: Record<string, unknown>,
  scopedPath: string,
): Envelope {
  const resource = objectAt(container, 'resource', containerPath);
  const resourcePath = `${containerPath}.resource`;
  return {
    resource,
    resourcePath,
    resourceSchemaUrl: stringAt(container, 'schemaUrl', containerPath),
    scope: objectAt(scoped, 'scope', scopedPath),
    scopePath: `${scopedPath}.scope`,
    scopeSchemaUrl: stringAt(scoped, 'schemaUrl', scopedPath),
    resourceAttributes: resource ? attributeList(resource.attributes, `${resourcePath}.attributes`) : [],
  };
}

/** details.resource (its attributes), details.scope and their kin: built once per envelope, shared by its events. */
export function envelopeDetails(env: Envelope, details: Record<string, unknown>): void {
  const shared = (env.details ??= buildEnvelopeDetails(env));
  for (const k of Object.keys(shared)) details[k] = shared[k];
}

function buildEnvelopeDetails(env: Envelope): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  const r = env.resource;
  if (r) {
    put(details, 'resource', attributesObject(attributeList(r.attributes, `${env.resourcePath}.attributes`)));
    put(details, 'resource_dropped_attributes_count', intAt(r, 'droppedAttributesCount', env.resourcePath));
    const refs = arrayAt(r, 'entityRefs', env.resourcePath).map((ref, i) => entityRef(ref, `${env.resourcePath}.entityRefs[${i}]`));
    put(details, 'resource_entity_refs', refs);
  }
  put(details, 'resource_schema_url', env.resourceSchemaUrl);
  const s = env.scope;
  const scope: Record<string, unknown> = {};
  if (s) {
    put(scope, 'name', stringAt(s, 'name', env.scopePath));
    put(scope, 'version', stringAt(s, 'version', env.scopePath));
    put(scope, 'attributes', attributesObject(attributeList(s.attributes, `${env.scopePath}.attributes`)));
    put(scope, 'dropped_attributes_count', intAt(s, 'droppedAttributesCount', env.scopePath));
  }
  put(scope, 'schema_url', env.scopeSchemaUrl);
  put(details, 'scope', scope);
  return details;
}

function entityRef(ref: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(ref)) throw mismatch(path, 'expected an object');
  const out: Record<string, unknown> = {};
  put(out, 'type', stringAt(ref, 'type', path));
  put(out, 'id_keys', stringList(ref, 'idKeys', path));
  put(out, 'description_keys', stringList(ref, 'descriptionKeys', path));
  put(out, 'schema_url', stringAt(ref, 'schemaUrl', path));
  return out;
}

function stringList(o: Record<string, unknown>, key: string, path: string): string[] {
  return arrayAt(o, key, path).map((v, i) => {
    if (typeof v !== 'string') throw mismatch(`${path}.${key}[${i}]`, 'expected a string');
    return v;
  });
}
