import { describe, expect, it } from 'vitest';
import { CopyEncodeError, copyBytea, copyInt, copyRow, copyText } from '../../src/collector/store/pg-copy-text.js';
import { prng } from '../helpers/prng.js';

/** The server's reading of one text-format field (PostgreSQL docs, COPY, "Text Format"), for the round trip below. */
function decodeField(f: string): string | null {
  if (f === '\\N') return null;
  return f.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r', '\\': '\\' })[c] ?? c);
}

describe('COPY text encoding', () => {
  it('escapes exactly backslash, tab, newline and carriage return', () => {
    expect(copyText('plain é 😀')).toBe('plain é 😀');
    expect(copyText('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyText('\\N')).toBe('\\\\N');
    expect(copyText('\\.')).toBe('\\\\.');
    expect(copyText(null)).toBe('\\N');
    expect(copyText('')).toBe('');
  });

  it('refuses a NUL instead of letting the server cut the field', () => {
    expect(() => copyText('a\u0000b')).toThrow(CopyEncodeError);
    try {
      copyText('\u0000');
    } catch (err) {
      expect((err as CopyEncodeError).code).toBe('copy_unencodable');
      expect((err as Error).message).not.toContain('\u0000');
    }
  });

  it('writes integers inside int8 as plain digits, including the time keys of years 0001 and 9999', () => {
    expect(copyInt(0)).toBe('0');
    expect(copyInt(-0)).toBe('0');
    expect(copyInt(2 ** 53 - 1)).toBe('9007199254740991');
    expect(copyInt(Date.UTC(9999, 11, 31, 23, 59, 59, 999) * 1000)).toBe('253402300799999000');
    expect(copyInt(-62135596800000000)).toBe('-62135596800000000'); // 0001-01-01T00:00:00Z
    // The shortest decimal of the double: Postgres stores that integer, which reads back as the same double.
    expect(copyInt(2 ** 62)).toBe('4611686018427388000');
    expect(Number('4611686018427388000')).toBe(2 ** 62);
    for (const bad of [1.5, Number.NaN, Infinity, -Infinity, 2 ** 63, -(2 ** 63), -0.5]) {
      expect(() => copyInt(bad), String(bad)).toThrow(CopyEncodeError);
    }
  });

  it('writes bytea as escaped hex, also for a view into a larger buffer', () => {
    const big = Buffer.from('00ff10ab', 'hex');
    expect(copyBytea(big)).toBe('\\\\x00ff10ab');
    expect(copyBytea(big.subarray(1, 3))).toBe('\\\\xff10');
    expect(decodeField(copyBytea(big))).toBe('\\x00ff10ab');
  });

  it('round-trips random strings through a row as the server splits and decodes it', () => {
    const rnd = prng(99);
    const alphabet = ['a', 'Z', '\t', '\n', '\r', '\\', 'N', '.', 'é', '😀', ' ', '"', "'"];
    for (let i = 0; i < 2000; i++) {
      const fields = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () =>
        rnd() < 0.1 ? null : Array.from({ length: Math.floor(rnd() * 8) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''),
      );
      const row = copyRow(fields.map(copyText));
      expect(row.endsWith('\n')).toBe(true);
      const body = row.slice(0, -1);
      // No raw row or field separator survives inside a field.
      expect(body.includes('\n') || body.includes('\r')).toBe(false);
      expect(body.split('\t').map(decodeField)).toEqual(fields);
    }
  });
});
