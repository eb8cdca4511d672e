/**
 * OTLP AnyValue and attribute lists as plain JSON, the way an audit record
 * keeps them:
 * - string, bool: as they are; a double as a number, NaN and ±Infinity as
 *   the strings "NaN", "Infinity", "-Infinity" (RFC 8785 cannot write them);
 * - int64: a number when it is a safe integer, else its decimal string;
 * - bytes: the base64 string;
 * - arrayValue: an array; kvlistValue: an object; an empty AnyValue: null.
 * Attribute keys stay as given (dotted names flat, never nested). A key
 * given twice keeps both values: the later one takes "<key>#2", "#3", …
 * Objects get own data properties only, so "__proto__" stays a key.
 *
 * The input is either a message protobufjs decoded (int64 as a Long, bytes
 * as a Uint8Array, unset members inherited defaults, so a oneof member
 * counts only as an own property) or the OTLP/JSON form (types.ts) a
 * caller built. Its shape is checked here (format_mismatch by path), and
 * nesting deeper than MAX_ANY_DEPTH is record_invalid by path. Paths are
 * built only when something is wrong or a value nests: a span's dozen
 * string attributes cost no path strings.
 */
import { defineFree, defineKey } from '../../../core/own-key.js';
import { isPlainObject } from '../../../core/plain-object.js';
import { mismatch, tooDeep } from './json-input.js';
import { MAX_ANY_DEPTH } from './types.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Attribute {
  key: string;
  value: Json;
}

const DECIMAL = /^-?\d{1,20}$/;
const MEMBERS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] as const;

export { defineKey, isPlainObject };

/** An attribute list (KeyValue[]) in order, values converted; absent -> []. */
export function attributeList(list: unknown, path: string): Attribute[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw mismatch(path, 'expected an array of key/value pairs');
  const out = new Array<Attribute>(list.length);
  for (let i = 0; i < list.length; i++) {
    const kv: unknown = list[i];
    if (!isPlainObject(kv)) throw mismatch(`${path}[${i}]`, 'expected an object with key and value');
    const key = kv.key ?? '';
    if (typeof key !== 'string') throw mismatch(`${path}[${i}].key`, 'expected a string');
    const scalar = scalarValue(kv.value);
    out[i] = { key, value: scalar !== NOT_SCALAR ? scalar : anyValueToJson(kv.value, `${path}[${i}].value`, 1) };
  }
  return out;
}

/** Attributes as one object; a repeated key takes the next free "<key>#n". */
export function attributesObject(attrs: readonly Attribute[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  let next: Map<string, number> | undefined;
  for (const { key, value } of attrs) {
    if (Object.hasOwn(out, key)) defineFree(out, key, value, (next ??= new Map()));
    else defineKey(out, key, value);
  }
  return out;
}

const NOT_SCALAR = Symbol('not a scalar');

/**
 * The value of an AnyValue holding exactly one string, bool, int or
 * double (what almost every attribute is), or NOT_SCALAR for anything
 * else, including every malformed value: anyValueToJson then reports it.
 */
function scalarValue(v: unknown): Json | typeof NOT_SCALAR {
  if (!isPlainObject(v)) return NOT_SCALAR;
  const member = setMember(v);
  if (member === undefined || member === TWO) return NOT_SCALAR;
  const x = v[member];
  switch (member) {
    case 'stringValue':
      return typeof x === 'string' ? x : NOT_SCALAR;
    case 'boolValue':
      return typeof x === 'boolean' ? x : NOT_SCALAR;
    case 'intValue':
      return typeof x === 'number' && Number.isSafeInteger(x) ? x : isLong(x) ? longValue(x) : NOT_SCALAR;
    case 'doubleValue':
      return typeof x === 'number' && Number.isFinite(x) ? x : NOT_SCALAR;
    default:
      return NOT_SCALAR;
  }
}

const TWO = Symbol('two members');

/** The one AnyValue member that is set, undefined for none, TWO for more. */
function setMember(v: Record<string, unknown>): Member | undefined | typeof TWO {
  let member: Member | undefined;
  for (const m of MEMBERS) {
    if (!Object.hasOwn(v, m) || v[m] === undefined || v[m] === null) continue;
    if (member !== undefined) return TWO;
    member = m;
  }
  return member;
}

type Member = (typeof MEMBERS)[number];

/** A protobufjs Long (what its decoder makes of an int64 or fixed64 when long.js is present). */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}

export function isLong(x: unknown): x is LongLike {
  return typeof x === 'object' && x !== null && typeof (x as LongLike).low === 'number' && typeof (x as LongLike).high === 'number' && typeof (x as LongLike).unsigned === 'boolean';
}

export function longToBigInt(x: LongLike): bigint {
  const v = (BigInt(x.high >>> 0) << 32n) | BigInt(x.low >>> 0);
  return x.unsigned ? v : BigInt.asIntN(64, v);
}

/** A Long as a number when exact, else as its decimal string. */
function longValue(x: LongLike): number | string {
  // |value| < 2^53 exactly when the high word is within ±2^21 (unsigned: below 2^21)
  if (x.unsigned ? x.high >>> 0 < 0x200000 : x.high >= -0x200000 && x.high < 0x200000) {
    const n = (x.unsigned ? x.high >>> 0 : x.high) * 0x100000000 + (x.low >>> 0);
    if (Number.isSafeInteger(n)) return n;
  }
  return longToBigInt(x).toString();
}

export function anyValueToJson(v: unknown, path: string, depth: number): Json {
  if (depth > MAX_ANY_DEPTH) throw tooDeep(path);
  if (v === undefined || v === null) return null;
  if (!isPlainObject(v)) throw mismatch(path, 'expected an AnyValue object');
  const member = setMember(v);
  if (member === TWO) throw mismatch(`${path}.${secondMember(v)}`, `only one of ${MEMBERS.join(', ')} may be set`);
  if (member === undefined) return null;
  const x = v[member];
  // a value one level down may take the fast path only where the depth check could not fail
  const inner = depth + 1 <= MAX_ANY_DEPTH;
  switch (member) {
    case 'stringValue':
      if (typeof x !== 'string') throw mismatch(`${path}.${member}`, 'expected a string');
      return x;
    case 'bytesValue':
      if (x instanceof Uint8Array) return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
      if (typeof x !== 'string') throw mismatch(`${path}.${member}`, 'expected a string');
      return x;
    case 'boolValue':
      if (typeof x !== 'boolean') throw mismatch(`${path}.${member}`, 'expected true or false');
      return x;
    case 'intValue':
      return isLong(x) ? longValue(x) : int64(x, `${path}.${member}`);
    case 'doubleValue':
      return double(x, `${path}.${member}`);
    case 'arrayValue': {
      const p = `${path}.${member}`;
      const values = listOf(x, p);
      const out = new Array<Json>(values.length);
      for (let i = 0; i < values.length; i++) {
        const scalar = inner ? scalarValue(values[i]) : NOT_SCALAR;
        out[i] = scalar !== NOT_SCALAR ? scalar : anyValueToJson(values[i], `${p}.values[${i}]`, depth + 1);
      }
      return out;
    }
    case 'kvlistValue': {
      const p = `${path}.${member}`;
      const values = listOf(x, p);
      const attrs = new Array<Attribute>(values.length);
      for (let i = 0; i < values.length; i++) {
        const kv = values[i];
        if (!isPlainObject(kv)) throw mismatch(`${p}.values[${i}]`, 'expected an object with key and value');
        const key = kv.key ?? '';
        if (typeof key !== 'string') throw mismatch(`${p}.values[${i}].key`, 'expected a string');
        const scalar = inner ? scalarValue(kv.value) : NOT_SCALAR;
        attrs[i] = { key, value: scalar !== NOT_SCALAR ? scalar : anyValueToJson(kv.value, `${p}.values[${i}].value`, depth + 1) };
      }
      return attributesObject(attrs);
    }
  }
}

/** The second member set, for the error that names it. */
function secondMember(v: Record<string, unknown>): Member {
  let seen = false;
  for (const m of MEMBERS) {
    if (!Object.hasOwn(v, m) || v[m] === undefined || v[m] === null) continue;
    if (seen) return m;
    seen = true;
  }
  throw new Error('secondMember called on an AnyValue with fewer than two members');
}

function listOf(x: unknown, path: string): unknown[] {
  if (!isPlainObject(x)) throw mismatch(path, 'expected an object with values');
  const values = x.values ?? [];
  if (!Array.isArray(values)) throw mismatch(`${path}.values`, 'expected an array');
  return values;
}

/** A 64-bit integer as a number when exact, else as its decimal string. */
export function int64(x: unknown, path: string): number | string {
  let n: bigint;
  if (typeof x === 'number' && Number.isInteger(x)) n = BigInt(x);
  else if (typeof x === 'string' && DECIMAL.test(x)) n = BigInt(x);
  else throw mismatch(path, 'expected an integer (a number or a decimal string)');
  const asNumber = Number(n);
  return Number.isSafeInteger(asNumber) ? asNumber : n.toString();
}

function double(x: unknown, path: string): number | string {
  if (typeof x === 'number') {
    if (Number.isFinite(x)) return x;
    return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
  }
  if (x === 'NaN' || x === 'Infinity' || x === '-Infinity') return x;
  throw mismatch(path, 'expected a number');
}
