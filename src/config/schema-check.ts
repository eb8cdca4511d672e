/**
 * The JSON Schema checks the config and rule-file schemas use, interpreted
 * instead of compiled. Compiling them with ajv generated and compiled
 * several hundred KiB of code at every start, and the allocation grew a
 * sidecar's heap by ~25 MiB of resident memory it then kept for good; the
 * sidecar's footprint beside an agent is a requirement (issue 14).
 *
 * It reports what ajv (draft-07, `allErrors: false`, `strict: true`,
 * `verbose: true`) reports: the first violation in ajv's order of
 * evaluation, as an error of the same keyword, instance path, params and
 * message, so src/config/schema-errors.ts words it the same way.
 * test/unit/schema-check.test.ts holds it to ajv on every schema and many
 * configs. The order, as ajv's code generator emits it for each schema:
 *   1. `type`, first, unless it names one type the schema has keywords for
 *      (string, number, array, object): then it is reported by step 3;
 *   2. keywords for any type: const, enum, if/then/else;
 *   3. per type, when the value is of that type: number (maximum, minimum,
 *      exclusiveMaximum, exclusiveMinimum), string (maxLength, minLength
 *      in code points, pattern with the `u` flag), array (maxItems,
 *      minItems, items), object (required, additionalProperties,
 *      properties in the schema's order).
 * A schema keyword outside this subset is refused when the schema is first
 * used, as ajv's strict mode refuses unknown keywords.
 */

import type { ErrorObject } from 'ajv';

/** What schema-errors.ts reads of a violation; the shape and values of ajv's ErrorObject. */
export interface SchemaViolation {
  keyword: string;
  /** JSON pointer to the value, `/sidecar/sources/0/include` */
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
  schema: unknown;
  parentSchema: Record<string, unknown>;
  data: unknown;
}

/**
 * Compiles only while a violation is one of ajv's ErrorObjects (the default
 * must meet the constraint), so the wording code reads both alike. Type-only:
 * nothing of ajv is loaded.
 */
export type AjvShapedViolation<V extends ErrorObject = SchemaViolation> = V;

export interface SchemaValidator {
  (data: unknown): boolean;
  /** the first violation of the last call that failed; null after one that passed */
  errors: SchemaViolation[] | null;
}

type Schema = Record<string, unknown>;

const KNOWN = new Set([
  'type', 'const', 'enum', 'if', 'then', 'else',
  'maximum', 'minimum', 'exclusiveMaximum', 'exclusiveMinimum',
  'maxLength', 'minLength', 'pattern',
  'maxItems', 'minItems', 'items',
  'required', 'additionalProperties', 'properties',
]);
const GROUPS = {
  number: ['maximum', 'minimum', 'exclusiveMaximum', 'exclusiveMinimum'],
  string: ['maxLength', 'minLength', 'pattern'],
  array: ['maxItems', 'minItems', 'items'],
  object: ['required', 'additionalProperties', 'properties'],
} as const;
type Group = keyof typeof GROUPS;
const GROUP_ORDER: readonly Group[] = ['number', 'string', 'array', 'object'];
const LIMIT_WORDS: Record<string, string> = { maximum: '<=', minimum: '>=', exclusiveMaximum: '<', exclusiveMinimum: '>' };

/** Refuses a schema using a keyword this module does not implement (checked once, when first used). */
function checkSupported(schema: unknown, at: string): void {
  if (schema === true || schema === false) return;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new Error(`schema at ${at || '/'} is not an object`);
  for (const [k, v] of Object.entries(schema)) {
    if (!KNOWN.has(k)) throw new Error(`schema keyword "${k}" at ${at || '/'} is not supported by src/config/schema-check.ts`);
    if (k === 'properties') for (const [p, s] of Object.entries(v as object)) checkSupported(s, `${at}/properties/${p}`);
    else if (k === 'items' || k === 'if' || k === 'then' || k === 'else' || (k === 'additionalProperties' && typeof v === 'object')) checkSupported(v, `${at}/${k}`);
  }
}

function isType(type: string, data: unknown): boolean {
  switch (type) {
    case 'null':
      return data === null;
    case 'array':
      return Array.isArray(data);
    case 'object':
      return data !== null && typeof data === 'object' && !Array.isArray(data);
    case 'integer':
      return typeof data === 'number' && Number.isFinite(data) && data % 1 === 0;
    case 'number':
      return typeof data === 'number' && Number.isFinite(data);
    default:
      return typeof data === type;
  }
}

/** String length in code points, as ajv counts it (a surrogate pair is one). */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    n++;
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
  }
  return n;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && equal((a as Schema)[k], (b as Schema)[k]));
}

const pointerSegment = (key: string | number): string => `/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;

class Checker {
  private readonly patterns = new Map<string, RegExp>();

  /** The first violation of `data` against `schema`, or undefined. */
  check(schema: unknown, data: unknown, path: string, schemaPath: string): SchemaViolation | undefined {
    if (schema === true) return undefined;
    if (schema === false) return this.fail('false schema', {}, 'boolean schema is false', false, {}, data, path, schemaPath);
    const s = schema as Schema;
    const declared = s['type'];
    const types = declared === undefined ? [] : Array.isArray(declared) ? (declared as string[]) : [declared as string];
    const has = (g: Group): boolean => GROUPS[g].some((k) => s[k] !== undefined);
    const single = types.length === 1 ? types[0] : undefined;
    const deferred = single !== undefined && Object.hasOwn(GROUPS, single) && has(single as Group);
    const typeError = (): SchemaViolation =>
      this.fail('type', { type: declared }, `must be ${types.join(',')}`, declared, s, data, path, `${schemaPath}/type`);
    if (types.length > 0 && !deferred && !types.some((t) => isType(t, data))) return typeError();

    if (s['const'] !== undefined && !equal(data, s['const'])) {
      return this.fail('const', { allowedValue: s['const'] }, 'must be equal to constant', s['const'], s, data, path, `${schemaPath}/const`);
    }
    if (s['enum'] !== undefined && !(s['enum'] as unknown[]).some((v) => equal(data, v))) {
      return this.fail('enum', { allowedValues: s['enum'] }, 'must be equal to one of the allowed values', s['enum'], s, data, path, `${schemaPath}/enum`);
    }
    if (s['if'] !== undefined && (s['then'] !== undefined || s['else'] !== undefined)) {
      const clause = this.check(s['if'], data, path, `${schemaPath}/if`) === undefined ? 'then' : 'else';
      if (s[clause] !== undefined) {
        const inner = this.check(s[clause], data, path, `${schemaPath}/${clause}`);
        if (inner) return inner;
      }
    }

    for (const g of GROUP_ORDER) {
      if (!has(g)) continue;
      if (!isType(g, data)) {
        if (deferred && single === g) return typeError();
        continue;
      }
      const v = this.group(g, s, data, path, schemaPath);
      if (v) return v;
    }
    return undefined;
  }

  private group(g: Group, s: Schema, data: unknown, path: string, schemaPath: string): SchemaViolation | undefined {
    if (g === 'number') {
      const n = data as number;
      for (const k of GROUPS.number) {
        const limit = s[k] as number | undefined;
        if (limit === undefined) continue;
        const ok = k === 'maximum' ? n <= limit : k === 'minimum' ? n >= limit : k === 'exclusiveMaximum' ? n < limit : n > limit;
        if (!ok) return this.fail(k, { comparison: LIMIT_WORDS[k], limit }, `must be ${LIMIT_WORDS[k]} ${limit}`, limit, s, data, path, `${schemaPath}/${k}`);
      }
    } else if (g === 'string') {
      const str = data as string;
      const max = s['maxLength'] as number | undefined;
      const min = s['minLength'] as number | undefined;
      if (max !== undefined && codePoints(str) > max) return this.fail('maxLength', { limit: max }, `must NOT have more than ${max} characters`, max, s, data, path, `${schemaPath}/maxLength`);
      if (min !== undefined && codePoints(str) < min) return this.fail('minLength', { limit: min }, `must NOT have fewer than ${min} characters`, min, s, data, path, `${schemaPath}/minLength`);
      const pattern = s['pattern'] as string | undefined;
      if (pattern !== undefined && !this.regExp(pattern).test(str)) {
        return this.fail('pattern', { pattern }, `must match pattern "${pattern}"`, pattern, s, data, path, `${schemaPath}/pattern`);
      }
    } else if (g === 'array') {
      const arr = data as unknown[];
      const max = s['maxItems'] as number | undefined;
      const min = s['minItems'] as number | undefined;
      if (max !== undefined && arr.length > max) return this.fail('maxItems', { limit: max }, `must NOT have more than ${max} items`, max, s, data, path, `${schemaPath}/maxItems`);
      if (min !== undefined && arr.length < min) return this.fail('minItems', { limit: min }, `must NOT have fewer than ${min} items`, min, s, data, path, `${schemaPath}/minItems`);
      if (s['items'] !== undefined) {
        for (let i = 0; i < arr.length; i++) {
          const v = this.check(s['items'], arr[i], path + pointerSegment(i), `${schemaPath}/items`);
          if (v) return v;
        }
      }
    } else {
      return this.object(s, data as Schema, path, schemaPath);
    }
    return undefined;
  }

  private object(s: Schema, obj: Schema, path: string, schemaPath: string): SchemaViolation | undefined {
    for (const key of (s['required'] as string[] | undefined) ?? []) {
      if (obj[key] === undefined) {
        return this.fail('required', { missingProperty: key }, `must have required property '${key}'`, s['required'], s, obj, path, `${schemaPath}/required`);
      }
    }
    const props = (s['properties'] as Record<string, unknown> | undefined) ?? {};
    const extra = s['additionalProperties'];
    if (extra !== undefined && extra !== true) {
      for (const key in obj) {
        if (Object.hasOwn(props, key)) continue;
        if (extra === false) {
          return this.fail('additionalProperties', { additionalProperty: key }, 'must NOT have additional properties', false, s, obj, path, `${schemaPath}/additionalProperties`);
        }
        const v = this.check(extra, obj[key], path + pointerSegment(key), `${schemaPath}/additionalProperties`);
        if (v) return v;
      }
    }
    for (const [key, sub] of Object.entries(props)) {
      if (obj[key] === undefined) continue;
      const v = this.check(sub, obj[key], path + pointerSegment(key), `${schemaPath}/properties/${key}`);
      if (v) return v;
    }
    return undefined;
  }

  private regExp(pattern: string): RegExp {
    let re = this.patterns.get(pattern);
    if (!re) {
      re = new RegExp(pattern, 'u');
      this.patterns.set(pattern, re);
    }
    return re;
  }

  private fail(
    keyword: string,
    params: Record<string, unknown>,
    message: string,
    schema: unknown,
    parentSchema: Schema,
    data: unknown,
    instancePath: string,
    schemaPath: string,
  ): SchemaViolation {
    return { keyword, instancePath, schemaPath: `#${schemaPath}`, params, message, schema, parentSchema, data };
  }
}

/** A validator for `schema`, called like ajv's compiled ones: `validate(data)`, then `validate.errors`. */
export function schemaValidator(schema: object): SchemaValidator {
  checkSupported(schema, '');
  const checker = new Checker();
  const validate = ((data: unknown): boolean => {
    const v = checker.check(schema, data, '', '');
    validate.errors = v ? [v] : null;
    return v === undefined;
  }) as SchemaValidator;
  validate.errors = null;
  return validate;
}
