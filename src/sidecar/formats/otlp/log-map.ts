/**
 * One OTLP log record -> one event in sealtrail's input shape.
 *
 * - event_type: the record's eventName (OTLP 1.5+), else an `event.name`
 *   attribute (how events were sent before), else `log`; a name longer than
 *   an event_type may be (128) gives `log` and stays in details.event_name;
 * - time: timeUnixNano, else observedTimeUnixNano, else none (the sidecar
 *   then uses the time it received the record);
 * - the gen_ai attributes map as on spans (genai.ts); outcome is set only
 *   by an error.type attribute (`error`): a log record has no status, and
 *   a severity says how loud, not whether something failed;
 * - severity, body (as JSON), attributes, resource, scope in details.
 */
import { anyValueToJson, attributeList, attributesObject, isPlainObject } from './any-value.js';
import { envelopeDetails, idAt, intAt, nanosAt, put, stringAt, type Envelope } from './common.js';
import { rfc3339, rfc3339Nanos } from './nanos.js';
import { ATTR, fieldString, mapGenAi } from './genai.js';
import { mismatch } from './json-input.js';

const MAX_EVENT_TYPE = 128;

export function mapLogRecord(rec: unknown, path: string, env: Envelope): Record<string, unknown> {
  if (!isPlainObject(rec)) throw mismatch(path, 'expected a log record object');
  const attrs = attributeList(rec.attributes, `${path}.attributes`);
  const eventName = stringAt(rec, 'eventName', path);

  // event.name is taken out before the gen_ai mapping so that it is not left in the attributes twice
  let eventType: string | undefined;
  let rest = attrs;
  if (eventName !== undefined) {
    if (eventName.length <= MAX_EVENT_TYPE) eventType = eventName;
  } else {
    const i = attrs.findIndex((a) => a.key === ATTR.eventName);
    const name = i >= 0 ? fieldString(attrs[i]!.value) : undefined;
    if (name !== undefined && name.length <= MAX_EVENT_TYPE) {
      eventType = name;
      rest = attrs.filter((_, j) => j !== i);
    }
  }
  const gen = mapGenAi(rest, env.resourceAttributes);
  const time = nanosAt(rec, 'timeUnixNano', path);
  const observed = nanosAt(rec, 'observedTimeUnixNano', path);

  const event: Record<string, unknown> = { event_type: eventType ?? 'log' };
  const at = time ?? observed;
  const atMs = at !== undefined ? rfc3339(at) : undefined;
  if (atMs !== undefined) event.time = atMs;
  Object.assign(event, gen.fields);
  if (gen.errorType !== undefined) event.outcome = 'error';
  put(event, 'trace_id', idAt(rec, 'traceId', path));
  put(event, 'span_id', idAt(rec, 'spanId', path));

  const details: Record<string, unknown> = {};
  if (eventName !== undefined && eventType === undefined) details.event_name = eventName;
  if (time !== undefined) details.time = rfc3339Nanos(time, atMs);
  if (observed !== undefined) details.observed_time = rfc3339Nanos(observed);
  put(details, 'severity_number', intAt(rec, 'severityNumber', path));
  put(details, 'severity_text', stringAt(rec, 'severityText', path));
  const body = anyValueToJson(rec.body, `${path}.body`, 1);
  if (body !== null) details.body = body;
  put(details, 'flags', intAt(rec, 'flags', path));
  if (gen.errorType !== undefined) details.error_type = gen.errorType;
  if (gen.usage) details.usage = gen.usage;
  put(details, 'attributes', attributesObject(gen.rest));
  put(details, 'dropped_attributes_count', intAt(rec, 'droppedAttributesCount', path));
  envelopeDetails(env, details);
  event.details = details;
  return event;
}
