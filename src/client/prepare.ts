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
import type { ClientEvent } from './types.js';

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
 * sidecar would refuse, `client_event_too_large` over `maxEventBytes`.
 */
export function prepareEvent(event: ClientEvent, opts: { maxEventBytes: number; now?: () => number; newId?: () => string }): PreparedEvent {
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
    throw new EventRejectedError('client_event_invalid', 'record_invalid', 'event not sent: it cannot be written as JSON (a BigInt, or an object that contains itself)', undefined, { cause: err });
  }
  if (text === undefined) {
    throw new EventRejectedError('client_event_invalid', 'record_not_object', 'event not sent: its toJSON() wrote no JSON object');
  }
  try {
    // The sidecar checks a caller's event_id (a UUID) and keeps it lowercase: report it as stored.
    const normalised = normaliseEvent(JSON.parse(text), RECEIVED_PLACEHOLDER);
    if (typeof normalised.event_id === 'string') eventId = normalised.event_id;
  } catch (err) {
    if (err instanceof InputError) {
      throw new EventRejectedError('client_event_invalid', err.code, `event not sent: ${err.message}`, err.field);
    }
    throw err;
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
  return { eventId: String(eventId), line };
}
