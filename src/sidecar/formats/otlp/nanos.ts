/**
 * OTLP's *UnixNano timestamps (fixed64 nanoseconds since the epoch) as two
 * exact numbers, whole milliseconds and the nanoseconds past them, and the
 * texts the record keeps of them. Every value below 2^64 splits exactly
 * (at most 14 digits of milliseconds), so no BigInt is needed: converting
 * each timestamp through BigInt was a tenth of mapping a span.
 */

export interface Nanos {
  /** whole milliseconds since the epoch, 0 … 18,446,744,073,709 */
  ms: number;
  /** nanoseconds past `ms`, 0 … 999,999 */
  sub: number;
}

const MILLION = 1_000_000;
const MAX_DECIMAL = '18446744073709551615';

/** A non-negative safe integer. */
export function nanosFromNumber(n: number): Nanos {
  const sub = n % MILLION;
  return { ms: (n - sub) / MILLION, sub };
}

/** Decimal digits (no sign); undefined past 2^64 - 1. */
export function nanosFromDecimal(digits: string): Nanos | undefined {
  let s = digits;
  let i = 0;
  while (i < s.length - 1 && s.charCodeAt(i) === 48) i++;
  if (i > 0) s = s.slice(i);
  if (s.length > MAX_DECIMAL.length || (s.length === MAX_DECIMAL.length && s > MAX_DECIMAL)) return undefined;
  if (s.length <= 6) return { ms: 0, sub: Number(s) };
  return { ms: Number(s.slice(0, -6)), sub: Number(s.slice(-6)) };
}

/**
 * The two 32-bit words of an unsigned 64-bit value (a protobufjs Long).
 * 2^32 = 4294 * 10^6 + 967296, so value = high * 4294 * 10^6 + x with
 * x = high * 967296 + low, which stays below 2^53.
 */
export function nanosFromWords(low: number, high: number): Nanos {
  const h = high >>> 0;
  const x = h * 967_296 + (low >>> 0);
  const sub = x % MILLION;
  return { ms: h * 4294 + (x - sub) / MILLION, sub };
}

export function isZero(t: Nanos): boolean {
  return t.ms === 0 && t.sub === 0;
}

/**
 * RFC 3339 UTC with milliseconds (what the record keeps); the nanoseconds
 * stay in details. Any fixed64 falls before the year 2555, so this always
 * yields a time the record accepts.
 */
export function rfc3339(t: Nanos): string {
  const minute = Math.floor(t.ms / 60_000);
  if (minute !== prefixMinute) {
    // The spans of one request mostly fall within one minute: Date's
    // formatting (a tenth of mapping a span) runs once per minute seen.
    prefix = new Date(minute * 60_000).toISOString().slice(0, 17);
    prefixMinute = minute;
  }
  const inMinute = t.ms - minute * 60_000;
  const seconds = Math.floor(inMinute / 1000);
  const millis = inMinute - seconds * 1000;
  return `${prefix}${seconds < 10 ? '0' : ''}${seconds}.${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

/** "YYYY-MM-DDTHH:MM:" of the minute last formatted (every fixed64 time is in years 1970-2554, four digits) */
let prefix = '';
let prefixMinute = NaN;

/**
 * RFC 3339 UTC with all nine digits: how details keep OTLP's nanoseconds.
 * Not a bare decimal string: redaction rules read 10- to 19-digit strings
 * as phone or card numbers and would redact a timestamp. `ms` is
 * rfc3339(t) when the caller has it already.
 */
export function rfc3339Nanos(t: Nanos, ms = rfc3339(t)): string {
  return `${ms.slice(0, -4)}${String((t.ms % 1000) * MILLION + t.sub).padStart(9, '0')}Z`;
}

/**
 * end - start as protobuf's JSON form of google.protobuf.Duration: seconds
 * with nine decimals and an "s" ("8.876543211s"), exact at any length, "-"
 * when the end is before the start. Not a number: redaction rules read
 * numbers as text too, and a 10-digit count of nanoseconds looks like a
 * phone number.
 */
export function durationText(end: Nanos, start: Nanos): string {
  let ms = end.ms - start.ms;
  let sub = end.sub - start.sub;
  const negative = ms < 0 || (ms === 0 && sub < 0);
  if (negative) {
    ms = -ms;
    sub = -sub;
  }
  if (sub < 0) {
    ms -= 1;
    sub += MILLION;
  }
  const frac = (ms % 1000) * MILLION + sub;
  return `${negative ? '-' : ''}${(ms - (ms % 1000)) / 1000}.${String(frac).padStart(9, '0')}s`;
}
