import type { Principal } from '../auth.js';
import { scopeFilters } from '../auth.js';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';
import { DEFAULT_MAX_QUERY_RANGE } from '../options.js';
import { EQUALITY_FILTERS } from '../../core/record-index.js';
import type { RecordFilters, RecordOrder } from '../store/types.js';
import { timeKey } from '../../core/time-key.js';
import { checkTimeRange } from './query.js';

/**
 * The record filters of GET /v1/audit, shared with GET /v1/export: the same
 * parameters mean the same thing on both routes.
 */

/** Query parameters that select records: from, to, order and every equality filter. */
export const FILTER_PARAMS: readonly string[] = ['from', 'to', 'order', ...EQUALITY_FILTERS.map((f) => f.param)];

const ORDERS: readonly RecordOrder[] = ['asc', 'desc'];

function instant(q: Map<string, string>, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === undefined) return undefined;
  const key = timeKey(raw);
  if (key === undefined) {
    throw new HttpError(400, 'query_invalid', `parameter "${name}" must be an RFC 3339 timestamp with offset`);
  }
  return key;
}

/**
 * Filters and order from a strictly read query (see readQuery), with the
 * principal's scope applied: a reader's tenant is forced (403
 * tenant_forbidden when it asks for another one).
 */
export function readRecordFilters(
  q: Map<string, string>,
  ctx: CollectorContext,
  principal: Principal,
): { filters: RecordFilters; order: RecordOrder } {
  const filters: RecordFilters = {};
  for (const { param, field } of EQUALITY_FILTERS) {
    const v = q.get(param);
    if (v !== undefined) filters[field] = v;
  }
  const rawOrder = q.get('order') ?? 'asc';
  if (!ORDERS.includes(rawOrder as RecordOrder)) {
    throw new HttpError(400, 'query_invalid', 'parameter "order" must be asc or desc');
  }
  const from = instant(q, 'from');
  const to = instant(q, 'to');
  if (from !== undefined) filters.fromTimeKey = from;
  if (to !== undefined) filters.toTimeKey = to;
  checkTimeRange(from, to, ctx.opts.max_query_range ?? DEFAULT_MAX_QUERY_RANGE);
  scopeFilters(principal, filters);
  return { filters, order: rawOrder as RecordOrder };
}
