import { EQUALITY_FILTERS, indexable, type EqualityFilter } from '../../core/record-index.js';
import type { RecordFilters } from './types.js';

/**
 * Where the stores keep the query API's equality filters. Which filters
 * exist, their parameters and how each value is read from a record are
 * core/record-index.ts's (the evidence verifier needs them too); the columns
 * are the stores' own. Keyed by field, so a filter added there without a
 * column here does not compile; the column and its index then go into every
 * backend's migrations.
 */

/** Column name in both SQL backends; fixed identifiers, never user input. */
const COLUMN_OF: Readonly<Record<EqualityFilter, string>> = {
  tenant: 'tenant',
  actorId: 'actor_id',
  agentId: 'agent_id',
  eventType: 'event_type',
  tool: 'tool',
  outcome: 'outcome',
  model: 'model',
  traceId: 'trace_id',
  sessionId: 'session_id',
  resourceId: 'resource_id',
  resourceType: 'resource_type',
  approval: 'approval',
  dataClassification: 'data_classification',
  stream: 'stream',
};

export interface FilterColumn {
  /** RecordFilters field */
  field: EqualityFilter;
  /** column name in both SQL backends */
  column: string;
}

/** Every equality filter with its column, in EQUALITY_FILTERS order. */
export const FILTER_COLUMNS: readonly FilterColumn[] = EQUALITY_FILTERS.map((f) => ({ field: f.field, column: COLUMN_OF[f.field] }));

/** Columns that get a (column, time_key) index; `stream` has its own. */
export const INDEXED_FILTER_COLUMNS: readonly string[] = FILTER_COLUMNS.filter((f) => f.field !== 'stream').map(
  (f) => f.column,
);

/**
 * False when some filter value can never equal a stored index value, so a
 * store can answer "nothing" without sending the value to the database (a
 * NUL byte would otherwise be a Postgres encoding error, i.e. a 500).
 */
export function filtersCanMatch(filters: RecordFilters): boolean {
  for (const f of EQUALITY_FILTERS) {
    const v = filters[f.field];
    if (v !== undefined && indexable(v) === null) return false;
  }
  if (filters.fromTimeKey !== undefined && filters.toTimeKey !== undefined && filters.fromTimeKey >= filters.toTimeKey) {
    return false;
  }
  return true;
}
