import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { MAX_TIME_MS, MIN_TIME_MS, normaliseTime, parseRfc3339, toUtcTimestamp } from '../../src/core/time.js';
import { timeKey } from '../../src/core/time-key.js';
import { prng } from '../helpers/prng.js';

const CANARY = 'CANARY-time-9a1b';

describe('parseRfc3339', () => {
  it.each([
    ['2024-01-01T00:00:00Z', Date.UTC(2024, 0, 1)],
    ['2024-01-01T00:00:00z', Date.UTC(2024, 0, 1)],
    ['2024-01-01t00:00:00Z', Date.UTC(2024, 0, 1)],
    ['2024-02-29T12:34:56Z', Date.UTC(2024, 1, 29, 12, 34, 56)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['2024-12-31T23:59:59.999Z', Date.UTC(2024, 11, 31, 23, 59, 59, 999)],
    ['2024-01-01T00:00:00.5Z', Date.UTC(2024, 0, 1, 0, 0, 0, 500)],
    ['2024-01-01T00:00:00.12Z', Date.UTC(2024, 0, 1, 0, 0, 0, 120)],
    ['2024-01-01T00:00:00.123456789Z', Date.UTC(2024, 0, 1, 0, 0, 0, 123)],
    ['2024-01-01T00:00:00.999999Z', Date.UTC(2024, 0, 1, 0, 0, 0, 999)],
    ['2024-01-01T05:30:00+05:30', Date.UTC(2024, 0, 1)],
    ['2023-12-31T19:00:00-05:00', Date.UTC(2024, 0, 1)],
    ['2024-01-01T00:00:00+00:00', Date.UTC(2024, 0, 1)],
    ['2024-01-01T00:00:00-00:00', Date.UTC(2024, 0, 1)],
    ['1970-01-01T00:00:00Z', 0],
    ['1969-12-31T23:59:59Z', -1000],
    ['9999-12-31T23:59:59.999Z', 253402300799999],
  ])('accepts %s', (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each([
    '2024-02-30T00:00:00Z',
    '2023-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-06-31T00:00:00Z',
    '2024-00-10T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-01-00T00:00:00Z',
    '2024-01-32T00:00:00Z',
    '2024-01-01T24:00:00Z',
    '2024-01-01T23:60:00Z',
    '2024-01-01T23:59:61Z',
    '2024-01-01T00:00:00+24:00',
    '2024-01-01T00:00:00+99:99',
    '2024',
    '2024-01',
    '2024-01-01',
    'March 1',
    'March 1, 2024',
    'Mon, 01 Jan 2024 00:00:00 GMT',
    '2024-01-01T00:00:00',
    '2024-01-01T00:00Z',
    '2024-01-01 00:00:00Z',
    '2024-01-01T00:00:00.Z',
    '2024-01-01T00:00:00.1234567890Z',
    '2024-01-01T00:00:00+0100',
    '2024-01-01T00:00:00+01',
    '+002024-01-01T00:00:00Z',
    '24-01-01T00:00:00Z',
    ' 2024-01-01T00:00:00Z',
    '2024-01-01T00:00:00Z ',
    '2024-01-01T00:00:00Z\n',
    '２０２４-01-01T00:00:00Z',
    '2024-01-01T00:00:00GMT',
    '',
    'x'.repeat(1000),
  ])('refuses %j', (text) => {
    expect(parseRfc3339(text)).toBeUndefined();
  });

  it('never accepts an over-long string, even if it starts like a timestamp', () => {
    expect(parseRfc3339(`2024-01-01T00:00:00.000000000Z${'0'.repeat(40)}`)).toBeUndefined();
  });
});

describe('normaliseTime', () => {
  it('normalises strings to UTC with millisecond precision', () => {
    expect(normaliseTime('2024-01-01T01:00:00+01:00', 'time')).toBe('2024-01-01T00:00:00.000Z');
    expect(normaliseTime('2024-01-01T00:00:00.1Z', 'time')).toBe('2024-01-01T00:00:00.100Z');
  });

  it('accepts epoch milliseconds in 1970..9999', () => {
    expect(normaliseTime(0, 't')).toBe('1970-01-01T00:00:00.000Z');
    expect(normaliseTime(1_704_067_200_000, 't')).toBe('2024-01-01T00:00:00.000Z');
    expect(normaliseTime(253402300799999, 't')).toBe('9999-12-31T23:59:59.999Z');
  });

  it.each([-1, -1e15, 253402300800000, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'refuses epoch milliseconds out of range: %s',
    (n) => {
      let caught: unknown;
      try {
        normaliseTime(n, 'when');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InputError);
      expect((caught as InputError).code).toBe('record_invalid');
      expect((caught as InputError).message).toContain('when');
    },
  );

  it.each([true, null, undefined, {}, [], [CANARY], { t: CANARY }, CANARY, `2024-01-01T00:00:00Z${CANARY}`, 'March 1', '2024', '2024-02-30T00:00:00Z'])(
    'refuses %j naming the field but not the value',
    (v) => {
      let caught: unknown;
      try {
        normaliseTime(v, 'my_field');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InputError);
      const e = caught as InputError;
      expect(e.code).toBe('record_invalid');
      expect(e.message).toContain('my_field');
      expect(e.message).not.toContain(CANARY);
    },
  );

  it('round-trips its own output', () => {
    for (const ms of [0, 1, 999, 1_704_067_200_123, 253402300799999]) {
      const s = toUtcTimestamp(ms);
      expect(normaliseTime(s, 't')).toBe(s);
      expect(parseRfc3339(s)).toBe(ms);
    }
  });
});

describe('what normaliseTime writes, every collector can key', () => {
  it('accepts Feb 29 of year 0000 (a leap year; Date.UTC would have taken it for 1900)', () => {
    expect(parseRfc3339('0000-02-29T00:00:00Z')).toBe(MIN_TIME_MS + 59 * 86_400_000);
    expect(parseRfc3339('0004-02-29T00:00:00Z')).toBeDefined();
    expect(parseRfc3339('0100-02-29T00:00:00Z')).toBeUndefined();
    expect(parseRfc3339('1900-02-29T00:00:00Z')).toBeUndefined();
  });

  it.each(['9999-12-31T23:30:00-01:00', '0000-01-01T00:30:00+01:00', '9999-12-31T23:59:59.999-00:01'])(
    'refuses %s: converted to UTC it leaves the four-digit years',
    (t) => {
      expect(() => normaliseTime(t, 'time')).toThrow(/outside the years 0000-9999/);
    },
  );

  it('writes only times the collector keys, including offsets that cross a year or a leap day', () => {
    const edge = ['0000-03-01T00:30:00+01:00', '0000-01-01T00:30:00-01:00', '9999-12-31T23:30:00+01:00', '0099-12-31T23:59:59.999Z'];
    for (const t of edge) {
      const out = normaliseTime(t, 'time');
      expect(timeKey(out), `${t} -> ${out}`).toBe(parseRfc3339(t)! * 1000);
    }
    const rnd = prng(0x7e11);
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(MIN_TIME_MS + rnd() * (MAX_TIME_MS - MIN_TIME_MS));
      const out = normaliseTime(new Date(ms).toISOString(), 'time');
      expect(timeKey(out)).toBe(ms * 1000);
      if (ms >= 0) expect(timeKey(normaliseTime(ms, 'time'))).toBe(ms * 1000);
    }
  });
});
