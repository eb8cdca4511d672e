/**
 * Walking decoded JSON (the output of JSON.parse): every string value, every
 * object key and the string form of every number is offered to a policy
 * that keeps it, replaces it or drops the member holding it. Runs before
 * anything is canonicalised, hashed or persisted (DESIGN invariant 1).
 */
import { InputError } from '../../core/errors.js';
import type { PathSegment } from './scope.js';

/** Containers nested deeper than this are refused rather than walked (rule files may set another limit). */
export const MAX_REDACT_DEPTH = 64;

export type Hits = Record<string, number>;

/** A policy's answer for a string that must disappear together with its member (drop_field). */
export const DROP: unique symbol = Symbol('drop');
/** undefined: keep as is; a string: the replacement; DROP: remove the member (arrays: null). */
export type StringOutcome = string | typeof DROP | undefined;

/**
 * Decides about one string. `path` is the path of the value, or for a key
 * the path of the member it names; it is undefined when the walk was asked
 * not to track paths (no rule has a scope). The array is reused: copy it
 * to keep it.
 */
export type StringPolicy = (s: string, isKey: boolean, path: readonly PathSegment[] | undefined) => StringOutcome;

export function tooDeep(maxDepth: number): InputError {
  // Message names the limit only: nothing from the value may appear in an error.
  return new InputError('redact_too_deep', `value nests deeper than ${maxDepth} levels`);
}

/**
 * Every string a redaction walk would look at (keys, values, numbers' string
 * forms), in walk order, with the same depth limit. Lets a ruleset probe a
 * whole record with one regex call instead of one per string. Returns
 * whether the value has a member named in `names` (same pass; keys from
 * JSON.parse are internalised, so the lookups are cheap).
 */
export function collectStrings(
  value: unknown,
  out: string[],
  maxDepth: number,
  names?: ReadonlySet<string>,
  depth = 0,
): boolean {
  if (typeof value === 'string') {
    out.push(value);
    return false;
  }
  if (typeof value === 'number') {
    out.push(String(value));
    return false;
  }
  if (typeof value !== 'object' || value === null) return false;
  if (depth >= maxDepth) throw tooDeep(maxDepth);
  let found = false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (collectStrings(value[i], out, maxDepth, names, depth + 1)) found = true;
    return found;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out.push(k);
    if (names !== undefined && names.has(k)) found = true;
    if (collectStrings(obj[k], out, maxDepth, names, depth + 1)) found = true;
  }
  return found;
}

/**
 * Never mutates its input. Containers on the path to a change are copied;
 * untouched subtrees (and the whole value, when nothing changed) are
 * returned as they are. A dropped root becomes null.
 */
export function walkRedact(value: unknown, policy: StringPolicy, trackPath: boolean, maxDepth = MAX_REDACT_DEPTH): unknown {
  const out = walk(value, policy, trackPath ? [] : undefined, 0, maxDepth);
  return out === DROP ? null : out;
}

function walk(value: unknown, policy: StringPolicy, path: PathSegment[] | undefined, depth: number, maxDepth: number): unknown {
  switch (typeof value) {
    case 'string': {
      const r = policy(value, false, path);
      return r === undefined ? value : r;
    }
    case 'number': {
      // A number that matches (a card number or SSN sent as a JSON number)
      // must not survive as a number; it becomes the redacted string form.
      const r = policy(String(value), false, path);
      return r === undefined ? value : r;
    }
    case 'object': {
      if (value === null) return null;
      if (depth >= maxDepth) throw tooDeep(maxDepth);
      if (Array.isArray(value)) {
        // Copy on write: most values hold nothing to redact, and sharing them is safe
        // because nothing downstream mutates a redacted value.
        let out: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          path?.push(i);
          let v = walk(value[i], policy, path, depth + 1, maxDepth);
          path?.pop();
          if (v === DROP) v = null;
          if (v !== value[i]) (out ??= value.slice())[i] = v;
        }
        return out ?? value;
      }
      return walkObject(value as Record<string, unknown>, policy, path, depth, maxDepth);
    }
    default:
      // booleans (and anything JSON.parse cannot produce) pass through
      return value;
  }
}

function walkObject(
  obj: Record<string, unknown>,
  policy: StringPolicy,
  path: PathSegment[] | undefined,
  depth: number,
  maxDepth: number,
): Record<string, unknown> {
  const keys = Object.keys(obj);
  const n = keys.length;
  let outKeys: (string | typeof DROP)[] | undefined;
  let outValues: unknown[] | undefined;
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    path?.push(key);
    const k = policy(key, true, path);
    const v = obj[key];
    const v2 = walk(v, policy, path, depth + 1, maxDepth);
    path?.pop();
    if (k !== undefined || v2 !== v) {
      if (!outKeys) {
        outKeys = keys.slice();
        outValues = keys.map((kk) => obj[kk]);
      }
      outKeys[i] = k === DROP || v2 === DROP ? DROP : (k ?? key);
      outValues![i] = v2;
    }
  }
  if (!outKeys) return obj;
  // Keys that did not change keep their names; redacted keys take whatever
  // label is free, suffixed "#2", "#3", ... so no value is silently lost.
  // `next` remembers where each label's search stopped: a label's lowest free
  // suffix only grows, so n keys redacted to one label cost O(n), not O(n²).
  const used = new Set<string>();
  for (let i = 0; i < n; i++) if (outKeys[i] === keys[i]) used.add(keys[i]!);
  const next = new Map<string, number>();
  const entries: [string, unknown][] = [];
  for (let i = 0; i < n; i++) {
    const base = outKeys[i]!;
    if (base === DROP) continue;
    let k = base;
    if (base !== keys[i]) {
      let m = next.get(base) ?? 2;
      for (; used.has(k); m++) k = `${base}#${m}`;
      next.set(base, m);
      used.add(k);
    }
    entries.push([k, outValues![i]]);
  }
  // fromEntries defines own data properties, so a "__proto__" key stays a key.
  return Object.fromEntries(entries);
}

/** Count one replacement; hits may be any object, so never read or write through its prototype. */
export function countHit(hits: Hits, id: string): void {
  if (Object.hasOwn(hits, id)) hits[id] = (hits[id] ?? 0) + 1;
  // "__proto__" is the one name whose assignment would not make an own
  // property (Object.prototype has no other setter); defineProperty for the
  // rest would turn every hits object into a slow dictionary.
  else if (id === '__proto__') Object.defineProperty(hits, id, { value: 1, writable: true, enumerable: true, configurable: true });
  else hits[id] = 1;
}
