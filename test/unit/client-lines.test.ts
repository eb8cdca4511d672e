import { describe, expect, it } from 'vitest';
import { parseAnswer } from '../../src/client/answers.js';
import { LineBook } from '../../src/client/lines.js';
import type { Entry } from '../../src/client/queue.js';

/**
 * Line bookkeeping of the socket transport: lines numbered per connection
 * from 1 as the socket source numbers them, answers mapped back to their
 * emits, and on a new connection every unanswered emit written again, in
 * emit order, from line 1.
 */

function entry(id: string): Entry {
  return { eventId: id, line: Buffer.from(`{"event_type":"t","event_id":"${id}"}\n`), settled: false, timer: undefined, resolve: () => undefined, reject: () => undefined };
}

const ids = (buf: Buffer | undefined): string[] =>
  (buf?.toString('utf8') ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { event_id: string }).event_id);

describe('LineBook', () => {
  it('numbers the lines of a connection from 1 in the order written and maps each answer back once', () => {
    const [a, b, c] = [entry('a'), entry('b'), entry('c')];
    const book = new LineBook([a, b]);
    expect(ids(book.take(1 << 20))).toEqual(['a', 'b']);
    book.enqueue(c);
    expect(book.unsentCount).toBe(1);
    expect(ids(book.take(1 << 20))).toEqual(['c']);
    expect(book.unanswered).toBe(3);
    expect(book.answer(2)).toBe(b);
    expect(book.answer(2)).toBeUndefined();
    expect(book.answer(1)).toBe(a);
    expect(book.answer(3)).toBe(c);
    expect(book.answer(4)).toBeUndefined();
    expect(book.take(1 << 20)).toBeUndefined();
  });

  it('cuts writes at about maxBytes, whole lines only, at least one line each', () => {
    const es = ['a', 'b', 'c', 'd'].map(entry);
    const len = es[0]!.line.length;
    const book = new LineBook(es);
    expect(ids(book.take(len * 2))).toEqual(['a', 'b']);
    expect(ids(book.take(1))).toEqual(['c']);
    expect(ids(book.take(len * 10))).toEqual(['d']);
    expect(book.answer(3)?.eventId).toBe('c');
  });

  it('skips an entry settled before it was written (timed out) without giving it a number', () => {
    const [a, b, c] = [entry('a'), entry('b'), entry('c')];
    b.settled = true;
    const book = new LineBook([a, b, c]);
    expect(ids(book.take(1 << 20))).toEqual(['a', 'c']);
    expect(book.answer(2)).toBe(c);
  });

  it('a new connection renumbers the unanswered emits from 1, in emit order, with the same bytes', () => {
    const es = ['a', 'b', 'c', 'd', 'e'].map(entry);
    const first = new LineBook(es);
    const sent = first.take(1 << 20)!;
    // Lines 1 and 3 answered; the connection drops with 2, 4, 5 in flight.
    const pending = new Set(es);
    pending.delete(first.answer(1)!);
    pending.delete(first.answer(3)!);
    const second = new LineBook(pending);
    const resent = second.take(1 << 20)!;
    expect(ids(resent)).toEqual(['b', 'd', 'e']);
    expect(resent.toString()).toBe([es[1], es[3], es[4]].map((e) => e!.line.toString()).join(''));
    expect(sent.toString()).toContain(resent.toString().split('\n')[0]);
    expect(second.answer(1)?.eventId).toBe('b');
    expect(second.answer(2)?.eventId).toBe('d');
    expect(second.answer(3)?.eventId).toBe('e');
  });

  it('keeps numbering right over many writes (compaction of what was written)', () => {
    const book = new LineBook();
    const all: Entry[] = [];
    for (let i = 0; i < 5000; i++) {
      const e = entry(String(i));
      all.push(e);
      book.enqueue(e);
      if (i % 7 === 0) book.take(1 << 20);
    }
    book.take(1 << 20);
    for (let n = 1; n <= 5000; n++) expect(book.answer(n)).toBe(all[n - 1]);
  });
});

describe('parseAnswer', () => {
  it('reads the socket source answers', () => {
    expect(parseAnswer('{"ack":3,"seq":42}')).toEqual({ kind: 'ack', line: 3, seq: 42 });
    expect(parseAnswer('{"ack":1,"seq":0,"records":3}')).toEqual({ kind: 'ack', line: 1, seq: 0, records: 3 });
    expect(parseAnswer('{"ack":2,"records":0}')).toEqual({ kind: 'ack', line: 2, records: 0 });
    expect(parseAnswer('{"ack":4,"seq":9,"duplicate":true}')).toEqual({ kind: 'ack', line: 4, seq: 9, duplicate: true });
    expect(parseAnswer('{"line":2,"error":{"code":"json_invalid","message":"line is not valid JSON"}}')).toEqual({
      kind: 'refused',
      line: 2,
      code: 'json_invalid',
      message: 'line is not valid JSON',
    });
    expect(parseAnswer('{"error":{"code":"source_closed","message":"the sidecar is shutting down"}}')).toEqual({
      kind: 'connection',
      code: 'source_closed',
      message: 'the sidecar is shutting down',
    });
  });

  it('never takes something else for an ack', () => {
    for (const t of ['', 'x', '[]', 'null', '{"ack":0,"seq":1}', '{"ack":1}', '{"ack":1,"seq":-1}', '{"ack":"1","seq":1}', '{"ack":1,"seq":1.5}', '{"ack":1,"records":2}', '{"line":0,"error":{"code":"x"}}', '{"ack":1,"seq":1,"duplicate":"yes"}', '{"line":1,"error":{}}', '{"error":"x"}']) {
      expect(parseAnswer(t), t).toEqual({ kind: 'unreadable' });
    }
  });
});
