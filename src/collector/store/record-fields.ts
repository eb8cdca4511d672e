import type { RecordFilters, RecordIndexFields } from './types.js';

/**
 * The query API's equality filters, in one table shared by the route (query
 * parameter), the stores (column) and ingest (how the value is taken from a
 * record). Adding a filter means one row here, a column plus index in every
 * backend's migrations, and nothing else.
 */

export type EqualityFilter = Exclude<keyof RecordFilters, 'fromTimeKey' | 'toTimeKey'>;

export interface FilterDef {
  /** GET /v1/audit query parameter */
  param: string;
  /** RecordFilters field */
  field: EqualityFilter;
  /** column name in both SQL backends; a fixed identifier, never user input */
  column: string;
}

export const EQUALITY_FILTERS: readonly FilterDef[] = [
  { param: 'tenant', field: 'tenant', column: 'tenant' },
  { param: 'actor', field: 'actorId', column: 'actor_id' },
  { param: 'agent', field: 'agentId', column: 'agent_id' },
  { param: 'event_type', field: 'eventType', column: 'event_type' },
  { param: 'tool', field: 'tool', column: 'tool' },
  { param: 'outcome', field: 'outcome', column: 'outcome' },
  { param: 'model', field: 'model', column: 'model' },
  { param: 'trace_id', field: 'traceId', column: 'trace_id' },
  { param: 'session_id', field: 'sessionId', column: 'session_id' },
  { param: 'resource', field: 'resourceId', column: 'resource_id' },
  { param: 'resource_type', field: 'resourceType', column: 'resource_type' },
  { param: 'approval', field: 'approval', column: 'approval' },
  { param: 'data_classification', field: 'dataClassification', column: 'data_classification' },
  { param: 'stream', field: 'stream', column: 'stream' },
];

/** Columns that get a (column, time_key) index; `stream` has its own. */
export const INDEXED_FILTER_COLUMNS: readonly string[] = EQUALITY_FILTERS.filter((f) => f.field !== 'stream').map(
  (f) => f.column,
);

/**
 * Longest index value in UTF-8 bytes. A Postgres btree entry must fit in a
 * third of a page (about 2.7 kB), and a record whose value breaks that would
 * be refused on every resend, halting its sidecar for good. Longer values
 * are stored as NULL in the index column (the record itself is untouched);
 * that loses nothing, because the route refuses filter values over 1024
 * characters and matchable() below refuses them over 1024 bytes.
 */
export const MAX_INDEXED_BYTES = 1024;

/**
 * The value as an index column holds it, or null when it cannot be one: not
 * a string, too long, holding NUL (Postgres text cannot store it) or a lone
 * surrogate (not UTF-8). Ingest and queries share this, so a filter value
 * that could never have been indexed matches nothing in every backend alike.
 */
export function indexable(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  if (v.length > MAX_INDEXED_BYTES || Buffer.byteLength(v, 'utf8') > MAX_INDEXED_BYTES) return null;
  if (v.includes('\u0000') || !v.isWellFormed()) return null;
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function member(v: unknown, key: string): string | null {
  return isObject(v) ? indexable(v[key]) : null;
}

/**
 * The index columns of a verified record (a parsed canonical object). `time`
 * and `timeKey` are the caller's: it has already validated them.
 *
 * `resource` filters on resource.id and `resource_type` on resource.type:
 * an id alone is what an auditor usually holds ("who touched patient
 * 4711"), and the type narrows "every access to any patient record".
 * `approval` is approval.status; the approver is a person and stays in the
 * record, where redaction rules apply to it.
 */
export function extractIndexFields(
  record: Record<string, unknown>,
  time: string,
  timeKey: number,
): RecordIndexFields {
  return {
    id: indexable(record.id),
    time,
    timeKey,
    receivedAt: indexable(record.received_at),
    tenant: indexable(record.tenant),
    actorId: member(record.actor, 'id'),
    agentId: member(record.agent, 'id'),
    eventType: indexable(record.event_type),
    tool: member(record.tool, 'name'),
    outcome: indexable(record.outcome),
    model: member(record.model, 'name'),
    traceId: indexable(record.trace_id),
    sessionId: indexable(record.session_id),
    resourceId: member(record.resource, 'id'),
    resourceType: member(record.resource, 'type'),
    approval: member(record.approval, 'status'),
    dataClassification: indexable(record.data_classification),
  };
}

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
