import { CanonicalError } from './errors.js';

/**
 * RFC 8785 JSON Canonicalization Scheme.
 *
 * The output is what every leaf hash is computed over, so it must be
 * byte-identical across versions: do not "improve" formatting here.
 *
 * Deliberate choices, beyond the RFC:
 * - Lone surrogates are refused, as RFC 8785 §3.2.2.2 requires (I-JSON has
 *   none), so every standard JCS verifier accepts our bytes. The sidecar
 *   replaces them with U+FFFD (core/record.ts wellFormed) before a record is
 *   canonicalised, so no record is lost to this.
 * - Properties whose value is undefined are skipped (as JSON.stringify does),
 *   so optional fields left undefined by TypeScript code do not change the
 *   bytes. undefined anywhere else (array element, top level) is refused.
 * - Nesting beyond MAX_DEPTH is refused rather than risking a stack overflow
 *   on hostile input.
 *
 * Error messages never include the value or key names: both may be PII.
 */

export const MAX_DEPTH = 1000;

export function canonicalize(value: unknown): string {
  const stack: object[] = [];
  return serialize(value, stack, 0);
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

function serialize(value: unknown, stack: object[], depth: number): string {
  switch (typeof value) {
    case 'string':
      return serializeString(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new CanonicalError('canonical_invalid', 'canonical JSON: number is NaN or infinite');
      }
      // Number::toString is the algorithm RFC 8785 §3.2.2.3 mandates;
      // String(-0) is "0" as required.
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      return serializeContainer(value, stack, depth);
    case 'undefined':
      throw new CanonicalError('canonical_invalid', 'canonical JSON: undefined is not a JSON value');
    case 'bigint':
      throw new CanonicalError('canonical_invalid', 'canonical JSON: bigint is not a JSON value');
    case 'symbol':
      throw new CanonicalError('canonical_invalid', 'canonical JSON: symbol is not a JSON value');
    case 'function':
      throw new CanonicalError('canonical_invalid', 'canonical JSON: function is not a JSON value');
    default:
      throw new CanonicalError('canonical_invalid', 'canonical JSON: unsupported value type');
  }
}

// Anything JSON.stringify might escape: '"', '\\', C0 controls, surrogates.
// Without the 'u' flag this also matches properly paired surrogates, which
// JSON.stringify leaves alone; such strings merely take the slow path.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

function serializeString(s: string): string {
  // Most record strings are plain; a regex test is about twice as fast as
  // JSON.stringify on them.
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  if (!s.isWellFormed()) {
    throw new CanonicalError('canonical_invalid', 'canonical JSON: string holds a lone surrogate (not I-JSON)');
  }
  // JSON.stringify escapes exactly the set JCS requires (lowercase \u00xx,
  // short forms for \b\t\n\f\r, \" and \\), escapes lone surrogates, and
  // leaves everything else, including '/', as is.
  return JSON.stringify(s);
}

/**
 * Sorts in place by UTF-16 code units (RFC 8785 §3.2.3). JS '<' on strings
 * compares code units; insertion sort beats Array.prototype.sort's generic
 * comparator path for the small key counts of real records.
 */
function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  if (n > 32) return keys.sort();
  for (let i = 1; i < n; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

function serializeContainer(value: object, stack: object[], depth: number): string {
  if (depth >= MAX_DEPTH) {
    throw new CanonicalError(
      'canonical_too_deep',
      `canonical JSON: nesting deeper than ${MAX_DEPTH} levels`,
    );
  }
  // Only ancestors can form a cycle; a shared (DAG) reference is fine.
  // The ancestor chain is short for real records, so a linear scan beats a Set.
  for (let i = 0; i < depth; i++) {
    if (stack[i] === value) {
      throw new CanonicalError('canonical_invalid', 'canonical JSON: cyclic structure');
    }
  }
  stack[depth] = value;
  const childDepth = depth + 1;

  let out: string;
  if (Array.isArray(value)) {
    const n = value.length;
    if (n === 0) return '[]';
    out = '[';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      // A hole or an undefined element has no JSON form; JSON.stringify
      // would silently write null and change the meaning.
      out += serialize(value[i], stack, childDepth);
    }
    return out + ']';
  }

  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    // Date, Map, Buffer, class instances, boxed primitives...: their JSON
    // form depends on toJSON or is lossy, so the caller must convert first.
    throw new CanonicalError('canonical_invalid', 'canonical JSON: value is not a plain object or array');
  }

  const keys = sortKeys(Object.keys(value));
  const obj = value as Record<string, unknown>;
  out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const v = obj[key];
    if (v === undefined) continue;
    if (first) first = false;
    else out += ',';
    out += serializeString(key);
    out += ':';
    out += serialize(v, stack, childDepth);
  }
  return out + '}';
}

/**
 * The parsed value of `text` when `text` is exactly the RFC 8785 form of
 * that value, else undefined: the same answer as
 * `canonicalize(JSON.parse(text)) === text` (a property test in
 * canonical.test.ts holds the two equal), for the collector, which checks
 * every record it receives.
 *
 * Cheaper for canonical text because V8's JSON.stringify already writes
 * numbers (Number::toString) and well-formed strings (the same escapes)
 * exactly as RFC 8785 does. What it does differently is the order of
 * members (insertion order, integer-like keys first) and lone surrogates
 * (escaped instead of refused), so it is trusted only when every object's
 * keys come out sorted and the text has no \ud escape; anything else takes
 * the full canonicalize.
 */
export function parseCanonical(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!text.includes('\\ud')) {
    let fast: string | undefined;
    try {
      fast = JSON.stringify(value);
    } catch {
      fast = undefined;
    }
    if (fast === text && keysSorted(value, 0)) return value;
  }
  let again: string | undefined;
  try {
    again = canonicalize(value);
  } catch {
    return undefined;
  }
  return again === text ? value : undefined;
}

/** Every object's own keys in strictly ascending UTF-16 order, within canonicalize's depth limit. */
function keysSorted(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!keysSorted(value[i], depth + 1)) return false;
    return true;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !((keys[i - 1] as string) < (keys[i] as string))) return false;
    if (!keysSorted(obj[keys[i] as string], depth + 1)) return false;
  }
  return true;
}
