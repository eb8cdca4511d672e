import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/core/errors.js';
import { formatOf, NESTING_CAP, parseEventsBody, scanValue, ScanError, type EventsFormat } from '../../src/sidecar/sources/events-body.js';
import { thrown } from '../helpers/errors.js';
import { prng } from '../helpers/prng.js';

const CANARY = 'CANARY-jane.doe@example.com-4111111111111111';

function parse(text: string | Buffer, format: EventsFormat = 'json', maxEvents = 10_000) {
  return parseEventsBody(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, format, maxEvents);
}

function refusal(text: string | Buffer, format: EventsFormat = 'json', maxEvents = 10_000): HttpError {
  const err = thrown(() => parse(text, format, maxEvents), HttpError);
  expect(err.message).not.toContain('CANARY');
  return err;
}

/** Does the scanner accept `s` as exactly one JSON value with optional surrounding whitespace? */
function scannerAccepts(s: string): boolean {
  try {
    let i = 0;
    while (' \t\n\r'.includes(s[i] ?? 'x')) i++;
    let end = scanValue(s, i).end;
    while (' \t\n\r'.includes(s[end] ?? 'x')) end++;
    return end === s.length;
  } catch (err) {
    if (err instanceof ScanError) return false;
    throw err;
  }
}

function parserAccepts(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

describe('formatOf', () => {
  it('maps JSON and NDJSON media types, ignoring case and a utf-8 charset', () => {
    expect(formatOf('application/json')).toBe('json');
    expect(formatOf('Application/JSON; charset=UTF-8')).toBe('json');
    expect(formatOf('application/json;charset="utf-8"')).toBe('json');
    expect(formatOf('application/x-ndjson')).toBe('ndjson');
    expect(formatOf('application/ndjson; charset=utf-8')).toBe('ndjson');
    expect(formatOf('application/jsonl')).toBe('ndjson');
    expect(formatOf('application/x-jsonlines')).toBe('ndjson');
  });

  it('refuses other media types, no media type and other charsets with 415', () => {
    for (const ct of [undefined, '', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/json; charset=latin1', 'application/x-ndjson; charset=utf-16']) {
      const err = thrown(() => formatOf(ct), HttpError);
      expect(err.status).toBe(415);
      expect(err.code).toBe('content_type_unsupported');
    }
  });
});

describe('CloudEvents bodies (application/cloudevents+json, -batch+json)', () => {
  const ce = (id: string): string => `{"specversion":"1.0","id":"${id}","source":"/agent","type":"tool.invoked"}`;

  it('maps both media types, with a utf-8 charset too', () => {
    expect(formatOf('application/cloudevents+json')).toBe('cloudevents');
    expect(formatOf('application/cloudevents+json; charset=UTF-8')).toBe('cloudevents');
    expect(formatOf('application/cloudevents-batch+json')).toBe('cloudevents-batch');
    expect(thrown(() => formatOf('application/cloudevents+json; charset=latin1'), HttpError).status).toBe(415);
  });

  it('takes one structured event, and a batch as one line per element, each the exact text sent', () => {
    expect(parse(ce('a'), 'cloudevents').lines).toEqual([{ offset: 0, length: ce('a').length, text: ce('a') }]);
    const batch = parse(`[${ce('a')},\n ${ce('b')}]`, 'cloudevents-batch');
    expect(batch.lines.map((l) => l.text)).toEqual([ce('a'), ce('b')]);
    expect(batch.lineNumbers).toEqual([1, 2]);
  });

  it('refuses an array sent as one event and a single event sent as a batch, naming the right media type', () => {
    const one = refusal(`[${ce('a')}]`, 'cloudevents');
    expect([one.status, one.code]).toEqual([400, 'record_not_object']);
    expect(one.message).toContain('application/cloudevents-batch+json');
    const batch = refusal(ce('a'), 'cloudevents-batch');
    expect([batch.status, batch.code]).toEqual([400, 'json_invalid']);
    expect(batch.message).toContain('JSON array');
    expect(refusal('[]', 'cloudevents-batch').code).toBe('body_empty');
    expect(refusal(`[${ce('a')}, 5]`, 'cloudevents-batch').code).toBe('record_not_object');
  });
});

describe('parseEventsBody: accepted bodies', () => {
  it('hands a single object over as the exact text sent, as event 0', () => {
    const body = ' \n {"event_type":"login","who":"\\u0040x", "n": 1e400}\n';
    const { lines, lineNumbers } = parse(body);
    expect(lines).toEqual([{ offset: 0, length: Buffer.byteLength('{"event_type":"login","who":"\\u0040x", "n": 1e400}'), text: '{"event_type":"login","who":"\\u0040x", "n": 1e400}' }]);
    expect(lineNumbers).toEqual([2]);
  });

  it('slices array elements verbatim (escapes, spacing, big numbers kept), offset = index, length = UTF-8 bytes', () => {
    const elems = ['{"a":"\\u00e9t\\u00e9"}', '{ "b" : [1, 2.5e3, -0, {"c": null}] }', '{"ü":"ß€😀","n":1e400}', '{"__proto__":{"x":1}}'];
    const body = `[\n  ${elems[0]},\n  ${elems[1]},${elems[2]}\r\n,\t${elems[3]}\n]\n`;
    const { lines, lineNumbers } = parse(body);
    expect(lines.map((l) => l.text)).toEqual(elems);
    expect(lines.map((l) => l.offset)).toEqual([0, 1, 2, 3]);
    expect(lines.map((l) => l.length)).toEqual(elems.map((e) => Buffer.byteLength(e, 'utf8')));
    expect(lineNumbers).toEqual([2, 3, 3, 4]);
  });

  it('reads NDJSON line by line: blank lines skipped, CRLF stripped, line numbers kept', () => {
    const body = '{"a":1}\r\n\r\n   \n{"b":2}\n\t\n{"c":"x"}';
    const { lines, lineNumbers } = parse(body, 'ndjson');
    expect(lines.map((l) => l.text)).toEqual(['{"a":1}', '{"b":2}', '{"c":"x"}']);
    expect(lines.map((l) => l.offset)).toEqual([0, 1, 2]);
    expect(lineNumbers).toEqual([1, 4, 6]);
  });

  it('ignores a UTF-8 byte order mark at the start', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[{"a":1}]')]);
    expect(parse(body).lines.map((l) => l.text)).toEqual(['{"a":1}']);
  });

  it('keeps lone surrogate escapes for Ingest to replace', () => {
    const { lines } = parse('[{"s":"\\ud800"},{"s":"\\udc00x"}]');
    expect(lines.map((l) => l.text)).toEqual(['{"s":"\\ud800"}', '{"s":"\\udc00x"}']);
  });

  it('accepts exactly maxEvents events', () => {
    expect(parse('[{},{},{}]', 'json', 3).lines).toHaveLength(3);
    expect(parse('{}\n{}\n{}\n', 'ndjson', 3).lines).toHaveLength(3);
  });

  it('passes moderately deep events on, and turns events deeper than any ruleset allows into error lines', () => {
    const deep = (n: number): string => `{"a":${'['.repeat(n - 1)}${']'.repeat(n - 1)}}`;
    const { lines } = parse(`[${deep(70)},${deep(NESTING_CAP + 1)},{"ok":true}]`);
    expect(lines[0]!.text).toBe(deep(70));
    expect(lines[1]!.text).toBeUndefined();
    expect(lines[1]!.error?.code).toBe('redact_too_deep');
    expect(lines[1]!.length).toBe(deep(NESTING_CAP + 1).length);
    expect(lines[2]!.text).toBe('{"ok":true}');
    const nd = parse(`${deep(NESTING_CAP)}\n${deep(NESTING_CAP + 1)}\n`, 'ndjson');
    expect(nd.lines[0]!.text).toBe(deep(NESTING_CAP));
    expect(nd.lines[1]!.error?.code).toBe('redact_too_deep');
  });
});

describe('parseEventsBody: refused bodies', () => {
  it('refuses an empty, blank or empty-array body', () => {
    for (const [body, format] of [['', 'json'], [' \r\n\t', 'json'], ['\n\n\r\n', 'ndjson'], ['[]', 'json'], [' [ \n ] ', 'json']] as const) {
      const err = refusal(body, format);
      expect([err.status, err.code]).toEqual([400, 'body_empty']);
    }
  });

  it('names the line (and event) of malformed JSON, never its content', () => {
    let err = refusal(`[\n{"a":1},\n{"b":"${CANARY}",}\n]`);
    expect([err.status, err.code, err.line, err.index]).toEqual([400, 'json_invalid', 3, 1]);
    expect(err.message).toBe('body is not valid JSON (line 3, event 1)');
    err = refusal(`{"a":"${CANARY}"`);
    expect([err.code, err.line]).toEqual(['json_invalid', 1]);
    err = refusal(`[{"a":1}] {"x":"${CANARY}"}`);
    expect(err.code).toBe('json_invalid');
    err = refusal(`[{"a":1}`);
    expect(err.code).toBe('json_invalid');
    err = refusal(`{"a":1}\n{"b":2}`);
    expect([err.code, err.line]).toEqual(['json_invalid', 2]);
    err = refusal(`{"a":1}\n{"b":2}\r\n{"c":"${CANARY}\n`, 'ndjson');
    expect([err.code, err.line, err.index]).toEqual(['json_invalid', 3, 2]);
    err = refusal(`{"a":1} {"b":"${CANARY}"}\n`, 'ndjson');
    expect([err.code, err.line]).toEqual(['json_invalid', 1]);
  });

  it('refuses events that are not objects, naming their index', () => {
    let err = refusal(`[{"a":1}, "${CANARY}", {"b":2}]`);
    expect([err.status, err.code, err.index, err.line]).toEqual([400, 'record_not_object', 1, 1]);
    err = refusal(`[{"a":1}, [{"b":2}]]`);
    expect([err.code, err.index]).toEqual(['record_not_object', 1]);
    for (const top of ['"x"', '42', 'null', 'true']) expect(refusal(top).code).toBe('record_not_object');
    err = refusal(`{"a":1}\n\n[{"b":"${CANARY}"}]\n`, 'ndjson');
    expect([err.code, err.index, err.line]).toEqual(['record_not_object', 1, 3]);
  });

  it('refuses a body with more than maxEvents events with 413', () => {
    let err = refusal('[{},{},{},{}]', 'json', 3);
    expect([err.status, err.code]).toEqual([413, 'too_many_events']);
    err = refusal('{}\n{}\n{}\n{}\n', 'ndjson', 3);
    expect([err.status, err.code]).toEqual([413, 'too_many_events']);
  });

  it('refuses bytes that are not UTF-8, naming the line', () => {
    const body = Buffer.concat([Buffer.from('{"a":1}\n{"b":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(`${CANARY}"}\n`)]);
    let err = refusal(body, 'ndjson');
    expect([err.status, err.code, err.line]).toEqual([400, 'invalid_utf8', 2]);
    // an encoded surrogate (CESU-8) is not UTF-8 either
    err = refusal(Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]));
    expect([err.code, err.line]).toEqual(['invalid_utf8', 1]);
  });

  it('finds the end of a hostile body without recursion: millions of "["', () => {
    const err = refusal('['.repeat(5_000_000));
    expect(err.code).toBe('json_invalid');
    const nd = refusal(`{"a":${'['.repeat(2_000_000)}\n`, 'ndjson');
    expect(nd.code).toBe('json_invalid');
  });
});

describe('scanValue agrees with JSON.parse', () => {
  const fixed = [
    '{}', '[]', '""', '0', '-0', '1.5e-3', '1E+2', 'true', 'false', 'null', '{"a":[1,{"b":null}]}', ' [ 1 , 2 ] ',
    '"\\u0041\\n\\t\\/\\b\\f\\r\\"\\\\"', '"\\uD83D\\uDE00"', '"\\ud800"', '"é€😀"', '1e400', '123456789012345678901234567890',
    '', ' ', '{', '}', '[', '[1,]', '{"a":1,}', '{"a"}', '{a:1}', "{'a':1}", '01', '-', '1.', '.5', '1e', '+1', '0x10',
    'NaN', 'Infinity', 'tru', 'nul', 'True', '"\\x41"', '"\\u12"', '"\\u12G4"', '"a\nb"', '"a\tb"', '"\u0000"', '"\u001f"',
    '"\u007f"', '"\u2028"', '[1 2]', '{"a":1 "b":2}', '{"a" 1}', '1 2', '"abc', '\u00a01', '1\u00a0', '\ufeff1', '[][]',
    '{"a":1}}', '[[]', '[]]', '/*x*/1', '1//x', '-01', '1.0e+', '-1.0E-0',
  ];

  it('on fixed cases', () => {
    for (const s of fixed) expect([s, scannerAccepts(s)]).toEqual([s, parserAccepts(s)]);
  });

  it('on random valid documents and their mutations', () => {
    const rnd = prng(0x5ea1);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const ws = (): string => (rnd() < 0.7 ? '' : pick([' ', '\n', '\r\n', '\t', '  ']));
    const scalars = ['0', '-1', '3.25', '1e5', '-2E-3', 'true', 'false', 'null', '""', '"x"', '"\\u00e9"', '"\\n"', '"é😀"', '"\\ud800"'];
    const value = (d: number): string => {
      const r = rnd();
      if (d > 4 || r < 0.4) return pick(scalars);
      if (r < 0.7) {
        const n = Math.floor(rnd() * 4);
        return `[${ws()}${Array.from({ length: n }, () => `${ws()}${value(d + 1)}${ws()}`).join(',')}]`;
      }
      const n = Math.floor(rnd() * 4);
      return `{${ws()}${Array.from({ length: n }, (_, i) => `${ws()}"k${i}"${ws()}:${ws()}${value(d + 1)}${ws()}`).join(',')}}`;
    };
    const alphabet = ['{', '}', '[', ']', ',', ':', '"', '\\', 'u', '0', '1', '-', '.', 'e', '+', ' ', '\n', 't', 'x', '\u0001', 'é'];
    let disagreements = 0;
    let rejectedSeen = 0;
    for (let n = 0; n < 20_000; n++) {
      let s = `${ws()}${value(0)}${ws()}`;
      const edits = Math.floor(rnd() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rnd() * (s.length + 1));
        const op = rnd();
        if (op < 0.4) s = s.slice(0, at) + pick(alphabet) + s.slice(at);
        else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1);
        else s = s.slice(0, at) + pick(alphabet) + s.slice(at + 1);
      }
      const expected = parserAccepts(s);
      if (!expected) rejectedSeen++;
      if (scannerAccepts(s) !== expected) disagreements++;
    }
    expect(disagreements).toBe(0);
    // the mutations did produce both kinds of input
    expect(rejectedSeen).toBeGreaterThan(1000);
    expect(rejectedSeen).toBeLessThan(19_000);
  });
});
