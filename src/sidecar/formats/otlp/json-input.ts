/**
 * Checks an OTLP/JSON request against the reflected message types and turns
 * it into the form otlpEvents reads, which also reads what protobufjs
 * decodes from protobuf input, so both encodings meet the same mapping and
 * checks. Every member of the wrong type is refused by its path
 * (InputError format_mismatch), and no value is ever quoted. Paths are
 * built only for a request that fails: it is walked a second time.
 *
 * OTLP/JSON rules (opentelemetry-proto's JSON encoding): member names in
 * lowerCamelCase, protobuf's own snake_case names accepted too; traceId,
 * spanId and parentSpanId as hex (16 and 8 bytes, or empty); other bytes as
 * base64; 64-bit integers as numbers or decimal strings; enums as integers
 * (their names are accepted too); null as absent; unknown members ignored,
 * as receivers must. AnyValue nesting deeper than MAX_ANY_DEPTH is
 * record_invalid, checked before anything recurses that deep.
 */
import protobuf from 'protobufjs';
import type { Field, Type } from 'protobufjs';
import { InputError } from '../../../core/errors.js';
import { MAX_ANY_DEPTH } from './types.js';
import { isPlainObject } from '../../../core/plain-object.js';

/** Hex id members and their byte lengths; the same names in Span, Span.Link and LogRecord. */
export const ID_BYTES: ReadonlyMap<string, number> = new Map([
  ['traceId', 16],
  ['spanId', 8],
  ['parentSpanId', 8],
]);

const ANY_VALUE = '.opentelemetry.proto.common.v1.AnyValue';
const DECIMAL = /^-?\d{1,20}$/;
const FLOAT = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

const INT_RANGE: Record<string, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

export function mismatch(path: string, what: string): InputError {
  return new InputError('format_mismatch', path ? `${path}: ${what}` : what, path);
}

export function tooDeep(path: string): InputError {
  return new InputError('record_invalid', `${path}: AnyValue nested deeper than ${MAX_ANY_DEPTH} levels`, path);
}

/**
 * Where a member is, or undefined on the first pass: a valid request (the
 * usual one) is walked without building a path for every member, and one
 * that fails is walked again with paths, to name the member at fault.
 */
type Place = string | undefined;

/** Thrown on the first pass in place of the InputError the second pass gives. */
const UNPLACED: unique symbol = Symbol('unplaced');

function fail(path: Place, what: string): never {
  if (path === undefined) throw UNPLACED;
  throw mismatch(path, what);
}

function member(path: Place, key: string): Place {
  return path === undefined ? undefined : path ? `${path}.${key}` : key;
}

function element(path: Place, i: number): Place {
  return path === undefined ? undefined : `${path}[${i}]`;
}

interface TypeInfo {
  /** member name (camelCase and snake_case) -> field */
  fields: Map<string, Field>;
  /** AnyValue, whose nesting is limited; read once: Type#fullName is rebuilt on every read */
  isAnyValue: boolean;
}

const infos = new WeakMap<Type, TypeInfo>();

function infoOf(type: Type): TypeInfo {
  let info = infos.get(type);
  if (!info) {
    const fields = new Map<string, Field>();
    for (const f of type.fieldsArray) {
      fields.set(f.name, f);
      fields.set(f.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), f);
    }
    info = { fields, isAnyValue: type.fullName === ANY_VALUE };
    infos.set(type, info);
  }
  return info;
}

/**
 * The request in the form otlpEvents reads (ids as hex, 64-bit integers as
 * decimal strings, other bytes decoded), sharing what is in that form
 * already with `value` (which is left as it was); throws InputError naming
 * the first member that is wrong.
 */
export function jsonToProtoObject(type: Type, value: unknown): Record<string, unknown> {
  try {
    return message(type, value, undefined, 0);
  } catch (err) {
    if (err !== UNPLACED) throw err;
  }
  // the same walk, deterministic, now naming places: it throws where the first failed
  message(type, value, '', 0);
  throw mismatch('', 'the request could not be read');
}

/**
 * A message in the form otlpEvents reads. Copied only where the form
 * differs (a snake_case name, a member dropped or converted); otherwise the
 * parsed object itself is returned, checked: a request already in the
 * OTLP/JSON form (the usual one) then costs no second tree.
 */
function message(type: Type, value: unknown, path: Place, anyDepth: number): Record<string, unknown> {
  if (!isPlainObject(value)) fail(path, `expected an object (${type.name})`);
  let depth = anyDepth;
  const { fields, isAnyValue } = infoOf(type);
  if (isAnyValue && ++depth > MAX_ANY_DEPTH) {
    if (path === undefined) throw UNPLACED;
    throw tooDeep(path);
  }
  /** the copy, made at the first member that differs; until then every member is kept as it is */
  let out: Record<string, unknown> | undefined;
  let oneofMember: string | undefined;
  const keys = Object.keys(value);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const field = fields.get(key);
    const v = value[key];
    if (!field || v === null || v === undefined) {
      out ??= copyOf(value, keys, k);
      continue;
    }
    const p = member(path, key);
    // a renamed member is copied; only one can meet another member of the same field
    if (out === undefined && field.name !== key) out = copyOf(value, keys, k);
    if (out !== undefined && Object.hasOwn(out, field.name)) fail(p, `given twice (as ${field.name} and by its snake_case name)`);
    if (field.partOf) {
      if (oneofMember !== undefined) fail(p, `only one of ${field.partOf.oneof.join(', ')} may be set`);
      oneofMember = field.name;
    }
    const converted = field.repeated ? repeated(field, v, p, depth) : single(field, v, p, depth);
    if (out === undefined && converted !== v) out = copyOf(value, keys, k);
    if (out !== undefined) out[field.name] = converted;
  }
  return out ?? value;
}

/** The members before keys[end], all kept as they are, in a new object. */
function copyOf(value: Record<string, unknown>, keys: readonly string[], end: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let k = 0; k < end; k++) out[keys[k]!] = value[keys[k]!];
  return out;
}

function repeated(field: Field, value: unknown, path: Place, depth: number): unknown[] {
  if (!Array.isArray(value)) fail(path, 'expected an array');
  let out: unknown[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const p = element(path, i);
    const v: unknown = value[i];
    if (v === null || v === undefined) fail(p, 'expected a value, not null');
    const converted = single(field, v, p, depth);
    if (out === undefined && converted !== v) out = value.slice(0, i);
    if (out !== undefined) out.push(converted);
  }
  return out ?? value;
}

function single(field: Field, value: unknown, path: Place, depth: number): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return message(resolved, value, path, depth);
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string' && Object.hasOwn(resolved.values, value)) return resolved.values[value];
    if (typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) return value;
    fail(path, `expected an integer (${resolved.name})`);
  }
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') fail(path, 'expected a string');
      return value;
    case 'bool':
      if (typeof value !== 'boolean') fail(path, 'expected true or false');
      return value;
    case 'double':
    case 'float':
      return float(value, path);
    case 'bytes':
      return bytes(field, value, path);
    default: {
      const range = INT_RANGE[field.type];
      if (!range) fail(path, `unsupported type ${field.type}`);
      // 64-bit values as decimal strings (exact), smaller ones as numbers
      return field.long ? (quickLong(value, field.type) ?? integer(value, path, range).toString()) : Number(integer(value, path, range));
    }
  }
}

/** Decimals below 10^18 (signed) or 10^19 (unsigned), written without leading zeros: within range, and already as integer() would write them. */
const SIGNED_64 = /^(?:0|-?[1-9]\d{0,17})$/;
const UNSIGNED_64 = /^(?:0|[1-9]\d{0,18})$/;

/** A 64-bit value that is surely in range, as its decimal string, without BigInt (a span has two timestamps); else undefined. */
function quickLong(value: unknown, type: string): string | undefined {
  const unsigned = type === 'uint64' || type === 'fixed64';
  if (typeof value === 'number') return Number.isSafeInteger(value) && (!unsigned || value >= 0) ? String(value) : undefined;
  if (typeof value === 'string' && (unsigned ? UNSIGNED_64 : SIGNED_64).test(value)) return value;
  return undefined;
}

function integer(value: unknown, path: Place, [min, max]: readonly [bigint, bigint]): bigint {
  let n: bigint;
  if (typeof value === 'number' && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && DECIMAL.test(value)) n = BigInt(value);
  else fail(path, 'expected an integer (a number or a decimal string)');
  if (n < min || n > max) fail(path, `integer out of range ${min}..${max}`);
  return n;
}

function float(value: unknown, path: Place): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return Number.NaN;
    if (value === 'Infinity') return Number.POSITIVE_INFINITY;
    if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
    if (value.length <= 64 && FLOAT.test(value)) return Number(value);
  }
  return fail(path, 'expected a number');
}

/** Ids stay hex (otlpEvents writes them as lowercase hex either way); other bytes are decoded. */
function bytes(field: Field, value: unknown, path: Place): Uint8Array | string {
  if (typeof value !== 'string') fail(path, 'expected a string');
  const idLength = ID_BYTES.get(field.name);
  if (idLength !== undefined) {
    if (value.length !== 0 && (value.length !== idLength * 2 || !HEX.test(value))) {
      fail(path, `expected ${idLength * 2} hexadecimal digits or an empty string`);
    }
    return value;
  }
  if (!BASE64.test(value)) fail(path, 'expected base64');
  return Buffer.from(value, 'base64');
}
