/**
 * `template:` sources: text with `{path}` placeholders filled from the input,
 * `{{` and `}}` for literal braces: `"{run_type}_{status}"`.
 *
 * Contracts:
 * - Bounded: at most MAX_TEMPLATE_LENGTH characters and MAX_PLACEHOLDERS
 *   placeholders, each a path of paths.ts; no expressions, no regular
 *   expressions, so rendering costs one path read per placeholder.
 * - A placeholder whose value is absent (or null) makes the whole template
 *   absent, so `default:`/`required:` decide; one whose value is not a
 *   string, number or boolean is an error for the caller to report.
 */
import { parsePath, PathSyntaxError, readPath, type PathExpr } from './paths.js';
import { scalarText } from './values.js';

export type TemplatePart = string | PathExpr;

export const MAX_TEMPLATE_LENGTH = 1024;
export const MAX_PLACEHOLDERS = 16;

export class TemplateSyntaxError extends Error {}

export function parseTemplate(text: string): TemplatePart[] {
  if (text.length > MAX_TEMPLATE_LENGTH) throw new TemplateSyntaxError(`a template is at most ${MAX_TEMPLATE_LENGTH} characters`);
  const parts: TemplatePart[] = [];
  let literal = '';
  let placeholders = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' && text[i + 1] === '{') {
      literal += '{';
      i++;
    } else if (c === '}' && text[i + 1] === '}') {
      literal += '}';
      i++;
    } else if (c === '}') {
      throw new TemplateSyntaxError(`unmatched "}" at character ${i + 1} (write }} for a literal brace)`);
    } else if (c === '{') {
      const close = text.indexOf('}', i + 1);
      if (close === -1) throw new TemplateSyntaxError(`unterminated "{" at character ${i + 1}`);
      if (++placeholders > MAX_PLACEHOLDERS) throw new TemplateSyntaxError(`a template has at most ${MAX_PLACEHOLDERS} placeholders`);
      let path: PathExpr;
      try {
        path = parsePath(text.slice(i + 1, close));
      } catch (err) {
        if (err instanceof PathSyntaxError) throw new TemplateSyntaxError(`placeholder at character ${i + 1}: ${err.message}`);
        throw err;
      }
      if (literal) parts.push(literal);
      literal = '';
      parts.push(path);
      i = close;
    } else {
      literal += c;
    }
  }
  if (literal) parts.push(literal);
  return parts;
}

export type Rendered = { ok: true; value: string | undefined } | { ok: false; path: PathExpr };

export function renderTemplate(parts: readonly TemplatePart[], input: unknown): Rendered {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    const v = readPath(input, p.segments);
    if (v === undefined || v === null) return { ok: true, value: undefined };
    const text = scalarText(v);
    if (text === undefined) return { ok: false, path: p };
    out += text;
  }
  return { ok: true, value: out };
}
