/**
 * One OTLP span -> one event in sealtrail's input shape (docs/events.md;
 * the table is in docs/otlp.md).
 *
 * - event_type from gen_ai.operation.name (genai.ts), `span` without one;
 * - time = start (RFC 3339, ms); start/end nanoseconds, end time and the
 *   duration (ns, decimal string) in details;
 * - outcome: `error` for status ERROR or an error.type attribute, `success`
 *   for OK or UNSET without error.type; an unknown status code gives none;
 * - trace_id, span_id at top level, parent_span_id in details;
 * - whatever no field takes stays under details: attributes, events, links,
 *   resource, scope, status message, span name and kind.
 */
import { attributeList, attributesObject, isPlainObject } from './any-value.js';
import { envelopeDetails, idAt, intAt, nanosAt, objectAt, put, spanKindName, stringAt, arrayAt, type Envelope } from './common.js';
import { durationText, rfc3339, rfc3339Nanos } from './nanos.js';
import { eventTypeForOperation, mapGenAi } from './genai.js';
import { mismatch } from './json-input.js';

const STATUS_UNSET = 0;
const STATUS_OK = 1;
const STATUS_ERROR = 2;
const STATUS_NAMES = ['unset', 'ok', 'error'];

export function mapSpan(span: unknown, path: string, env: Envelope): Record<string, unknown> {
  if (!isPlainObject(span)) throw mismatch(path, 'expected a span object');
  const gen = mapGenAi(attributeList(span.attributes, `${path}.attributes`), env.resourceAttributes);
  const start = nanosAt(span, 'startTimeUnixNano', path);
  const end = nanosAt(span, 'endTimeUnixNano', path);
  const status = objectAt(span, 'status', path);
  const statusCode = status ? (intAt(status, 'code', `${path}.status`) ?? STATUS_UNSET) : STATUS_UNSET;
  const statusMessage = status ? stringAt(status, 'message', `${path}.status`) : undefined;

  const event: Record<string, unknown> = {
    event_type: gen.operation !== undefined ? eventTypeForOperation(gen.operation) : 'span',
  };
  const startMs = start !== undefined ? rfc3339(start) : undefined;
  if (startMs !== undefined) event.time = startMs;
  Object.assign(event, gen.fields);
  if (statusCode === STATUS_ERROR || gen.errorType !== undefined) event.outcome = 'error';
  else if (statusCode === STATUS_OK || statusCode === STATUS_UNSET) event.outcome = 'success';
  put(event, 'trace_id', idAt(span, 'traceId', path));
  put(event, 'span_id', idAt(span, 'spanId', path));

  const details: Record<string, unknown> = {};
  put(details, 'span_name', stringAt(span, 'name', path));
  const kind = intAt(span, 'kind', path);
  if (kind !== undefined) details.span_kind = spanKindName(kind);
  put(details, 'parent_span_id', idAt(span, 'parentSpanId', path));
  put(details, 'trace_state', stringAt(span, 'traceState', path));
  put(details, 'flags', intAt(span, 'flags', path));
  if (start !== undefined) details.start_time = rfc3339Nanos(start, startMs);
  if (end !== undefined) details.end_time = rfc3339Nanos(end);
  if (start !== undefined && end !== undefined) details.duration = durationText(end, start);
  if (statusCode !== STATUS_UNSET) details.status_code = STATUS_NAMES[statusCode] ?? statusCode;
  put(details, 'status_message', statusMessage);
  if (gen.errorType !== undefined) details.error_type = gen.errorType;
  if (gen.usage) details.usage = gen.usage;
  put(details, 'attributes', attributesObject(gen.rest));
  put(details, 'dropped_attributes_count', intAt(span, 'droppedAttributesCount', path));
  put(details, 'events', arrayAt(span, 'events', path).map((e, i) => spanEvent(e, `${path}.events[${i}]`)));
  put(details, 'dropped_events_count', intAt(span, 'droppedEventsCount', path));
  put(details, 'links', arrayAt(span, 'links', path).map((l, i) => spanLink(l, `${path}.links[${i}]`)));
  put(details, 'dropped_links_count', intAt(span, 'droppedLinksCount', path));
  envelopeDetails(env, details);
  event.details = details;
  return event;
}

/** A span event (gen_ai.* message events, exceptions, …) with its attributes as they are. */
function spanEvent(e: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(e)) throw mismatch(path, 'expected a span event object');
  const out: Record<string, unknown> = {};
  put(out, 'name', stringAt(e, 'name', path));
  const t = nanosAt(e, 'timeUnixNano', path);
  if (t !== undefined) out.time = rfc3339Nanos(t);
  put(out, 'attributes', attributesObject(attributeList(e.attributes, `${path}.attributes`)));
  put(out, 'dropped_attributes_count', intAt(e, 'droppedAttributesCount', path));
  return out;
}

function spanLink(l: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(l)) throw mismatch(path, 'expected a span link object');
  const out: Record<string, unknown> = {};
  put(out, 'trace_id', idAt(l, 'traceId', path));
  put(out, 'span_id', idAt(l, 'spanId', path));
  put(out, 'trace_state', stringAt(l, 'traceState', path));
  put(out, 'flags', intAt(l, 'flags', path));
  put(out, 'attributes', attributesObject(attributeList(l.attributes, `${path}.attributes`)));
  put(out, 'dropped_attributes_count', intAt(l, 'droppedAttributesCount', path));
  return out;
}
