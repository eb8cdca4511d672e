/**
 * Glob matching for the file source. Node's path.matchesGlob is still
 * experimental on Node 20 (it prints a warning), and the watches are plain
 * directory watches (file-watch.ts), so the small subset we need is
 * compiled to a RegExp here:
 * `*`, `?`, `[...]` / `[!...]` and `**` as a whole path segment.
 */
import path from 'node:path';

export interface CompiledGlob {
  /** the pattern, made absolute */
  pattern: string;
  /** longest leading directory without glob characters: what we watch and walk */
  base: string;
  /** directory levels below `base` a match can sit at (0 = direct children); undefined with `**` */
  depth: number | undefined;
  regexp: RegExp;
}

const GLOB_CHARS = /[*?[]/;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Compiles a glob (relative globs are resolved against `cwd`). */
export function compileGlob(glob: string, cwd: string = process.cwd()): CompiledGlob {
  const pattern = path.resolve(cwd, glob).split(path.sep).join('/');
  const segments = pattern.split('/');
  let firstGlob = segments.findIndex((s) => GLOB_CHARS.test(s));
  // A literal file name: watch its directory.
  if (firstGlob === -1) firstGlob = segments.length - 1;
  const baseSegments = segments.slice(0, firstGlob);
  const base = baseSegments.join('/') || '/';
  const rest = segments.slice(firstGlob);
  const depth = rest.includes('**') ? undefined : rest.length - 1;
  return { pattern, base, depth, regexp: globToRegExp(pattern) };
}

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  let i = 0;
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '*') {
      let j = i;
      while (glob[j] === '*') j++;
      const wholeSegment = j - i === 2 && (i === 0 || glob[i - 1] === '/') && (j === glob.length || glob[j] === '/');
      if (wholeSegment) {
        if (j === glob.length) {
          re += '.*';
          i = j;
        } else {
          // zero or more whole directories, so `a/**/b` also matches `a/b`
          re += '(?:[^/]*/)*';
          i = j + 1;
        }
      } else {
        re += '[^/]*';
        i = j;
      }
      continue;
    }
    if (c === '?') {
      re += '[^/]';
      i++;
      continue;
    }
    if (c === '[') {
      // `]` right after `[` (or `[!`) is a literal member, as in POSIX.
      let start = i + 1;
      let negate = false;
      if (glob[start] === '!' || glob[start] === '^') {
        negate = true;
        start++;
      }
      const end = glob.indexOf(']', start + 1);
      if (end === -1) {
        re += '\\[';
        i++;
        continue;
      }
      const body = glob.slice(start, end).replace(/[\\\]^[]/g, '\\$&');
      re += negate ? `[^/${body}]` : `[${body}]`;
      i = end + 1;
      continue;
    }
    re += escapeRegExp(c);
    i++;
  }
  return new RegExp(re + '$');
}

/** Include/exclude matching on absolute, `/`-separated paths. */
export class GlobSet {
  readonly includes: CompiledGlob[];
  readonly excludes: CompiledGlob[];

  constructor(include: string[], exclude: string[] = [], cwd: string = process.cwd()) {
    this.includes = include.map((g) => compileGlob(g, cwd));
    this.excludes = exclude.map((g) => compileGlob(g, cwd));
  }

  matches(file: string): boolean {
    const p = path.resolve(file).split(path.sep).join('/');
    return this.includes.some((g) => g.regexp.test(p)) && !this.excludes.some((g) => g.regexp.test(p));
  }

  /** Distinct base directories, with the deepest level any pattern needs under each. */
  bases(): Array<{ dir: string; depth: number | undefined }> {
    const out = new Map<string, number | undefined>();
    for (const g of this.includes) {
      if (!out.has(g.base)) {
        out.set(g.base, g.depth);
        continue;
      }
      const prev = out.get(g.base);
      out.set(g.base, prev === undefined || g.depth === undefined ? undefined : Math.max(prev, g.depth));
    }
    return [...out].map(([dir, depth]) => ({ dir, depth }));
  }
}
