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

export function otlpEvents(signal: OtlpSignal, request: OtlpRequest | OtlpDecoded): DecodedEvent[] {
  const layout = LAYOUT[signal];
  if (!isPlainObject(request)) throw mismatch('', `expected an OTLP ${signal} request object`);
  const out: DecodedEvent[] = [];
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
        out.push({ event: layout.map(items[k], path, env), path });
      }
    }
  }
  return out;
}
