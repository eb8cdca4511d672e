import { parseRfc3339 } from './time.js';

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
  return value.length === 24 ? (isoMillisKey(value) ?? generalTimeKey(value)) : generalTimeKey(value);
}

const DIGIT_0 = 48;

/** The decimal number written at value[from..to), or -1 if a character there is not a digit. */
function digits(value: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = value.charCodeAt(i) - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * The form every sidecar writes, "YYYY-MM-DDTHH:MM:SS.sssZ" (toISOString),
 * read without regular expressions: the collector keys every record it
 * receives. Anything this does not fully recognise, including valid RFC 3339
 * it leaves to the general path (years below 100, leap seconds), returns
 * undefined and goes to generalTimeKey; a property test holds the two equal.
 */
function isoMillisKey(v: string): number | undefined {
  if (v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45 || v.charCodeAt(10) !== 84 || v.charCodeAt(13) !== 58) return undefined;
  if (v.charCodeAt(16) !== 58 || v.charCodeAt(19) !== 46 || v.charCodeAt(23) !== 90) return undefined;
  const year = digits(v, 0, 4);
  const month = digits(v, 5, 7);
  const day = digits(v, 8, 10);
  const hour = digits(v, 11, 13);
  const minute = digits(v, 14, 16);
  const second = digits(v, 17, 19);
  const milli = digits(v, 20, 23);
  if (year < 100 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59) return undefined;
  if (second < 0 || second > 59 || milli < 0) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, milli);
  // Date.UTC rolls Feb 30 over into March; such a day is not this month's.
  if (new Date(ms).getUTCDate() !== day) return undefined;
  return ms * 1000;
}

/** timeKey for every RFC 3339 form; exported for the property test of the fast path. */
export function generalTimeKey(value: string): number | undefined {
  const ms = parseRfc3339(value);
  if (ms === undefined) return undefined;
  // Date keeps whole milliseconds (parseRfc3339 truncates the fraction, so
  // ms is floored); offsets are whole minutes, so the sub-millisecond digits
  // of the text still apply unchanged after conversion to UTC.
  const frac = /^[^.]{19}\.\d{3}(\d{1,3})/.exec(value)?.[1];
  const micros = frac === undefined ? 0 : Number(frac.padEnd(3, '0'));
  return ms * 1000 + micros;
}

