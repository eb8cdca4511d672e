import { parseRfc3339 } from '../core/time.js';

/**
 * The instant of an RFC 3339 timestamp as integer epoch microseconds: the
 * key the query API orders and ranges on. Records may carry any offset and
 * precision, so every stored time and every from/to bound goes through this
 * one function. An integer instead of text keeps the nine indexes that carry
 * it small, which is most of the ingest cost.
 *
 * Beyond 2^53 µs (year 2255) the double rounds, but rounding is monotonic:
 * order is kept and at worst two instants tie, which the (stream, seq)
 * tie-break then orders. Sub-microsecond digits are ignored the same way.
 * Returns undefined for anything that is not strict RFC 3339.
 */
export function timeKey(value: string): number | undefined {
  const ms = parseRfc3339(value);
  if (ms === undefined) return undefined;
  // Date keeps whole milliseconds (parseRfc3339 truncates the fraction, so
  // ms is floored); offsets are whole minutes, so the sub-millisecond digits
  // of the text still apply unchanged after conversion to UTC.
  const frac = /^[^.]{19}\.\d{3}(\d{1,3})/.exec(value)?.[1];
  const micros = frac === undefined ? 0 : Number(frac.padEnd(3, '0'));
  return ms * 1000 + micros;
}

