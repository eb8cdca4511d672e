/**
 * otlpEvents: a decoded OTLP request (what decodeOtlpRequest returns, or
 * the OTLP/JSON form built by hand: types.ts) -> one event per span or log
 * record, in request order, each with its path
 * (`resourceSpans[0].scopeSpans[1].spans[2]`). A request of the wrong shape
 * throws InputError naming the member by path; a span or record whose own
 * values cannot fill a field is still mapped, with those values in details.
 */
import { isPlainObject } from './any-value.js';
import { arrayAt, envelope } from './common.js';
import { mismatch } from './json-input.js';
import { mapLogRecord } from './log-map.js';
import { mapSpan } from './span-map.js';
import type { OtlpDecoded, OtlpRequest, OtlpSignal } from './types.js';
import type { DecodedEvent } from '../format.js';

const LAYOUT = {
  traces: { top: 'resourceSpans', scoped: 'scopeSpans', items: 'spans', map: mapSpan },
  logs: { top: 'resourceLogs', scoped: 'scopeLogs', items: 'logRecords', map: mapLogRecord },
} as const;

/**
 * Spans or log records in a decoded request, counted before they are
 * mapped so that a request over an item limit costs no mapping. Reads the
 * request defensively: a shape it does not recognise counts 0, and
 * otlpEvents then reports the fault by path.
 */
export function countOtlpItems(signal: OtlpSignal, request: unknown): number {
  const layout = LAYOUT[signal];
  let n = 0;
  for (const c of ownList(request, layout.top)) for (const s of ownList(c, layout.scoped)) n += ownList(s, layout.items).length;
  return n;
}

/** o[key] when o has it as an own array (a decoded message inherits empty defaults), else []. */
function ownList(o: unknown, key: string): readonly unknown[] {
  if (typeof o !== 'object' || o === null || !Object.hasOwn(o, key)) return [];
  const v = (o as Record<string, unknown>)[key];
  return Array.isArray(v) ? v : [];
}

export function otlpEvents(signal: OtlpSignal, request: OtlpRequest | OtlpDecoded): DecodedEvent[] {
  return [...otlpEventStream(signal, request)];
}

/**
 * otlpEvents one event at a time, for a caller that stores a request's
 * events as it maps them rather than all at the end. With `release`, each
 * span or log record is dropped from the request once mapped, so a large
 * request's decoded items and their events are never all alive at once: the young-generation collections
 * that run while it is stored then copy only what is still to come. A
 * released request is spent: it cannot be walked again.
 */
export function* otlpEventStream(signal: OtlpSignal, request: OtlpRequest | OtlpDecoded, release = false): Generator<DecodedEvent, void, undefined> {
  const layout = LAYOUT[signal];
  if (!isPlainObject(request)) throw mismatch('', `expected an OTLP ${signal} request object`);
  const containers = arrayAt(request, layout.top, '');
  for (let i = 0; i < containers.length; i++) {
    const cPath = `${layout.top}[${i}]`;
    const container = containers[i];
    if (!isPlainObject(container)) throw mismatch(cPath, 'expected an object');
    const scopedList = arrayAt(container, layout.scoped, cPath);
    for (let j = 0; j < scopedList.length; j++) {
      const sPath = `${cPath}.${layout.scoped}[${j}]`;
      const scoped = scopedList[j];
      if (!isPlainObject(scoped)) throw mismatch(sPath, 'expected an object');
      const env = envelope(container, cPath, scoped, sPath);
      const items = arrayAt(scoped, layout.items, sPath);
      for (let k = 0; k < items.length; k++) {
        const path = `${sPath}.${layout.items}[${k}]`;
        const event = layout.map(items[k], path, env);
        if (release) items[k] = undefined;
        yield { event, path };
      }
    }
  }
}
