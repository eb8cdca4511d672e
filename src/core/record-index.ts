/**
 * The fields of a record that queries select on, and how each is read from
 * a record. Pure, and shared by everyone who must agree on them: the
 * collector (ingest extracts them, GET /v1/audit and /v1/export filter on
 * them, the stores index them) and the evidence verifier (a bundle's query
 * must describe exactly the records it holds).
 *
 * Adding a filter: its field in RecordIndexFields and extractIndexFields, a
 * row in EQUALITY_FILTERS, then its column in collector/store/record-fields.ts
 * (the compiler asks for it) and in every backend's migrations.
 */

/** The values the query API filters on, extracted from a record at ingest. */
export interface RecordIndexFields {
  id: string | null;
  /** the record's `time` as written */
  time: string;
  /** `time` as integer epoch microseconds (see time-key.ts) */
  timeKey: number;
  receivedAt: string | null;
  tenant: string | null;
  /** actor.id */
  actorId: string | null;
  /** agent.id */
  agentId: string | null;
  eventType: string | null;
  /** tool.name */
  tool: string | null;
  outcome: string | null;
  /** model.name */
  model: string | null;
  traceId: string | null;
  sessionId: string | null;
  /** resource.id */
  resourceId: string | null;
  /** resource.type */
  resourceType: string | null;
  /** approval.status */
  approval: string | null;
  dataClassification: string | null;
}

/**
 * What an equality filter compares: an index field that is a value (not the
 * record's id or times), or the stream the record belongs to.
 */
export type EqualityFilter = 'stream' | Exclude<keyof RecordIndexFields, 'id' | 'time' | 'timeKey' | 'receivedAt'>;

export interface FilterDef {
  /** GET /v1/audit (and /v1/export, and an evidence bundle's query) parameter */
  param: string;
  /** RecordIndexFields field, or `stream` */
  field: EqualityFilter;
}

/** The query API's equality filters, in one table shared by the routes, the stores and the evidence verifier. */
export const EQUALITY_FILTERS: readonly FilterDef[] = [
  { param: 'tenant', field: 'tenant' },
  { param: 'actor', field: 'actorId' },
  { param: 'agent', field: 'agentId' },
  { param: 'event_type', field: 'eventType' },
  { param: 'tool', field: 'tool' },
  { param: 'outcome', field: 'outcome' },
  { param: 'model', field: 'model' },
  { param: 'trace_id', field: 'traceId' },
  { param: 'session_id', field: 'sessionId' },
  { param: 'resource', field: 'resourceId' },
  { param: 'resource_type', field: 'resourceType' },
  { param: 'approval', field: 'approval' },
  { param: 'data_classification', field: 'dataClassification' },
  { param: 'stream', field: 'stream' },
];

/**
 * Longest index value in UTF-8 bytes. A Postgres btree entry must fit in a
 * third of a page (about 2.7 kB), and a record whose value breaks that would
 * be refused on every resend, halting its sidecar for good. Longer values
 * are stored as NULL in the index column (the record itself is untouched);
 * that loses nothing, because the route refuses filter values over 1024
 * characters and filtersCanMatch() (collector/store/record-fields.ts)
 * refuses them over 1024 bytes.
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
 * The index fields of a record (a parsed canonical object). `time` and
 * `timeKey` are the caller's: it has already validated them.
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
