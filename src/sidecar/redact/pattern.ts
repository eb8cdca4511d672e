/**
 * RE2 pattern helpers: compile with RE2 only (linear-time matching whatever
 * the pattern or input), and a lower bound on the length of any match.
 *
 * The bound serves two purposes: strings shorter than the shortest possible
 * match of every rule are skipped without calling into RE2 at all (most
 * values in an audit record are short: ids, enums, flags), and a pattern whose
 * bound is 0 could match the empty string, which would "redact" between every
 * pair of characters; such a pattern is refused at load time.
 */
import RE2 from 're2';

export type RE2Instance = RE2;

/** Compile with RE2; returns the instance or RE2's reason for refusing. */
export function compileRe2(pattern: string, flags = ''): { re: RE2Instance } | { reason: string } {
  try {
    return { re: new RE2(pattern, flags) };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return { reason: msg.replace(/^Invalid regular expression:\s*/, '').slice(0, 200) };
  }
}

/**
 * Number of capturing groups in a pattern RE2 already accepted. An empty
 * alternative makes the probe match "" so exec() returns one slot per group.
 * Returns undefined when the pattern cannot be wrapped (an unterminated \Q
 * swallows the closing parenthesis), which makes the caller use per-rule
 * matching for the whole ruleset.
 */
export function captureGroupCount(pattern: string): number | undefined {
  const probe = compileRe2(`(?:${pattern})|`);
  if (!('re' in probe)) return undefined;
  const m = probe.re.exec('');
  return m ? m.length - 1 : undefined;
}

interface Frame {
  /** shortest completed alternative so far */
  best: number;
  /** length of the alternative being read */
  cur: number;
  /** contribution of the last atom, which a following quantifier rescales */
  last: number;
}

const GROUP_OPEN = /\(\?(?:P?<[^>]*>|[A-Za-z-]*:|([A-Za-z-]*)\))/y;
const REPEAT = /\{([0-9]+)(?:(,)([0-9]*))?\}/y;

/**
 * Lower bound (in UTF-16 code units) on the length of any string the pattern
 * matches. Exact for ordinary patterns; errs low, never high, so skipping
 * shorter strings is always safe. Only meaningful for patterns RE2 accepted:
 * syntax is not validated here. Iterative, so nesting depth costs no stack.
 */
export function minMatchLength(pattern: string): number {
  const stack: Frame[] = [];
  let f: Frame = { best: Infinity, cur: 0, last: 0 };
  const atom = (n: number): void => {
    f.cur += n;
    f.last = n;
  };
  const zeroWidth = (): void => {
    f.last = 0;
  };
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    switch (c) {
      case '|':
        f.best = Math.min(f.best, f.cur);
        f.cur = 0;
        f.last = 0;
        i++;
        break;
      case '(': {
        GROUP_OPEN.lastIndex = i;
        const m = pattern[i + 1] === '?' ? GROUP_OPEN.exec(pattern) : null;
        if (m && m[1] !== undefined) {
          // (?flags) sets flags for the rest of the group; it matches nothing.
          i += m[0].length;
          zeroWidth();
          break;
        }
        i += m ? m[0].length : 1;
        stack.push(f);
        f = { best: Infinity, cur: 0, last: 0 };
        break;
      }
      case ')': {
        const group = Math.min(f.best, f.cur);
        f = stack.pop() ?? { best: Infinity, cur: 0, last: 0 };
        atom(group);
        i++;
        break;
      }
      case '*':
      case '?':
        f.cur -= f.last;
        f.last = 0;
        i = skipLazy(pattern, i + 1);
        break;
      case '+':
        i = skipLazy(pattern, i + 1);
        break;
      case '{': {
        REPEAT.lastIndex = i;
        const m = REPEAT.exec(pattern);
        if (!m) {
          atom(1); // not a repetition: a literal "{"
          i++;
          break;
        }
        const times = Number(m[1]);
        f.cur += f.last * (times - 1);
        f.last *= times;
        i = skipLazy(pattern, i + m[0].length);
        break;
      }
      case '[':
        i = endOfClass(pattern, i);
        atom(1);
        break;
      case '^':
      case '$':
        zeroWidth();
        i++;
        break;
      case '\\':
        i = escape(pattern, i, atom, zeroWidth);
        break;
      default:
        atom(1);
        i += codePointWidth(pattern, i);
    }
  }
  return Math.min(f.best, f.cur);
}

function skipLazy(p: string, i: number): number {
  return p[i] === '?' ? i + 1 : i;
}

function codePointWidth(p: string, i: number): number {
  const u = p.charCodeAt(i);
  return u >= 0xd800 && u <= 0xdbff && i + 1 < p.length ? 2 : 1;
}

/** `\x`, `\x{...}`, `\p{...}`, `\Q...\E`, `\b`, ...: advances past the escape and records its length. */
function escape(p: string, i: number, atom: (n: number) => void, zeroWidth: () => void): number {
  const d = p[i + 1];
  if (d === undefined) return i + 1;
  switch (d) {
    case 'A':
    case 'z':
    case 'b':
    case 'B':
      zeroWidth();
      return i + 2;
    case 'C':
      // One byte, possibly part of a character: counts as nothing for a lower bound.
      atom(0);
      return i + 2;
    case 'Q': {
      let end = p.indexOf('\\E', i + 2);
      if (end === -1) end = p.length;
      // Each quoted character is its own atom, so a quantifier after \E applies to the last one only.
      for (let j = i + 2; j < end; j += codePointWidth(p, j)) atom(1);
      return Math.min(end + 2, p.length);
    }
    case 'p':
    case 'P':
    case 'x': {
      atom(1);
      if (p[i + 2] === '{') {
        const close = p.indexOf('}', i + 3);
        return close === -1 ? p.length : close + 1;
      }
      return i + (d === 'x' ? 4 : 3);
    }
    default:
      if (d >= '0' && d <= '7') {
        let j = i + 1;
        while (j < i + 4 && j < p.length && p[j]! >= '0' && p[j]! <= '7') j++;
        atom(1);
        return j;
      }
      atom(1);
      return i + 1 + codePointWidth(p, i + 1);
  }
}

/** Index just past the `]` that closes the class opened at `start`. */
function endOfClass(p: string, start: number): number {
  let j = start + 1;
  if (p[j] === '^') j++;
  if (p[j] === ']') j++; // a leading "]" is a literal member
  while (j < p.length) {
    const c = p[j];
    if (c === ']') return j + 1;
    if (c === '[' && p[j + 1] === ':') {
      const close = p.indexOf(':]', j + 2);
      j = close === -1 ? j + 1 : close + 2;
    } else if (c === '\\') {
      const d = p[j + 1];
      if ((d === 'p' || d === 'P' || d === 'x') && p[j + 2] === '{') {
        const close = p.indexOf('}', j + 3);
        j = close === -1 ? p.length : close + 1;
      } else {
        j += 2;
      }
    } else {
      j++;
    }
  }
  return p.length;
}

/**
 * The same pattern with every capturing group made non-capturing, so RE2 can
 * find match boundaries with its DFA instead of tracking submatches. Only the
 * group syntax outside character classes changes; the matched language is
 * identical. Returns undefined where that cannot be guaranteed (\Q...\E).
 */
export function withoutCaptures(pattern: string): string | undefined {
  if (pattern.includes('\\Q')) return undefined;
  let out = '';
  let i = 0;
  const n = pattern.length;
  let inClass = false;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      out += pattern.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === '[' && pattern[i + 1] === ':') {
        const end = pattern.indexOf(':]', i + 2);
        if (end < 0) return undefined;
        out += pattern.slice(i, end + 2);
        i = end + 2;
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      i++;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      i++;
      // "]" right after "[" or "[^" is a literal member, not the end of the class.
      if (pattern[i] === '^') out += pattern[i++];
      if (pattern[i] === ']') out += pattern[i++];
      continue;
    }
    if (c === '(') {
      if (pattern[i + 1] !== '?') {
        out += '(?:';
        i++;
        continue;
      }
      const named = /^\(\?P?<[^>]*>/.exec(pattern.slice(i, i + 300));
      if (named) {
        out += '(?:';
        i += named[0].length;
        continue;
      }
    }
    out += c;
    i++;
  }
  if (inClass) return undefined;
  return captureGroupCount(out) === 0 ? out : undefined;
}

/**
 * A version of the pattern for probing a record's strings joined with NUL:
 * every anchor (`^`, `$`, `\A`, `\z`) also accepts a NUL, so a match a
 * string has on its own is also a match (possibly one character longer,
 * into the separator) in the joined text. A superset is all a probe needs.
 * Returns the pattern unchanged when it has no anchor, and undefined when
 * it cannot be read safely (\Q...\E quoting). `separator`: an RE2 atom for
 * what may stand between two strings instead of NUL (the raw-JSON probe
 * passes the characters that delimit strings and numbers in JSON text).
 */
export function probeSafe(pattern: string, separator = '\\x00'): string | undefined {
  let out = '';
  let from = 0;
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    if (c === '\\') {
      const d = pattern[i + 1];
      if (d === 'Q') return undefined;
      if (d === 'A' || d === 'z') {
        out += `${pattern.slice(from, i)}(?:\\${d}|${separator})`;
        from = i + 2;
      }
      i += 2;
      continue;
    }
    if (c === '[') {
      i = endOfClass(pattern, i);
      continue;
    }
    if (c === '^' || c === '$') {
      out += `${pattern.slice(from, i)}(?:${c}|${separator})`;
      from = i + 1;
    }
    i++;
  }
  return from === 0 ? pattern : out + pattern.slice(from);
}

/**
 * A pattern that matches wherever `pattern` does, and perhaps more: every
 * bounded repetition `{m,n}` (n > m) opened to `{m,}`. For tests that may
 * over-answer (the probes, the rule sieve), never for a match that is
 * replaced. Why: a DFA keeps a state per count a bounded repetition may be
 * at (`[a-z0-9._%+'-]{1,64}` in the email rule: 64), and a DFA of several
 * such patterns a state per combination of counts, which outgrows RE2's
 * cache; unbounded, the run is one state. Undefined for \Q...\E (not read).
 */
export function withoutUpperBounds(pattern: string): string | undefined {
  if (pattern.includes('\\Q')) return undefined;
  const noop = (): void => {};
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    let j = i + 1;
    if (c === '[') j = endOfClass(pattern, i);
    else if (c === '\\') j = escape(pattern, i, noop, noop);
    else if (c === '{') {
      REPEAT.lastIndex = i;
      const m = REPEAT.exec(pattern);
      if (m && m[2] === ',' && m[3] !== '') {
        out += `{${m[1]},}`;
        i += m[0].length;
        continue;
      }
    }
    out += pattern.slice(i, j);
    i = j;
  }
  return out;
}
