import { HttpError } from '../../core/errors.js';
import { safeName } from '../http-error.js';

/**
 * Reads a query string strictly: unknown or repeated parameters are errors
 * rather than silently ignored, because an ignored filter on an audit query
 * returns more than the caller asked for and looks like an answer.
 */
export function readQuery(query: unknown, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  if (query === undefined || query === null) return out;
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    if (!allowed.includes(name)) {
      throw new HttpError(400, 'query_invalid', `unknown query parameter ${safeName(name)}`);
    }
    if (typeof value !== 'string') {
      throw new HttpError(400, 'query_invalid', `parameter "${name}" given more than once`);
    }
    if (value.length === 0) throw new HttpError(400, 'query_invalid', `parameter "${name}" must not be empty`);
    if (value.length > 1024) throw new HttpError(400, 'query_invalid', `parameter "${name}" longer than 1024 characters`);
    out.set(name, value);
  }
  return out;
}

/** A decimal integer in [min, max]; `fallback` when absent. */
export function readInt(q: Map<string, string>, name: string, fallback: number, min: number, max: number): number {
  const raw = q.get(name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,16}$/.test(raw)) throw new HttpError(400, 'query_invalid', `parameter "${name}" must be a decimal integer`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new HttpError(400, 'query_invalid', `parameter "${name}" must be between ${min} and ${max}`);
  }
  return n;
}

/**
 * Refuses a from..to span (epoch µs, as timeKey gives) wider than `maxMs`.
 * Only a two-sided range is measured: a query with one bound or none is a
 * browse, paged by cursor and bounded per page by `limit` and the store's
 * statement timeout (see docs/access.md for why).
 */
export function checkTimeRange(from: number | undefined, to: number | undefined, maxMs: number): void {
  if (from === undefined || to === undefined) return;
  if (to - from > maxMs * 1000) {
    const days = maxMs / 86_400_000;
    const shown = Number.isInteger(days) ? `${days} days` : `${maxMs} ms`;
    throw new HttpError(400, 'range_too_large', `from..to spans more than ${shown}; split the query`);
  }
}
