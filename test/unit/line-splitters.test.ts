import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/sidecar/sources/file-lines.js';
import { NdjsonLines, type StreamLine } from '../../src/sidecar/sources/ndjson-lines.js';
import type { SourceLine } from '../../src/sidecar/sources/file-source.js';

const MAX = 8;

/** every way to cut `bytes` in two */
function cuts(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes]];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

const input = Buffer.concat([
  Buffer.from('12345678\r\n'), // exactly at the limit, CRLF not counted
  Buffer.from('123456789\n'), // one over
  Buffer.from([0xff, 0x0a]), // invalid UTF-8
  Buffer.from('x'.repeat(40) + '\n'), // far over: overflows while kept
  Buffer.from('é\n'),
]);

describe('LineSplitter and NdjsonLines split alike', () => {
  it('whatever the chunk boundaries', () => {
    for (const parts of cuts(input)) {
      const file: SourceLine[] = [];
      const splitter = new LineSplitter(MAX);
      for (const p of parts) splitter.feed(p, (l) => file.push(l) > 0);
      const stream: StreamLine[] = [];
      const nd = new NdjsonLines(MAX);
      for (const p of parts) nd.push(p, stream);

      const expected = [
        { length: 10, text: '12345678' },
        { length: 10, code: 'line_too_long' },
        { length: 2, code: 'invalid_utf8' },
        { length: 41, code: 'line_too_long' },
        { length: 3, text: 'é' },
      ];
      expect(file.map((l) => ({ length: l.length, ...(l.error ? { code: l.error.code } : { text: l.text }) }))).toEqual(expected);
      expect(stream.map((l) => ({ length: l.length, ...(l.error ? { code: l.error.code } : { text: l.text }) }))).toEqual(expected);
      expect(file.map((l) => l.offset)).toEqual([0, 10, 20, 22, 63]);
      expect(stream.map((l) => l.line)).toEqual([1, 2, 3, 4, 5]);
      expect(splitter.position).toBe(input.length);
      expect(nd.end()).toBeUndefined();
    }
  });

  it('report an unfinished line as unterminated; NdjsonLines drops a blank one', () => {
    const splitter = new LineSplitter(MAX);
    splitter.feed(Buffer.from('a\nbc'), () => true);
    expect(splitter.takeUnterminated()).toMatchObject({ offset: 2, length: 2, error: { code: 'unterminated' } });
    expect(splitter.takeUnterminated()).toBeUndefined();

    const nd = new NdjsonLines(MAX);
    const out: StreamLine[] = [];
    nd.push(Buffer.from('a\n \t\r'), out);
    expect(nd.end()).toBeUndefined();
    nd.push(Buffer.from('a\n' + ' '.repeat(20)), out); // too long to be kept: not known to be blank
    expect(nd.end()).toMatchObject({ line: 3, length: 20, error: { code: 'unterminated' } });
  });

  it('LineSplitter.restore brings back the unfinished line as it was at snapshot', () => {
    const splitter = new LineSplitter(MAX);
    splitter.feed(Buffer.from('ab'), () => true);
    const before = splitter.snapshot();
    splitter.feed(Buffer.from('STALE\n'), () => true);
    splitter.restore(before);
    const got: SourceLine[] = [];
    splitter.feed(Buffer.from('c\n'), (l) => got.push(l) > 0);
    expect(got).toEqual([{ offset: 0, length: 4, text: 'abc' }]);
    // the snapshot stays usable after restore and later feeds
    splitter.restore(before);
    splitter.feed(Buffer.from('d\n'), (l) => got.push(l) > 0);
    expect(got[1]).toEqual({ offset: 0, length: 4, text: 'abd' });
  });
});
