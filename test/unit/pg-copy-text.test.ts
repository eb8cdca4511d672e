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

  it('writes safe integers only', () => {
    expect(copyInt(0)).toBe('0');
    expect(copyInt(2 ** 53 - 1)).toBe('9007199254740991');
    for (const bad of [1.5, Number.NaN, Infinity, 2 ** 53, -0.5]) expect(() => copyInt(bad), String(bad)).toThrow(CopyEncodeError);
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
