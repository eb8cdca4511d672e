import { isUtf8 } from 'node:buffer';
import type { EventsCode, ScanCode } from '../../core/error-codes.js';
import { HttpError, SealtrailError } from '../../core/errors.js';
import { mediaTypeOf } from '../../http-body.js';
import type { IngestLine } from './types.js';
import { MAX_MAX_DEPTH } from '../redact/rules.js';

/**
 * Body of `POST /v1/events` → one IngestLine per event, or an HttpError
 * (EventsCode) carrying the status to answer with.
 *
 * Pure: no I/O, no clock. The body is validated whole before anything is
 * handed to Ingest, so a request is refused atomically (nothing committed)
 * for every fault the client can fix by resending; only what Ingest alone
 * can judge (the event schema, redaction limits) is left to per-event
 * quarantine. Error messages carry codes, counts, line numbers and event
 * indexes only: never a byte of the body.
 */

/**
 * How the body is laid out. The two CloudEvents types are the JSON event
 * format's structured mode (one event) and batched mode (an array of events);
 * their events are CloudEvents whatever the source's `format`.
 */
export type EventsFormat = 'json' | 'ndjson' | 'cloudevents' | 'cloudevents-batch';

const TYPES: ReadonlyMap<string, EventsFormat> = new Map<string, EventsFormat>([
  ['application/json', 'json'],
  ...['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines', 'application/jsonlines'].map(
    (t): [string, EventsFormat] => [t, 'ndjson'],
  ),
  ['application/cloudevents+json', 'cloudevents'],
  ['application/cloudevents-batch+json', 'cloudevents-batch'],
]);
export const ACCEPTED_CONTENT_TYPES = 'application/json, application/x-ndjson, application/cloudevents+json, application/cloudevents-batch+json';

/** Content-Type → format; anything else (including none) is 415. */
export function formatOf(contentType: string | undefined): EventsFormat {
  const { mediaType, utf8 } = mediaTypeOf(contentType);
  const format = TYPES.get(mediaType);
  if (!format) {
    throw new HttpError(415, 'content_type_unsupported', `Content-Type must be one of ${ACCEPTED_CONTENT_TYPES}`);
  }
  if (!utf8) throw new HttpError(415, 'content_type_unsupported', 'the only accepted charset is utf-8');
  return format;
}

export interface ParsedEvents {
  /** offset = 0-based event index, length = UTF-8 bytes of the event's text */
  lines: IngestLine[];
  /** 1-based line of the body where each event starts */
  lineNumbers: number[];
}

/**
 * Containers nested deeper than any ruleset may allow (max_depth ≤ MAX_MAX_DEPTH)
 * can only be quarantined; such an event is handed over as an error line
 * so that Ingest never JSON.parses it (a few MiB of "[" would otherwise
 * become millions of live arrays).
 */
export const NESTING_CAP = MAX_MAX_DEPTH + 2;

export function parseEventsBody(body: Buffer, format: EventsFormat, maxEvents: number): ParsedEvents {
  if (!isUtf8(body)) {
    const line = firstBadUtf8Line(body);
    throw new HttpError(400, 'invalid_utf8', `body is not valid UTF-8 (line ${line})`, { line });
  }
  let text = body.toString('utf8');
  // A byte order mark is tolerated at the very start only (RFC 8259 §8.1 lets parsers ignore it).
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (skipWs(text, 0) === text.length) throw new HttpError(400, 'body_empty', 'the body holds no events');
  const out: ParsedEvents = { lines: [], lineNumbers: [] };
  if (format === 'ndjson') {
    parseNdjson(text, maxEvents, out);
    return out;
  }
  // Structured mode is one event, batched mode always an array (even of one).
  const isArray = text.charCodeAt(skipWs(text, 0)) === LBRACKET;
  if (format === 'cloudevents' && isArray) {
    throw new HttpError(400, 'record_not_object', 'an application/cloudevents+json body is one event; send an array as application/cloudevents-batch+json', { index: 0, line: 1 });
  }
  if (format === 'cloudevents-batch' && !isArray) {
    throw new HttpError(400, 'json_invalid', 'an application/cloudevents-batch+json body is a JSON array of events', { index: 0, line: 1 });
  }
  parseJson(text, maxEvents, out);
  return out;
}

function add(out: ParsedEvents, text: string, line: number, tooDeep: boolean, maxEvents: number): void {
  const index = out.lines.length;
  if (index >= maxEvents) {
    throw new HttpError(413, 'too_many_events', `more than ${maxEvents} events in one request`, { index });
  }
  const length = Buffer.byteLength(text, 'utf8');
  out.lines.push(
    tooDeep
      ? { offset: index, length, error: { code: 'redact_too_deep', message: `event ${index} nests deeper than ${NESTING_CAP} levels` } }
      : { offset: index, length, text },
  );
  out.lineNumbers.push(line);
}

function notObject(index: number, line: number): HttpError<EventsCode> {
  return new HttpError(400, 'record_not_object', `event ${index} (line ${line}) is not a JSON object`, { index, line });
}

function parseNdjson(text: string, maxEvents: number, out: ParsedEvents): void {
  let start = 0;
  for (let lineNo = 1; start <= text.length; lineNo++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    const first = skipWs(line, 0);
    if (first === line.length) continue; // blank (or "\r" of a CRLF blank line)
    let scan: ScanResult;
    try {
      scan = scanValue(line, first);
      if (skipWs(line, scan.end) !== line.length) throw new ScanError(skipWs(line, scan.end));
    } catch (err) {
      if (err instanceof ScanError) throw invalidJson(lineNo, out.lines.length);
      throw err;
    }
    if (line.charCodeAt(first) !== LBRACE) throw notObject(out.lines.length, lineNo);
    // The text Ingest sees is the line as sent, minus the line terminator.
    add(out, line.charCodeAt(line.length - 1) === CR ? line.slice(0, -1) : line, lineNo, scan.maxDepth > NESTING_CAP, maxEvents);
  }
}

function parseJson(text: string, maxEvents: number, out: ParsedEvents): void {
  const lines = new LineCounter(text);
  const first = skipWs(text, 0);
  try {
    if (text.charCodeAt(first) !== LBRACKET) {
      const scan = scanValue(text, first);
      if (skipWs(text, scan.end) !== text.length) throw new ScanError(skipWs(text, scan.end));
      if (text.charCodeAt(first) !== LBRACE) throw notObject(0, lines.lineAt(first));
      add(out, text.slice(first, scan.end), lines.lineAt(first), scan.maxDepth > NESTING_CAP, maxEvents);
      return;
    }
    // An array of events: each element is scanned on its own and handed to
    // Ingest as the exact text the client sent (no re-serialisation, which
    // would e.g. turn 1e400 into null instead of letting Ingest refuse it).
    let i = skipWs(text, first + 1);
    if (text.charCodeAt(i) === RBRACKET) {
      i = skipWs(text, i + 1);
      if (i !== text.length) throw new ScanError(i);
      throw new HttpError(400, 'body_empty', 'the array holds no events');
    }
    for (;;) {
      const scan = scanValue(text, i);
      if (text.charCodeAt(i) !== LBRACE) throw notObject(out.lines.length, lines.lineAt(i));
      add(out, text.slice(i, scan.end), lines.lineAt(i), scan.maxDepth > NESTING_CAP, maxEvents);
      i = skipWs(text, scan.end);
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i = skipWs(text, i + 1);
        continue;
      }
      if (c !== RBRACKET) throw new ScanError(i);
      i = skipWs(text, i + 1);
      if (i !== text.length) throw new ScanError(i);
      return;
    }
  } catch (err) {
    if (err instanceof ScanError) throw invalidJson(lines.lineAt(err.pos), out.lines.length);
    throw err;
  }
}

function invalidJson(line: number, index: number): HttpError<EventsCode> {
  // index: the event being read when the fault was found (for an array body, the element).
  return new HttpError(400, 'json_invalid', `body is not valid JSON (line ${line}, event ${index})`, { line, index });
}

/** 1-based line of the first line holding a byte sequence that is not UTF-8. */
function firstBadUtf8Line(body: Buffer): number {
  let start = 0;
  for (let line = 1; ; line++) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    if (!isUtf8(body.subarray(start, end))) return line;
    if (end === body.length) return line;
    start = end + 1;
  }
}

/** Line numbers for increasing positions in one text, in time linear in the text overall. */
class LineCounter {
  private pos = 0;
  private line = 1;
  constructor(private readonly text: string) {}
  lineAt(pos: number): number {
    if (pos < this.pos) {
      this.pos = 0;
      this.line = 1;
    }
    for (;;) {
      const nl = this.text.indexOf('\n', this.pos);
      if (nl < 0 || nl >= pos) break;
      this.line++;
      this.pos = nl + 1;
    }
    return this.line;
  }
}

// ---- JSON scanner -----------------------------------------------------------
//
// A validating scanner for RFC 8259 (the grammar V8's JSON.parse accepts): it
// finds where a value ends and how deep it nests without building it, and
// runs in a loop with an explicit stack so hostile nesting cannot exhaust the
// call stack. The unit tests compare its verdict with JSON.parse.

const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CR = 0x0d;

/** Where the scanner found the text not to be JSON; the parsers above turn it into json_invalid with a line number. */
export class ScanError extends SealtrailError<ScanCode> {
  constructor(readonly pos: number) {
    super('json_invalid', `invalid JSON at position ${pos}`);
  }
}

export interface ScanResult {
  /** index just after the value */
  end: number;
  /** deepest container nesting inside the value (0 for a scalar) */
  maxDepth: number;
}

const STRING_RUN = /[^"\\\u0000-\u001f]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

function skipWs(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

function scanString(s: string, i: number): number {
  // s[i] is the opening quote
  i++;
  for (;;) {
    STRING_RUN.lastIndex = i;
    STRING_RUN.test(s);
    i = STRING_RUN.lastIndex;
    const c = s.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c !== BACKSLASH) throw new ScanError(i); // control character or end of text
    const e = s.charCodeAt(i + 1);
    if (e === 0x75 /* u */) {
      HEX4.lastIndex = i + 2;
      if (!HEX4.test(s)) throw new ScanError(i);
      i += 6;
    } else if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      i += 2;
    } else {
      throw new ScanError(i);
    }
  }
}

function scanScalar(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) return scanString(s, i);
  if (c === 0x74 && s.startsWith('true', i)) return i + 4;
  if (c === 0x66 && s.startsWith('false', i)) return i + 5;
  if (c === 0x6e && s.startsWith('null', i)) return i + 4;
  NUMBER.lastIndex = i;
  if (NUMBER.test(s)) return NUMBER.lastIndex;
  throw new ScanError(i);
}

/** Scans one JSON value starting at `i` (no leading whitespace skipped); throws ScanError. */
export function scanValue(s: string, i: number): ScanResult {
  // 1 = array, 2 = object; one byte per level keeps even a body of "[" cheap
  let stack = new Uint8Array(64);
  let depth = 0;
  let maxDepth = 0;
  const open = (kind: number): void => {
    if (depth === stack.length) {
      const bigger = new Uint8Array(stack.length * 2);
      bigger.set(stack);
      stack = bigger;
    }
    stack[depth++] = kind;
    if (depth > maxDepth) maxDepth = depth;
  };
  const member = (j: number): number => {
    // at a member name: "name" ws : ws
    if (s.charCodeAt(j) !== QUOTE) throw new ScanError(j);
    j = skipWs(s, scanString(s, j));
    if (s.charCodeAt(j) !== COLON) throw new ScanError(j);
    return skipWs(s, j + 1);
  };
  for (;;) {
    // at a value
    const c = s.charCodeAt(i);
    if (c === LBRACE) {
      i = skipWs(s, i + 1);
      if (s.charCodeAt(i) !== RBRACE) {
        open(2);
        i = member(i);
        continue;
      }
      i++;
      if (maxDepth < depth + 1) maxDepth = depth + 1;
    } else if (c === LBRACKET) {
      i = skipWs(s, i + 1);
      if (s.charCodeAt(i) !== RBRACKET) {
        open(1);
        continue;
      }
      i++;
      if (maxDepth < depth + 1) maxDepth = depth + 1;
    } else {
      i = scanScalar(s, i);
    }
    // after a value: close what ends here, or move to the next element
    for (;;) {
      if (depth === 0) return { end: i, maxDepth };
      i = skipWs(s, i);
      const d = s.charCodeAt(i);
      const kind = stack[depth - 1];
      if (d === COMMA) {
        i = skipWs(s, i + 1);
        if (kind === 2) i = member(i);
        break;
      }
      if (d === (kind === 1 ? RBRACKET : RBRACE)) {
        depth--;
        i++;
        continue;
      }
      throw new ScanError(i);
    }
  }
}
