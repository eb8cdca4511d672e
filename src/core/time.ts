import { InputError } from './errors.js';

// RFC 3339 date-time: full-date "T" full-time, with a mandatory offset.
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 timestamp strictly and returns epoch milliseconds.
 * Date.parse alone accepts many non-RFC forms ("2024", "March 1"), which an
 * audit trail must not silently reinterpret.
 */
export function parseRfc3339(value: string): number | undefined {
  if (value.length > 40) return undefined;
  const m = RFC3339.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return undefined;
  }
  const ms = Date.parse(value.replace(/^(.{19})(\.\d{3})\d*/, '$1$2'));
  if (!Number.isFinite(ms)) return undefined;
  // Reject calendar overflow such as Feb 30, which Date.parse silently rolls over.
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999, and
  // 1900 has no Feb 29 where year 0000 does.
  const check = new Date(0);
  check.setUTCFullYear(Number(y), month - 1, day);
  if (check.getUTCDate() !== day) return undefined;
  return ms;
}

/** First and last millisecond of years 0000-9999 in UTC: what RFC 3339's four-digit year can write. */
export const MIN_TIME_MS = -62167219200000;
export const MAX_TIME_MS = 253402300799999;

/** Normalises to RFC 3339 UTC with millisecond precision: "2026-11-22T17:48:13.000Z". */
export function toUtcTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

export function normaliseTime(value: unknown, field: string): string {
  if (typeof value === 'number') {
    // Epoch milliseconds are common in agent traces; bound them to years 1970..9999.
    if (!Number.isFinite(value) || value < 0 || value > MAX_TIME_MS) {
      throw new InputError('record_invalid', `field ${field}: epoch milliseconds out of range`, field);
    }
    return toUtcTimestamp(value);
  }
  if (typeof value !== 'string') {
    throw new InputError('record_invalid', `field ${field}: expected an RFC 3339 timestamp`, field);
  }
  const ms = parseRfc3339(value);
  if (ms === undefined) {
    throw new InputError('record_invalid', `field ${field}: not an RFC 3339 timestamp`, field);
  }
  // An offset can carry 9999-12-31T23:30:00-01:00 into year 10000, which
  // toISOString writes as "+010000-…": not RFC 3339, and refused by every
  // collector (core/time-key.ts), which would halt the stream.
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw new InputError('record_invalid', `field ${field}: outside the years 0000-9999 once converted to UTC`, field);
  }
  return toUtcTimestamp(ms);
}
