/**
 * `when:` conditions of a mapping: which rule applies to an input value, and
 * whether a field applies.
 *
 *   { exists: span_data.name }                       present and not null
 *   { exists: [a, b] }                               each of them
 *   { equals: { object: trace.span, "span_data.type": function } }
 *   { in: { run_type: [llm, chat_model] } }
 *   { not: {...} }, { all: [{...}, ...] }, { any: [{...}, ...] }
 *
 * Several keys in one condition must all hold. Values compare by JSON type
 * and value (the YAML `1` is not the JSON "1"); `equals: { x: null }` holds
 * when x is null or absent.
 *
 * Contracts: parsing bounds a condition (MAX_CONDITION_DEPTH levels,
 * MAX_CONDITION_NODES tests), so evaluating one costs at most that many path
 * reads; evaluation is pure and never throws.
 */
import { type DataPath } from '../../../config/yaml.js';
import { readPath, type PathExpr } from './paths.js';
import { isMapping, onlyKeys, pathAt, type Reporter } from './spec-report.js';

export type Scalar = string | number | boolean | null;

export type Condition =
  | { op: 'exists'; path: PathExpr }
  | { op: 'equals'; path: PathExpr; value: Scalar }
  | { op: 'in'; path: PathExpr; values: readonly Scalar[] }
  | { op: 'not'; cond: Condition }
  | { op: 'all'; conds: readonly Condition[] }
  | { op: 'any'; conds: readonly Condition[] };

export const MAX_CONDITION_DEPTH = 8;
export const MAX_CONDITION_NODES = 64;
const MAX_IN_VALUES = 256;
const KEYS = ['exists', 'equals', 'in', 'not', 'all', 'any'] as const;

export function parseCondition(r: Reporter, v: unknown, at: DataPath): Condition {
  const budget = { nodes: 0 };
  return parseAt(r, v, at, 0, budget);
}

function parseAt(r: Reporter, v: unknown, at: DataPath, depth: number, budget: { nodes: number }): Condition {
  if (depth >= MAX_CONDITION_DEPTH) r.fail(at, `conditions nest at most ${MAX_CONDITION_DEPTH} levels`);
  if (!isMapping(v)) r.fail(at, `must be a condition: a mapping with ${KEYS.join(', ')}`);
  onlyKeys(r, v, at, KEYS);
  const parts: Condition[] = [];
  const count = (): void => {
    if (++budget.nodes > MAX_CONDITION_NODES) r.fail(at, `a condition holds at most ${MAX_CONDITION_NODES} tests`);
  };
  for (const key of Object.keys(v)) {
    const here = [...at, key];
    const arg = v[key];
    switch (key) {
      case 'exists': {
        const list = Array.isArray(arg) ? arg : [arg];
        if (list.length === 0) r.fail(here, 'must name at least one path');
        list.forEach((p, i) => {
          count();
          parts.push({ op: 'exists', path: pathAt(r, p, Array.isArray(arg) ? [...here, i] : here) });
        });
        break;
      }
      case 'equals':
      case 'in': {
        if (!isMapping(arg) || Object.keys(arg).length === 0) {
          r.fail(here, `must be a mapping of path: ${key === 'equals' ? 'value' : '[values]'}`);
        }
        for (const p of Object.keys(arg)) {
          count();
          const path = pathAt(r, p, [...here, p]);
          const value = arg[p];
          if (key === 'equals') {
            parts.push({ op: 'equals', path, value: scalarAt(r, value, [...here, p]) });
          } else {
            if (!Array.isArray(value) || value.length === 0 || value.length > MAX_IN_VALUES) {
              r.fail([...here, p], `must be a list of 1-${MAX_IN_VALUES} values`);
            }
            parts.push({ op: 'in', path, values: value.map((x, i) => scalarAt(r, x, [...here, p, i])) });
          }
        }
        break;
      }
      case 'not':
        count();
        parts.push({ op: 'not', cond: parseAt(r, arg, here, depth + 1, budget) });
        break;
      default: {
        count();
        if (!Array.isArray(arg) || arg.length === 0) r.fail(here, 'must be a list of conditions');
        const conds = arg.map((c, i) => parseAt(r, c, [...here, i], depth + 1, budget));
        parts.push(key === 'all' ? { op: 'all', conds } : { op: 'any', conds });
      }
    }
  }
  if (parts.length === 0) r.fail(at, `an empty condition; use one of ${KEYS.join(', ')}`);
  return parts.length === 1 ? parts[0]! : { op: 'all', conds: parts };
}

function scalarAt(r: Reporter, v: unknown, at: DataPath): Scalar {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  return r.fail(at, 'must be a string, number, boolean or null');
}

export function holds(c: Condition, input: unknown): boolean {
  switch (c.op) {
    case 'exists': {
      const v = readPath(input, c.path.segments);
      return v !== undefined && v !== null;
    }
    case 'equals':
      return sameScalar(readPath(input, c.path.segments), c.value);
    case 'in': {
      const v = readPath(input, c.path.segments);
      return c.values.some((x) => sameScalar(v, x));
    }
    case 'not':
      return !holds(c.cond, input);
    case 'all':
      return c.conds.every((x) => holds(x, input));
    case 'any':
      return c.conds.some((x) => holds(x, input));
  }
}

function sameScalar(v: unknown, want: Scalar): boolean {
  if (want === null) return v === null || v === undefined;
  return v === want;
}
