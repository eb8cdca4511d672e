/**
 * `format: cloudevents`: CloudEvents 1.0 in the JSON event format
 * (structured mode), one event per CloudEvent; a JSON array is the JSON
 * batch format and gives one event per element (path `[i]`).
 *
 * How a CloudEvent becomes an event (docs/formats.md, "CloudEvents"):
 * - `type` → event_type; `time` → time (UTC, milliseconds; the attribute as
 *   written is also kept in details.cloudevent when it had finer digits);
 * - `traceparent` (W3C Trace Context, the distributed tracing extension) →
 *   trace_id and span_id when it is well formed;
 * - `id`, `source`, `specversion`, `subject`, `datacontenttype`,
 *   `dataschema` and every extension attribute → details.cloudevent;
 * - `data` that is an object: its members that are sealtrail fields of the
 *   right shape (actor, tool, outcome, …) are lifted into the event, the
 *   rest → details.data; any other `data` → details.data; `data_base64` →
 *   details.data_base64 as written.
 *
 * Contracts: pure (format.ts). A value that is not a CloudEvent is refused
 * with format_mismatch naming the attribute: specversion must be "1.0", id,
 * source and type non-empty strings; `data` and `data_base64` together are
 * refused (the JSON format makes them exclusive). A `null` attribute counts
 * as absent, as the JSON format says. Messages never quote a value.
 */
import { InputError } from '../../core/errors.js';
import { ACTOR_TYPES, OUTCOMES } from '../../core/types.js';
import type { DecodedEvent, LineFormat } from './format.js';
import { convertTime, defineFree, isPlainObject } from './mapped/values.js';

export const MAX_BATCH_EVENTS = 10_000;
const MAX_EVENT_TYPE = 128;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** Attributes that become event fields rather than details.cloudevent members. */
const MAPPED_ATTRIBUTES = new Set(['type', 'time', 'data', 'data_base64']);

/** true when a parsed JSON value is a CloudEvent (object with string specversion and type): what `format: auto` uses. */
export function looksLikeCloudEvent(value: unknown): boolean {
  return isPlainObject(value) && typeof value['specversion'] === 'string' && typeof value['type'] === 'string';
}

export const cloudEventsFormat: LineFormat = {
  name: 'cloudevents',
  decode(value: unknown): DecodedEvent[] {
    if (Array.isArray(value)) {
      if (value.length > MAX_BATCH_EVENTS) throw new InputError('record_invalid', `a batch holds at most ${MAX_BATCH_EVENTS} CloudEvents`);
      return value.map((item, i) => ({ event: fromCloudEvent(item, `[${i}]`), path: `[${i}]` }));
    }
    return [{ event: fromCloudEvent(value, ''), path: '' }];
  },
};

function at(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

function mismatch(prefix: string, name: string, what: string): InputError {
  return new InputError('format_mismatch', `not a CloudEvent: ${name} ${what}`, at(prefix, name));
}

function fromCloudEvent(ce: unknown, prefix: string): Record<string, unknown> {
  if (!isPlainObject(ce)) {
    throw new InputError('record_not_object', 'a CloudEvent must be a JSON object', prefix || undefined);
  }
  const attr = (name: string): unknown => (Object.hasOwn(ce, name) ? ce[name] : undefined);
  const specversion = attr('specversion');
  if (specversion === undefined || specversion === null) throw mismatch(prefix, 'specversion', 'is missing');
  if (typeof specversion !== 'string') throw mismatch(prefix, 'specversion', 'must be a string');
  if (specversion !== '1.0') throw mismatch(prefix, 'specversion', 'must be "1.0" (CloudEvents 1.0)');
  for (const name of ['id', 'source', 'type']) {
    const v = attr(name);
    if (v === undefined || v === null) throw mismatch(prefix, name, 'is missing');
    if (typeof v !== 'string' || v.length === 0) throw mismatch(prefix, name, 'must be a non-empty string');
  }
  const type = attr('type') as string;
  if (type.length > MAX_EVENT_TYPE) {
    throw new InputError('record_invalid', `type: longer than ${MAX_EVENT_TYPE} characters (it becomes event_type)`, at(prefix, 'type'));
  }
  const hasData = attr('data') !== undefined && attr('data') !== null;
  const base64 = attr('data_base64');
  const hasBase64 = base64 !== undefined && base64 !== null;
  if (hasData && hasBase64) throw mismatch(prefix, 'data_base64', 'and data are both present (the JSON format allows one)');
  if (hasBase64 && typeof base64 !== 'string') throw mismatch(prefix, 'data_base64', 'must be a string (Base64)');

  const event: Record<string, unknown> = {};
  defineFree(event, 'event_type', type);
  const cloudevent: Record<string, unknown> = {};
  const time = attr('time');
  if (time !== undefined && time !== null) {
    const t = convertTime(time, 'rfc3339', false);
    if (!t.ok) throw new InputError('record_invalid', `time: ${t.why}`, at(prefix, 'time'));
    defineFree(event, 'time', t.value);
    // The record keeps milliseconds; finer digits stay with the attribute as written.
    if (t.lossy) defineFree(cloudevent, 'time', time);
  }
  const trace = traceContext(attr('traceparent'));
  if (trace) {
    defineFree(event, 'trace_id', trace.traceId);
    defineFree(event, 'span_id', trace.spanId);
  }
  for (const name of Object.keys(ce)) {
    if (MAPPED_ATTRIBUTES.has(name) || ce[name] === null) continue;
    defineFree(cloudevent, name, ce[name]);
  }

  const details: Record<string, unknown> = {};
  defineFree(details, 'cloudevent', cloudevent);
  if (hasBase64) defineFree(details, 'data_base64', base64);
  if (hasData) {
    const data = attr('data');
    const rest = isPlainObject(data) ? liftFields(data, event) : data;
    if (rest !== undefined) defineFree(details, 'data', rest);
  }
  defineFree(event, 'details', details);
  return event;
}

/** W3C traceparent: version 00-fe (not ff), trace-id and parent-id not all zeros. */
function traceContext(v: unknown): { traceId: string; spanId: string } | undefined {
  if (typeof v !== 'string') return undefined;
  const m = TRACEPARENT.exec(v);
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return undefined;
  return { traceId: m[2]!, spanId: m[3]! };
}

const STRING_FIELDS = ['action', 'session_id', 'tenant', 'data_classification', 'trace_id', 'span_id'];
/** Groups and the members that, when present, must be strings for the group to be lifted. */
const GROUPS: Record<string, readonly string[]> = {
  agent: ['id', 'name'],
  resource: ['type', 'id'],
  policy: ['decision', 'rule'],
  approval: ['status', 'approver'],
  model: ['provider', 'name'],
};

/**
 * Moves the members of `data` that are sealtrail fields of the right shape
 * into `event`; returns what is left (undefined when nothing is). A member
 * of the wrong shape stays in data: it is the application's own, not a
 * claim about the record. A field the event already has (trace_id from
 * traceparent) is not overwritten; data's stays in data.
 */
function liftFields(data: Record<string, unknown>, event: Record<string, unknown>): Record<string, unknown> | undefined {
  const rest: Record<string, unknown> = {};
  let kept = 0;
  for (const k of Object.keys(data)) {
    const v = data[k];
    if (!Object.hasOwn(event, k) && fitsField(k, v)) {
      defineFree(event, k, v);
    } else {
      defineFree(rest, k, v);
      kept++;
    }
  }
  return kept === 0 ? undefined : rest;
}

function fitsField(name: string, v: unknown): boolean {
  if (STRING_FIELDS.includes(name)) return typeof v === 'string';
  if (name === 'outcome') return typeof v === 'string' && (OUTCOMES as readonly string[]).includes(v);
  if (!isPlainObject(v)) return false;
  const strOrAbsent = (k: string): boolean => !Object.hasOwn(v, k) || typeof v[k] === 'string';
  if (name === 'actor') {
    const type = Object.hasOwn(v, 'type') ? v['type'] : undefined;
    return typeof v['id'] === 'string' && v['id'] !== '' && (type === undefined || (typeof type === 'string' && (ACTOR_TYPES as readonly string[]).includes(type)));
  }
  if (name === 'tool') return Object.hasOwn(v, 'name') && typeof v['name'] === 'string' && v['name'] !== '';
  const members = Object.hasOwn(GROUPS, name) ? GROUPS[name] : undefined;
  return members !== undefined && members.every(strOrAbsent);
}
