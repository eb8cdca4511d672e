/**
 * Rule scopes: JSON paths with wildcards, matched against the path of the
 * value (or of the member whose key) being redacted.
 *
 *   $            the record root (the input event as parsed)
 *   .name        a member; ["any name"] or ['any name'] for names with dots,
 *                brackets, quotes, spaces or wildcards
 *   [3]          an array element (also written .3; a name made of digits
 *                matches the element with that index or the member with
 *                that name)
 *   .* or [*]    any one member or array element
 *   .** or [**]  any number of levels, including none
 *
 * A path addresses exactly the node it names: `$.trace_id` does not cover
 * `$.trace_id.x`; write `$.trace_id.**` for a subtree.
 */

/** One step of a path pattern: a literal name, `*` or `**`. */
export type ScopeSegment = { kind: 'name'; name: string } | { kind: 'any' } | { kind: 'deep' };

export type ScopePattern = readonly ScopeSegment[];

/** A step of a concrete path: an object member name or an array index. */
export type PathSegment = string | number;

const MAX_SCOPE_PATH = 1024;
const NAME = /[^.[\]*"'\s]+/y;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/' };

/** Parse a scope path; returns the reason when it is not one. */
export function parseScopePath(text: string): { pattern: ScopePattern } | { reason: string } {
  if (text.length > MAX_SCOPE_PATH) return { reason: `longer than ${MAX_SCOPE_PATH} characters` };
  if (text[0] !== '$') return { reason: 'must start with "$"' };
  const out: ScopeSegment[] = [];
  let i = 1;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '.') {
      i++;
      if (text.startsWith('**', i)) {
        out.push({ kind: 'deep' });
        i += 2;
      } else if (text[i] === '*') {
        out.push({ kind: 'any' });
        i += 1;
      } else {
        NAME.lastIndex = i;
        const m = NAME.exec(text);
        if (!m) return { reason: `expected a member name after "." at offset ${i}` };
        out.push({ kind: 'name', name: m[0] });
        i += m[0].length;
      }
      if (i < n && text[i] !== '.' && text[i] !== '[') {
        return { reason: `unexpected character at offset ${i} (quote names like this: ["a b"])` };
      }
    } else if (c === '[') {
      const close = bracket(text, i);
      if ('reason' in close) return close;
      out.push(close.segment);
      i = close.end;
    } else {
      return { reason: `unexpected character at offset ${i}` };
    }
  }
  return { pattern: collapse(out) };
}

function bracket(text: string, i: number): { segment: ScopeSegment; end: number } | { reason: string } {
  const q = text[i + 1];
  if (q === '"' || q === "'") {
    // JSON-style escapes inside double quotes; single quotes allow \' and \\.
    let name = '';
    let j = i + 2;
    for (;;) {
      if (j >= text.length) return { reason: `unterminated quoted name at offset ${i}` };
      const c = text[j]!;
      if (c === q) break;
      if (c === '\\') {
        const d = text[j + 1];
        if (d === undefined) return { reason: `unterminated quoted name at offset ${i}` };
        if (d === 'u' && q === '"') {
          const hex = text.slice(j + 2, j + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) return { reason: `bad \\u escape at offset ${j}` };
          name += String.fromCharCode(parseInt(hex, 16));
          j += 6;
          continue;
        }
        const decoded = d === q || d === '\\' ? d : SIMPLE_ESCAPES[d];
        if (decoded === undefined) return { reason: `bad escape at offset ${j}` };
        name += decoded;
        j += 2;
        continue;
      }
      name += c;
      j++;
    }
    if (text[j + 1] !== ']') return { reason: `expected "]" at offset ${j + 1}` };
    return { segment: { kind: 'name', name }, end: j + 2 };
  }
  const close = text.indexOf(']', i);
  if (close === -1) return { reason: `unterminated "[" at offset ${i}` };
  const inner = text.slice(i + 1, close);
  if (inner === '*') return { segment: { kind: 'any' }, end: close + 1 };
  if (inner === '**') return { segment: { kind: 'deep' }, end: close + 1 };
  if (/^(?:0|[1-9][0-9]{0,9})$/.test(inner)) return { segment: { kind: 'name', name: inner }, end: close + 1 };
  return { reason: `"[${inner.slice(0, 20)}]" is not an index, * or ** (quote member names: ["name"])` };
}

/** `**.**` matches what `**` matches; collapsing keeps matching linear in practice. */
function collapse(segs: ScopeSegment[]): ScopeSegment[] {
  const out: ScopeSegment[] = [];
  for (const s of segs) {
    if (s.kind === 'deep' && out[out.length - 1]?.kind === 'deep') continue;
    out.push(s);
  }
  return out;
}

/** The canonical text of a parsed pattern (part of the ruleset hash). */
export function formatScopePath(p: ScopePattern): string {
  let out = '$';
  for (const s of p) {
    if (s.kind === 'any') out += '.*';
    else if (s.kind === 'deep') out += '.**';
    else out += /^[^.[\]*"'\s]+$/.test(s.name) ? `.${s.name}` : `[${JSON.stringify(s.name)}]`;
  }
  return out;
}

/**
 * Does the concrete path match the pattern? Iterative glob matching with
 * backtracking to the last `**` only, which is linear in the path length
 * for each `**` (patterns and paths are both short).
 */
export function scopeMatches(p: ScopePattern, path: readonly PathSegment[]): boolean {
  // Most patterns end in a name ($.**.password): a cheap first test.
  const last = p[p.length - 1];
  if (last !== undefined && last.kind === 'name' && (path.length === 0 || String(path[path.length - 1]) !== last.name)) return false;
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < path.length) {
    const seg = p[pi];
    if (seg !== undefined && seg.kind === 'deep') {
      starP = pi++;
      starS = si;
      continue;
    }
    if (seg !== undefined && (seg.kind === 'any' || String(path[si]) === seg.name)) {
      pi++;
      si++;
      continue;
    }
    if (starP === -1) return false;
    pi = starP + 1;
    si = ++starS;
  }
  while (pi < p.length && p[pi]!.kind === 'deep') pi++;
  return pi === p.length;
}

export interface CompiledScope {
  readonly include: readonly ScopePattern[];
  readonly exclude: readonly ScopePattern[];
}

/** In scope when some include matches (no includes: everything) and no exclude does. */
export function inScope(scope: CompiledScope, path: readonly PathSegment[]): boolean {
  if (scope.include.length > 0 && !scope.include.some((p) => scopeMatches(p, path))) return false;
  return !scope.exclude.some((p) => scopeMatches(p, path));
}

/**
 * A member name every path the pattern matches goes through, or undefined
 * when the pattern has none (only wildcards, or names made of digits, which
 * can also be array indexes). A record without a member of that name has no
 * value in scope.
 */
export function requiredMemberName(p: ScopePattern): string | undefined {
  for (let i = p.length - 1; i >= 0; i--) {
    const s = p[i]!;
    if (s.kind === 'name' && !/^[0-9]+$/.test(s.name)) return s.name;
  }
  return undefined;
}
