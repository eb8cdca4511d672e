/**
 * `format: otlp-json`: each line one OTLP/JSON export request, as the
 * OpenTelemetry Collector's file exporter writes them (a traces request
 * with resourceSpans or a logs request with resourceLogs, hex ids), each
 * becoming one event per span or log record. looksLikeOtlpJson is what
 * `format: auto` asks of a parsed line.
 */
import { InputError } from '../../../core/errors.js';
import type { DecodedEvent, LineFormat } from '../format.js';
import { isPlainObject } from './any-value.js';
import { otlpJsonRequest } from './decode.js';
import { countOtlpItems, otlpEvents } from './events.js';
import { mismatch } from './json-input.js';
import type { OtlpSignal } from './types.js';

const TRACES = ['resourceSpans', 'resource_spans'];
const LOGS = ['resourceLogs', 'resource_logs'];

function hasArray(o: Record<string, unknown>, names: readonly string[]): boolean {
  return names.some((n) => Array.isArray(o[n]));
}

/** true when a parsed JSON value looks like an OTLP/JSON export request (an array resourceSpans or resourceLogs). */
export function looksLikeOtlpJson(value: unknown): boolean {
  return isPlainObject(value) && (hasArray(value, TRACES) || hasArray(value, LOGS));
}

function signalOf(value: Record<string, unknown>): OtlpSignal {
  const traces = hasArray(value, TRACES);
  const logs = hasArray(value, LOGS);
  if (traces && logs) throw mismatch('', 'holds both resourceSpans and resourceLogs; an OTLP request carries one signal');
  if (traces) return 'traces';
  if (logs) return 'logs';
  throw mismatch('', 'not an OTLP/JSON export request: expected an array resourceSpans or resourceLogs');
}

/**
 * Spans or log records one line may hold, as a cloudevents batch or a
 * mapped line: a line is committed as one unit, so an unbounded one could
 * hold the event loop (and a source's retries) for as long as it likes.
 * An OpenTelemetry Collector's file exporter writes batches of hundreds.
 */
export const MAX_ITEMS_PER_LINE = 10_000;

export const otlpJsonFormat: LineFormat = {
  name: 'otlp-json',
  decode(value: unknown): DecodedEvent[] {
    if (!isPlainObject(value)) throw new InputError('record_not_object', 'an otlp-json line must hold one JSON object', '');
    const signal = signalOf(value);
    const form = otlpJsonRequest(signal, value);
    if (countOtlpItems(signal, form) > MAX_ITEMS_PER_LINE) {
      throw new InputError('record_invalid', `more than ${MAX_ITEMS_PER_LINE} ${signal === 'traces' ? 'spans' : 'log records'} in one line`, '');
    }
    return otlpEvents(signal, form);
  },
};
