/**
 * Turns an agent's event into the line the client sends, refusing what the
 * sidecar would refuse before anything is queued. The check is the
 * sidecar's own normaliser (src/core/record.ts), run on the JSON text
 * parsed back, i.e. on exactly what the sidecar will parse: a Date, an
 * `undefined` member or a toJSON() method is judged as it serialises.
 */
import { InputError } from '../core/errors.js';
import { normaliseEvent } from '../core/record.js';
import { uuidv7 } from '../core/uuid.js';
import { EventRejectedError } from './errors.js';
import { CLIENT_DEFAULTS } from './options.js';
import type { ClientEvent } from './types.js';

/**
 * Whether an object or array sits `max` or more levels below the event (the
 * event itself at level 0), as the sidecar's redaction walk counts them. A
 * loop, not recursion: the value came from JSON.parse and may nest as deep
 * as the event's bytes allow.
 */
function nestsDeeper(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

/** A `time` the normaliser never sees: only there to satisfy its signature. */
const RECEIVED_PLACEHOLDER = '1970-01-01T00:00:00.000Z';

export interface PreparedEvent {
  eventId: string;
  /** the NDJSON line, "\n" included */
  line: Buffer;
}

/**
 * The event as one NDJSON line with its `event_id` and `time` filled in.
 * Throws EventRejectedError: `client_event_invalid` naming the field the
 * sidecar would refuse or nesting past `maxDepth` (reason
 * `redact_too_deep`), `client_event_too_large` over `maxEventBytes`.
 * Only the sidecar can refuse a record too large once redacted
 * (`record_too_large`): its rules are not known here.
 */
export function prepareEvent(event: ClientEvent, opts: { maxEventBytes: number; maxDepth?: number; now?: () => number; newId?: () => string }): PreparedEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new EventRejectedError('client_event_invalid', 'record_not_object', 'event not sent: an event must be a JSON object');
  }
  if (event.time instanceof Date && Number.isNaN(event.time.getTime())) {
    // JSON.stringify writes an invalid Date as null, which the sidecar would take for "no time".
    throw new EventRejectedError('client_event_invalid', 'record_invalid', 'event not sent: field time: an invalid Date', 'time');
  }
  const given: unknown = event.event_id;
  let eventId = given === undefined || given === null ? (opts.newId ?? uuidv7)() : given;
  const time = event.time ?? new Date((opts.now ?? Date.now)()).toISOString();
  let text: string | undefined;
  try {
    text = JSON.stringify({ ...event, event_id: eventId, time }) as string | undefined;
  } catch (err) {
    throw new EventRejectedError('client_event_invalid', 'record_invalid', 'event not sent: it cannot be written as JSON (a BigInt, an object that contains itself, or one that nests too deeply)', undefined, { cause: err });
  }
  if (text === undefined) {
    throw new EventRejectedError('client_event_invalid', 'record_not_object', 'event not sent: its toJSON() wrote no JSON object');
  }
  const line = Buffer.from(`${text}\n`);
  const bytes = line.length - 1;
  if (bytes > opts.maxEventBytes) {
    throw new EventRejectedError(
      'client_event_too_large',
      'line_too_long',
      `event not sent: it is ${bytes} bytes as JSON, over maxEventBytes (${opts.maxEventBytes}); the sidecar's max_line_bytes must allow it too. Move bulky payloads out of the event, or raise both`,
    );
  }
  const parsed: unknown = JSON.parse(text);
  const maxDepth = opts.maxDepth ?? CLIENT_DEFAULTS.maxDepth;
  if (nestsDeeper(parsed, maxDepth)) {
    throw new EventRejectedError(
      'client_event_invalid',
      'redact_too_deep',
      `event not sent: it nests objects and arrays deeper than ${maxDepth} levels, the sidecar's redaction limit (max_depth); flatten it, or raise maxDepth with the ruleset's max_depth`,
    );
  }
  try {
    // The sidecar checks a caller's event_id (a UUID) and keeps it lowercase: report it as stored.
    const normalised = normaliseEvent(parsed, RECEIVED_PLACEHOLDER);
    if (typeof normalised.event_id === 'string') eventId = normalised.event_id;
  } catch (err) {
    if (err instanceof InputError) {
      throw new EventRejectedError('client_event_invalid', err.code, `event not sent: ${err.message}`, err.field);
    }
    throw err;
  }
  return { eventId: String(eventId), line };
}
