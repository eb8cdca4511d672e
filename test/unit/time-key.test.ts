import { describe, expect, it } from 'vitest';
import { generalTimeKey, timeKey } from '../../src/core/time-key.js';
import { prng } from '../helpers/prng.js';

describe('timeKey', () => {
  it('reads the sidecar form exactly as the general RFC 3339 path does', () => {
    const rnd = prng(2026);
    const alphabet = '0123456789-:.TZtz+ x';
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(rnd() * 253402300799999);
      let s = new Date(ms).toISOString();
      if (s.length !== 24) continue;
      if (i % 2 === 1) {
        // Mutate one or two characters: digits mostly (calendar overflow, hour 24, month 13), sometimes separators.
        for (let k = 0; k < 1 + (i % 3 === 0 ? 1 : 0); k++) {
          const at = Math.floor(rnd() * 24);
          s = s.slice(0, at) + alphabet[Math.floor(rnd() * (rnd() < 0.8 ? 10 : alphabet.length))] + s.slice(at + 1);
        }
      }
      expect(timeKey(s), s).toBe(generalTimeKey(s));
    }
  });

  it('agrees on calendar edges, leap seconds and early years', () => {
    const cases = [
      '2024-02-29T00:00:00.000Z',
      '2023-02-29T00:00:00.000Z',
      '2024-02-30T12:00:00.000Z',
      '2024-04-31T00:00:00.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-00-10T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-01-01T23:60:00.000Z',
      '2016-12-31T23:59:60.000Z',
      '0099-06-01T00:00:00.000Z',
      '0100-06-01T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2024-01-01t00:00:00.000z',
      '2024-01-01T00:00:00.000+',
      '2024-01-01T00:00:00,000Z',
      '２０24-01-01T00:00:00.000Z',
    ];
    for (const s of cases) expect(timeKey(s), s).toBe(generalTimeKey(s));
    expect(timeKey('2024-02-29T00:00:00.123Z')).toBe(Date.UTC(2024, 1, 29, 0, 0, 0, 123) * 1000);
    expect(timeKey('2024-02-30T12:00:00.000Z')).toBeUndefined();
    expect(timeKey('0099-06-01T00:00:00.000Z')).toBe(generalTimeKey('0099-06-01T00:00:00.000Z'));
  });
});
