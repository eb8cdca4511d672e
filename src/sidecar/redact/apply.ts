/**
 * Walking decoded JSON (the output of JSON.parse) and redacting every string
 * value, every object key and the string form of every number. Runs before
 * anything is canonicalised, hashed or persisted (DESIGN invariant 1).
 */
import { InputError } from '../../core/errors.js';

/** Containers nested deeper than this are refused rather than walked. */
export const MAX_REDACT_DEPTH = 64;

export type Hits = Record<string, number>;

export interface StringRedactor {
  /** Redact one string; returns it unchanged (same value) when nothing matched. */
  redactString(s: string, hits: Hits | undefined): string;
}

export function redactValue(value: unknown, r: StringRedactor, hits: Hits | undefined): unknown {
  return walk(value, r, hits, 0);
}

/**
 * Every string a redaction walk would look at (keys, values, numbers' string
 * forms), in walk order, with the same depth limit. Lets a ruleset probe a
 * whole record with one regex call instead of one per string.
 */
export function collectStrings(value: unknown, out: string[] = [], depth = 0): string[] {
  switch (typeof value) {
    case 'string':
      out.push(value);
      break;
    case 'number':
      out.push(String(value));
      break;
    case 'object': {
      if (value === null) break;
      if (depth >= MAX_REDACT_DEPTH) {
        throw new InputError('redact_too_deep', `value nests deeper than ${MAX_REDACT_DEPTH} levels`);
      }
      if (Array.isArray(value)) {
        for (const v of value) collectStrings(v, out, depth + 1);
      } else {
        for (const [k, v] of Object.entries(value)) {
          out.push(k);
          collectStrings(v, out, depth + 1);
        }
      }
      break;
    }
    default:
      break;
  }
  return out;
}

function walk(value: unknown, r: StringRedactor, hits: Hits | undefined, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      return r.redactString(value, hits);
    case 'number': {
      // A number that matches (a card number or SSN sent as a JSON number)
      // must not survive as a number; it becomes the redacted string form.
      const text = String(value);
      const out = r.redactString(text, hits);
      return out === text ? value : out;
    }
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_REDACT_DEPTH) {
        // Message names the limit only: nothing from the value may appear in an error.
        throw new InputError('redact_too_deep', `value nests deeper than ${MAX_REDACT_DEPTH} levels`);
      }
      if (Array.isArray(value)) {
        // Copy on write: most values hold nothing to redact, and sharing them is safe
        // because nothing downstream mutates a redacted value.
        let out: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const v = walk(value[i], r, hits, depth + 1);
          if (v !== value[i]) (out ??= value.slice())[i] = v;
        }
        return out ?? value;
      }
      return walkObject(value as Record<string, unknown>, r, hits, depth);
    }
    default:
      // booleans (and anything JSON.parse cannot produce) pass through
      return value;
  }
}

function walkObject(obj: Record<string, unknown>, r: StringRedactor, hits: Hits | undefined, depth: number): Record<string, unknown> {
  const keys = Object.keys(obj);
  const n = keys.length;
  const outKeys = new Array<string>(n);
  const outValues = new Array<unknown>(n);
  let keyChanged = false;
  let valueChanged = false;
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    const k2 = r.redactString(key, hits);
    outKeys[i] = k2;
    if (k2 !== key) keyChanged = true;
    const v = obj[key];
    const v2 = walk(v, r, hits, depth + 1);
    outValues[i] = v2;
    if (v2 !== v) valueChanged = true;
  }
  if (!keyChanged && !valueChanged) return obj;
  if (keyChanged) {
    // Keys that did not change keep their names; redacted keys take whatever
    // label is free, suffixed "#2", "#3", ... so no value is silently lost.
    const used = new Set<string>();
    for (let i = 0; i < n; i++) if (outKeys[i] === keys[i]) used.add(keys[i]!);
    for (let i = 0; i < n; i++) {
      if (outKeys[i] === keys[i]) continue;
      const base = outKeys[i]!;
      let k = base;
      for (let m = 2; used.has(k); m++) k = `${base}#${m}`;
      used.add(k);
      outKeys[i] = k;
    }
  }
  const entries: [string, unknown][] = new Array(n);
  for (let i = 0; i < n; i++) entries[i] = [outKeys[i]!, outValues[i]];
  // fromEntries defines own data properties, so a "__proto__" key stays a key.
  return Object.fromEntries(entries);
}

/** Count one replacement; hits may be any object, so never read or write through its prototype. */
export function countHit(hits: Hits, id: string): void {
  if (Object.hasOwn(hits, id)) hits[id] = (hits[id] ?? 0) + 1;
  else Object.defineProperty(hits, id, { value: 1, writable: true, enumerable: true, configurable: true });
}
