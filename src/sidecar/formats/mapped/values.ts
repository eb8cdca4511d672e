/**
 * Value conversions a mapping applies: times to RFC 3339, scalars to
 * strings, `map:` lookups.
 *
 * Contracts:
 * - Pure. A conversion that fails returns `{ ok: false, why }` where `why`
 *   says what was expected and never holds the value (input may be PII);
 *   the caller adds the path and throws.
 * - Times come out as sealtrail writes them: UTC with milliseconds, years
 *   0000-9999 (core/time.ts). Digits below the millisecond are cut, and the
 *   result says so (`lossy`) so the caller can keep the value as written.
 * - Epoch values are converted exactly (decimal digits, BigInt), never
 *   through floating point, so 1700000000.123456789 s is 1700000000123 ms
 *   with lossy set, and a numeric string of 19 digits keeps every digit.
 */
import { defineKey } from '../../../core/own-key.js';
import { MAX_TIME_MS, MIN_TIME_MS, parseRfc3339, toUtcTimestamp } from '../../../core/time.js';
import { isPlainObject } from '../../../core/plain-object.js';

export { isPlainObject };

export const TIME_UNITS = ['auto', 'rfc3339', 'epoch_s', 'epoch_ms', 'epoch_us', 'epoch_ns'] as const;
export type TimeUnit = (typeof TIME_UNITS)[number];

export type Converted<T> = { ok: true; value: T; lossy: boolean } | { ok: false; why: string };

const NUMERIC = /^(\d{1,22})(?:\.(\d{1,18}))?$/;
const NAIVE = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$/;
const FRACTION = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}\.(\d+)/;

/** Power of ten that turns the unit into milliseconds. */
const MS_EXPONENT: Record<'epoch_s' | 'epoch_ms' | 'epoch_us' | 'epoch_ns', number> = {
  epoch_s: 3,
  epoch_ms: 0,
  epoch_us: -3,
  epoch_ns: -6,
};

const fail = (why: string): { ok: false; why: string } => ({ ok: false, why });

/**
 * `value` as an RFC 3339 UTC timestamp. `assumeUtc` lets a date-time without
 * an offset (Python's datetime.utcnow().isoformat()) count as UTC.
 */
export function convertTime(value: unknown, unit: TimeUnit, assumeUtc: boolean): Converted<string> {
  if (unit === 'rfc3339') {
    return typeof value === 'string' ? fromRfc3339(value, assumeUtc) : fail('expected an RFC 3339 timestamp (a string)');
  }
  const digits = decimalDigits(value);
  if (unit === 'auto') {
    if (digits) return fromEpoch(digits, autoUnit(digits.int));
    if (typeof value === 'string') return fromRfc3339(value, assumeUtc);
    if (typeof value === 'number') return fail('expected a time of at least 0 (1970 or later)');
    return fail('expected a timestamp (an RFC 3339 string or epoch seconds, milliseconds, microseconds or nanoseconds)');
  }
  if (!digits) {
    return fail(`expected epoch ${unit.slice(6)}: a number of at least 0, or a string of digits with an optional fraction`);
  }
  return fromEpoch(digits, unit);
}

interface Digits {
  int: string;
  frac: string;
}

/** The decimal digits of a non-negative number or numeric string; undefined for anything else. */
function decimalDigits(value: unknown): Digits | undefined {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined;
    text = Number.isInteger(value) && value < 1e21 ? BigInt(value).toString() : String(value);
    // Below 1e-6 String() writes an exponent: such a number is 0 with a fraction.
    if (text.includes('e')) return value < 1 ? { int: '0', frac: '000000001' } : undefined;
  } else if (typeof value === 'string') {
    text = value;
  } else {
    return undefined;
  }
  const m = NUMERIC.exec(text);
  if (!m) return undefined;
  return { int: m[1]!, frac: m[2] ?? '' };
}

/**
 * By magnitude: below 1e11 seconds (to the year 5138), below 1e14
 * milliseconds, below 1e17 microseconds, else nanoseconds. Milliseconds
 * before March 1973 read as seconds; a mapping that can meet them names its unit.
 */
function autoUnit(int: string): keyof typeof MS_EXPONENT {
  const n = BigInt(int);
  if (n < 100_000_000_000n) return 'epoch_s';
  if (n < 100_000_000_000_000n) return 'epoch_ms';
  if (n < 100_000_000_000_000_000n) return 'epoch_us';
  return 'epoch_ns';
}

function fromEpoch(d: Digits, unit: keyof typeof MS_EXPONENT): Converted<string> {
  const all = BigInt(d.int + d.frac);
  const shift = MS_EXPONENT[unit] - d.frac.length;
  let ms: bigint;
  let lossy = false;
  if (shift >= 0) {
    ms = all * 10n ** BigInt(shift);
  } else {
    const div = 10n ** BigInt(-shift);
    ms = all / div;
    lossy = all % div !== 0n;
  }
  if (ms > BigInt(MAX_TIME_MS)) return fail(`epoch ${unit.slice(6)} beyond the year 9999`);
  return { ok: true, value: toUtcTimestamp(Number(ms)), lossy };
}

function fromRfc3339(text: string, assumeUtc: boolean): Converted<string> {
  if (text.length > 40) return fail('not an RFC 3339 timestamp (too long)');
  const withOffset = assumeUtc && NAIVE.test(text) ? `${text}Z` : text;
  const ms = parseRfc3339(withOffset);
  if (ms === undefined) {
    return fail(
      NAIVE.test(text)
        ? 'an RFC 3339 timestamp needs an offset (Z or ±hh:mm); set assume_utc: true if these times are UTC'
        : 'not an RFC 3339 timestamp',
    );
  }
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) return fail('outside the years 0000-9999 once converted to UTC');
  const frac = FRACTION.exec(withOffset)?.[1] ?? '';
  return { ok: true, value: toUtcTimestamp(ms), lossy: /[1-9]/.test(frac.slice(3)) };
}

/** Numbers and booleans as the text JSON writes them; strings as they are. */
export function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return undefined;
}

/**
 * Adds an own data property under `key`, or under the next free `key#2`,
 * `key#3`, … when the name is taken, so no member is overwritten; plain
 * assignment of "__proto__" would set the prototype instead.
 */
export function defineFree(o: Record<string, unknown>, key: string, value: unknown): void {
  let name = key;
  for (let n = 2; Object.hasOwn(o, name); n++) name = `${key}#${n}`;
  defineKey(o, name, value);
}
