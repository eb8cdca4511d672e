import { describe, expect, it } from 'vitest';
import { durationText, nanosFromDecimal, nanosFromNumber, nanosFromWords, rfc3339, rfc3339Nanos, type Nanos } from '../../src/sidecar/formats/otlp/nanos.js';
import { prng } from '../helpers/prng.js';

/** The reference: the same texts computed with BigInt, as the mapping did before. */
const ref = {
  ms: (n: bigint) => new Date(Number(n / 1_000_000n)).toISOString(),
  nanos: (n: bigint) => `${ref.ms(n).slice(0, -4)}${(n % 1_000_000_000n).toString().padStart(9, '0')}Z`,
  duration: (d: bigint) => `${d < 0n ? '-' : ''}${(d < 0n ? -d : d) / 1_000_000_000n}.${((d < 0n ? -d : d) % 1_000_000_000n).toString().padStart(9, '0')}s`,
};

const MAX = 2n ** 64n - 1n;
const words = (n: bigint): Nanos => nanosFromWords(Number(n & 0xffffffffn) | 0, Number(n >> 32n) | 0);

function sample(): bigint[] {
  const next = prng(20261207);
  const out = [0n, 1n, 999_999n, 1_000_000n, 1_000_001n, 999_999_999n, 1_000_000_000n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, MAX - 1n, MAX];
  out.push(1_760_000_001_000_000_005n, 1_796_639_289_106_000_000n);
  for (let i = 0; i < 2_000; i++) {
    // random 64-bit values, and values near real timestamps
    const hi = BigInt(Math.floor(next() * 2 ** 32));
    const lo = BigInt(Math.floor(next() * 2 ** 32));
    out.push((hi << 32n) | lo);
    out.push(1_700_000_000_000_000_000n + BigInt(Math.floor(next() * 2 ** 52)));
  }
  return out;
}

describe('nanos: OTLP timestamps without BigInt', () => {
  const values = sample();

  it('splits every 64-bit value the same way from a Long, a decimal string and (when safe) a number', () => {
    for (const n of values) {
      const want = { ms: Number(n / 1_000_000n), sub: Number(n % 1_000_000n) };
      expect(words(n)).toEqual(want);
      expect(nanosFromDecimal(n.toString())).toEqual(want);
      expect(nanosFromDecimal(`000${n}`)).toEqual(want);
      if (n <= BigInt(Number.MAX_SAFE_INTEGER)) expect(nanosFromNumber(Number(n))).toEqual(want);
    }
  });

  it('refuses decimals past 2^64 - 1, leading zeros or not', () => {
    expect(nanosFromDecimal('18446744073709551616')).toBeUndefined();
    expect(nanosFromDecimal('99999999999999999999')).toBeUndefined();
    expect(nanosFromDecimal('0018446744073709551616')).toBeUndefined();
    expect(nanosFromDecimal('018446744073709551615')).toEqual({ ms: 18_446_744_073_709, sub: 551_615 });
  });

  it('writes the same times as the BigInt reference, to the millisecond and to the nanosecond', () => {
    for (const n of values) {
      const t = words(n);
      expect(rfc3339(t)).toBe(ref.ms(n));
      expect(rfc3339Nanos(t)).toBe(ref.nanos(n));
    }
    expect(rfc3339Nanos(words(MAX))).toBe('2554-07-21T23:34:33.709551615Z');
  });

  it('writes runs of times within a minute and across minute, day and year ends as Date does (the formatter keeps the last minute)', () => {
    const starts = [0, Date.UTC(1999, 11, 31, 23, 58, 59, 990), Date.UTC(2028, 1, 28, 23, 59, 0, 0), Date.UTC(2026, 11, 7, 13, 59, 59, 999)];
    for (const start of starts) {
      for (let ms = start; ms < start + 150_000; ms += 7) {
        expect(rfc3339({ ms, sub: 0 })).toBe(new Date(ms).toISOString());
      }
    }
    // back and forth between two minutes
    for (const ms of [60_000, 59_999, 60_001, 119_999, 0, 120_000]) expect(rfc3339({ ms, sub: 5 })).toBe(new Date(ms).toISOString());
  });

  it('writes the same durations as the BigInt reference, negative ones too', () => {
    for (let i = 1; i < values.length; i++) {
      const [a, b] = [values[i - 1]!, values[i]!];
      expect(durationText(words(b), words(a))).toBe(ref.duration(b - a));
    }
    expect(durationText(words(5n), words(1_000_000_004n))).toBe('-0.999999999s');
    expect(durationText(words(MAX), words(0n))).toBe('18446744073.709551615s');
    expect(durationText(words(7n), words(7n))).toBe('0.000000000s');
  });
});
