/**
 * Path expressions of a mapping file: where in an input value a field reads.
 *
 *   event_type                 a member
 *   span_data.name             members, dotted
 *   messages[0].content        [n] indexes an array
 *   attributes["gen_ai.model"] a member whose name holds a dot (a JSON string)
 *
 * Contracts:
 * - parsePath checks syntax only and bounds the work a path can cause (at most
 *   MAX_PATH_DEPTH steps, MAX_PATH_LENGTH characters); it throws PathSyntaxError,
 *   which the mapping loader turns into a ConfigError at the path's place.
 * - readPath is pure and walks exactly the steps given: no wildcards, no
 *   recursion, so a deeply nested or huge input costs no more than the path.
 *   A step into a member that is not the value's own (a "__proto__" or
 *   "constructor" the input does not hold) finds nothing.
 */
import { isPlainObject } from '../../../core/plain-object.js';


export type Segment = string | number;

export interface PathExpr {
  /** the path as the mapping wrote it; errors name it (it is configuration, not input) */
  readonly text: string;
  readonly segments: readonly Segment[];
}

export const MAX_PATH_DEPTH = 32;
export const MAX_PATH_LENGTH = 512;
const MAX_INDEX = 999_999_999;

export class PathSyntaxError extends Error {}

// A bare member name: anything but the characters the syntax uses, and no white space.
const BARE = /^[^.[\]"'\s{}]+/;

export function parsePath(text: string): PathExpr {
  if (text.length === 0) throw new PathSyntaxError('a path must not be empty');
  if (text.length > MAX_PATH_LENGTH) throw new PathSyntaxError(`a path is at most ${MAX_PATH_LENGTH} characters`);
  const segments: Segment[] = [];
  let i = 0;
  let first = true;
  while (i < text.length) {
    const c = text[i];
    if (c === '[') {
      const close = bracket(text, i);
      segments.push(close.segment);
      i = close.end;
    } else {
      if (!first) {
        if (c !== '.') throw new PathSyntaxError(`expected "." or "[" at character ${i + 1}`);
        i++;
      }
      const m = BARE.exec(text.slice(i));
      if (!m) throw new PathSyntaxError(`expected a member name at character ${i + 1}`);
      segments.push(m[0]);
      i += m[0].length;
    }
    first = false;
    if (segments.length > MAX_PATH_DEPTH) throw new PathSyntaxError(`a path has at most ${MAX_PATH_DEPTH} steps`);
  }
  return { text, segments };
}

function bracket(text: string, open: number): { segment: Segment; end: number } {
  const c = text[open + 1];
  if (c === '"') {
    // Find the closing quote, skipping escapes, then let JSON decode the escapes.
    let j = open + 2;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    if (j >= text.length || text[j + 1] !== ']') throw new PathSyntaxError(`unterminated ["…"] at character ${open + 1}`);
    let name: unknown;
    try {
      name = JSON.parse(text.slice(open + 1, j + 1));
    } catch {
      throw new PathSyntaxError(`invalid escape in ["…"] at character ${open + 1}`);
    }
    if (typeof name !== 'string' || name.length === 0) throw new PathSyntaxError(`empty member name at character ${open + 1}`);
    return { segment: name, end: j + 2 };
  }
  const m = /^\[(0|[1-9][0-9]{0,8})\]/.exec(text.slice(open));
  if (!m) throw new PathSyntaxError(`expected [n] (n ≥ 0) or ["name"] at character ${open + 1}`);
  const n = Number(m[1]);
  if (n > MAX_INDEX) throw new PathSyntaxError(`index too large at character ${open + 1}`);
  return { segment: n, end: open + m[0].length };
}

/** The value at `path` inside `value`, or undefined when a step finds nothing. */
export function readPath(value: unknown, path: readonly Segment[]): unknown {
  let v = value;
  for (const seg of path) {
    if (typeof seg === 'number') {
      if (!Array.isArray(v) || seg >= v.length) return undefined;
      v = v[seg];
    } else {
      if (!isPlainObject(v) || !Object.hasOwn(v, seg)) return undefined;
      v = v[seg];
    }
  }
  return v;
}

/** `prefix` + `path` for an error's field: `data[3].span_data.name`. */
export function joinField(prefix: string, path: string): string {
  if (prefix === '') return path;
  if (path === '') return prefix;
  return path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;
}
