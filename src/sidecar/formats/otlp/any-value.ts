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
 * The input is the OTLP/JSON form (types.ts); because otlpEvents takes that
 * from any caller, its shape is checked here too (format_mismatch by path),
 * and nesting deeper than MAX_ANY_DEPTH is record_invalid by path.
 */
import { mismatch, tooDeep } from './json-input.js';
import { MAX_ANY_DEPTH } from './types.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Attribute {
  key: string;
  value: Json;
}

const DECIMAL = /^-?\d{1,20}$/;
const MEMBERS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] as const;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

import { defineFree, defineKey } from '../../../core/own-key.js';

export { defineKey };

/** An attribute list (KeyValue[]) in order, values converted; absent -> []. */
export function attributeList(list: unknown, path: string): Attribute[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw mismatch(path, 'expected an array of key/value pairs');
  const out: Attribute[] = [];
  for (let i = 0; i < list.length; i++) {
    const p = `${path}[${i}]`;
    const kv: unknown = list[i];
    if (!isPlainObject(kv)) throw mismatch(p, 'expected an object with key and value');
    const key = kv.key ?? '';
    if (typeof key !== 'string') throw mismatch(`${p}.key`, 'expected a string');
    out.push({ key, value: anyValueToJson(kv.value, `${p}.value`, 1) });
  }
  return out;
}

/** Attributes as one object; a repeated key takes the next free "<key>#n". */
export function attributesObject(attrs: readonly Attribute[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  const next = new Map<string, number>();
  for (const { key, value } of attrs) defineFree(out, key, value, next);
  return out;
}

export function anyValueToJson(v: unknown, path: string, depth: number): Json {
  if (depth > MAX_ANY_DEPTH) throw tooDeep(path);
  if (v === undefined || v === null) return null;
  if (!isPlainObject(v)) throw mismatch(path, 'expected an AnyValue object');
  let member: (typeof MEMBERS)[number] | undefined;
  for (const m of MEMBERS) {
    if (v[m] === undefined || v[m] === null) continue;
    if (member !== undefined) throw mismatch(`${path}.${m}`, `only one of ${MEMBERS.join(', ')} may be set`);
    member = m;
  }
  if (member === undefined) return null;
  const x = v[member];
  const p = `${path}.${member}`;
  switch (member) {
    case 'stringValue':
    case 'bytesValue':
      if (typeof x !== 'string') throw mismatch(p, 'expected a string');
      return x;
    case 'boolValue':
      if (typeof x !== 'boolean') throw mismatch(p, 'expected true or false');
      return x;
    case 'intValue':
      return int64(x, p);
    case 'doubleValue':
      return double(x, p);
    case 'arrayValue': {
      const values = listOf(x, p);
      const out = new Array<Json>(values.length);
      for (let i = 0; i < values.length; i++) out[i] = anyValueToJson(values[i], `${p}.values[${i}]`, depth + 1);
      return out;
    }
    case 'kvlistValue': {
      const values = listOf(x, p);
      const attrs: Attribute[] = [];
      for (let i = 0; i < values.length; i++) {
        const q = `${p}.values[${i}]`;
        const kv = values[i];
        if (!isPlainObject(kv)) throw mismatch(q, 'expected an object with key and value');
        const key = kv.key ?? '';
        if (typeof key !== 'string') throw mismatch(`${q}.key`, 'expected a string');
        attrs.push({ key, value: anyValueToJson(kv.value, `${q}.value`, depth + 1) });
      }
      return attributesObject(attrs);
    }
  }
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
