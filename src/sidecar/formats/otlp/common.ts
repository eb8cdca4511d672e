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
import { attributeList, attributesObject, isLong, isPlainObject, type Attribute } from './any-value.js';
import { isZero, nanosFromDecimal, nanosFromNumber, nanosFromWords, type Nanos } from './nanos.js';
import { ID_BYTES, mismatch } from './json-input.js';

const HEX = /^(?:[0-9a-fA-F]{2}){1,32}$/;
const DECIMAL = /^\d{1,20}$/;
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

/**
 * An id as lowercase hex; empty means absent. A decoded message holds
 * bytes, which must have the id's length (OTLP: 16 and 8); the OTLP/JSON
 * form holds hex of at most 32 bytes.
 */
export function idAt(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  // protobufjs's default for unset bytes is an empty array, not a Uint8Array
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (v instanceof Uint8Array) {
    if (v.length === 0) return undefined;
    const length = ID_BYTES.get(key);
    if (length !== undefined && v.length !== length) throw mismatch(`${path}.${key}`, `expected ${length} bytes or none`);
    // protobufjs's BufferReader hands out Buffers: no second view needed
    return (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)).toString('hex');
  }
  const s = stringAt(o, key, path);
  if (s === undefined) return undefined;
  if (!HEX.test(s)) throw mismatch(`${path}.${key}`, 'expected hexadecimal digits');
  return s.toLowerCase();
}

/** A *UnixNano member; 0 (unset) -> undefined. */
export function nanosAt(o: Record<string, unknown>, key: string, path: string): Nanos | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  let t: Nanos | undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) t = nanosFromNumber(v);
  else if (typeof v === 'string' && DECIMAL.test(v)) {
    t = nanosFromDecimal(v);
    if (t === undefined) throw mismatch(`${path}.${key}`, 'out of range for a 64-bit timestamp');
  } else if (isLong(v)) t = nanosFromWords(v.low, v.high);
  else throw mismatch(`${path}.${key}`, 'expected nanoseconds since the epoch (a non-negative integer)');
  return isZero(t) ? undefined : t;
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
