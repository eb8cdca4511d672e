/**
 * The redaction bypass corpus through OTLP (issue 12, item 7).
 *
 * The canaries of redaction-bypass.test.ts (JSON escapes, full-width
 * digits, object keys, bare numbers, base64 / base64url / percent-encoding,
 * deep nesting, huge strings, invalid UTF-8, lone surrogates, the secrets
 * pack's shapes) are sent to a real sidecar's OTLP/HTTP receiver (a
 * `type: otlp` source) and shipped to a real collector, each canary in
 * every place OTLP can carry text:
 *
 *   a      a span attribute's value
 *   b      a span attribute's key
 *   c      a span event's attributes (a GenAI message event,
 *          gen_ai.user.message with a `content` attribute)
 *   d-str  a log record's body, as a string
 *   d-kv   a log record's body, as a kvlist
 *   e      inside the JSON text of gen_ai.tool.call.arguments (which the
 *          mapping parses into tool.arguments)
 *   f-span a resource attribute of a traces request
 *   f-log  a resource attribute of a logs request
 *
 * each in both encodings (application/x-protobuf and application/json),
 * about half of the requests gzip-compressed; one span or log record per
 * request, so a request the receiver refuses takes no other case with it.
 *
 * What OTLP cannot express is sent all the same, as a client could: invalid
 * UTF-8 inside a protobuf string or a JSON body, a lone surrogate written as
 * the three bytes UTF-8 forbids (in protobuf) or as a \ud800 escape (in
 * JSON, and inside the tool-arguments JSON text), AnyValues nested past
 * OTLP's 64 levels. Every (case, place, encoding) has one expected outcome,
 * asserted: stored and redacted; refused whole with a 400 that leaves one
 * quarantine row; or taken in and quarantined as an item (a partial
 * success).
 *
 * Afterwards every byte the deployment wrote (both SQLite files with their
 * WAL and SHM while running and again after SIGTERM, every log line of both
 * programs, the receiver's answers, what the collector serves) is searched
 * for every encoding encodingsOf() knows of every canary. Nothing is exempt:
 * no input file exists, the input went over HTTP.
 */
import { rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import protobuf from 'protobufjs';
import type { Type } from 'protobufjs';
import { request } from 'undici';
import { B64URL, ESCAPE_ALL, FULL_WIDTH_ASCII, FULL_WIDTH_DIGIT, luhnComplete, PERCENT_ALL } from '../helpers/pii-encodings.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { otlpTypes } from '../../src/sidecar/formats/otlp/proto.js';
import { getJson, makeDeployment, queryAll, type Deployment } from '../helpers/deployment.js';
import { freePort, runCli, stop, type Proc } from '../helpers/procs.js';
import {
  findLeaks,
  packPath,
  readAllFiles,
  startCollector,
  startSidecar,
  waitDelivered,
  type FileBytes,
} from '../helpers/redaction-deployment.js';

const PACKS = ['pii-basic', 'secrets'];
/** OTLP's limit on AnyValue nesting (docs/otlp.md) */
const MAX_ANY_DEPTH = 64;

// ------------------------------------------------------------------ values that carry a canary

/**
 * A string that a JavaScript string cannot stand for on the wire: written
 * with JSON escapes, or holding bytes that are not UTF-8, or a lone
 * surrogate. It is put into a request as a placeholder of its own, which
 * the encoded body has replaced by these bytes (length-preserving in
 * protobuf, so no length prefix changes).
 */
class Raw {
  private static count = 0;
  readonly n = Raw.count++;
  constructor(
    /** the bytes of the protobuf string field */
    readonly pb: Buffer,
    /** the JSON string literal (quotes included) in an OTLP/JSON body */
    readonly jsonLiteral: Buffer,
    /** the literal's content inside a JSON text that is itself a string value (the tool arguments) */
    readonly inner: Buffer,
    /** the same, escaped once more as it stands inside an OTLP/JSON body */
    readonly innerInJson: Buffer,
  ) {}
}

/** UTF-8 that also writes lone surrogates, as three bytes each (what a careless encoder sends; UTF-8 forbids it). */
function wtf8(s: string): Buffer {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Buffer.from(out);
}

/** A string written as JSON string content with escapes (ASCII), e.g. `a\u0040b` or `\ud800x`. */
function escaped(content: string): Raw {
  if (!/^[\x20-\x7e]*$/.test(content)) throw new Error('escaped(): ASCII only');
  const decoded = JSON.parse(`"${content}"`) as string;
  return new Raw(wtf8(decoded), Buffer.from(`"${content}"`), Buffer.from(content), Buffer.from(JSON.stringify(content).slice(1, -1)));
}

/** A string holding bytes that are not UTF-8 (no quote, backslash or control byte among them). */
function badBytes(bytes: Buffer): Raw {
  if (bytes.some((b) => b === 0x22 || b === 0x5c || b < 0x20)) throw new Error('badBytes(): no quote, backslash or control byte');
  return new Raw(bytes, Buffer.concat([Buffer.from('"'), bytes, Buffer.from('"')]), bytes, bytes);
}

interface Kv {
  kv: Array<[string | Raw, V]>;
}
type V = string | number | boolean | Raw | Kv;
const kv = (...pairs: Array<[string | Raw, V]>): Kv => ({ kv: pairs });

function nestedKv(levels: number, leaf: Kv): Kv {
  let v = leaf;
  for (let i = 1; i < levels; i++) v = kv(['a', v]);
  return v;
}
function nestedObject(levels: number, leaf: Record<string, unknown>): Record<string, unknown> {
  let v = leaf;
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

// ------------------------------------------------------------------ corpus (the cases of redaction-bypass.test.ts)


/** Unique canary tokens (the case number inside, so even a partial base64 form names the case). */
const tok = (n: number): string => `zq${String(n).padStart(2, '0')}canary${String(n).padStart(2, '0')}zq`;
const mail = (n: number): string => `${tok(n)}@example.com`;

const CARRIERS = ['a', 'b', 'c', 'd-str', 'd-kv', 'e', 'f-span', 'f-log'] as const;
type Carrier = (typeof CARRIERS)[number];
/** the carriers that take a structured value (an AnyValue), as opposed to a key or a string body */
const VALUE_CARRIERS: readonly Carrier[] = ['a', 'c', 'd-kv', 'f-span', 'f-log'];
const ENCODINGS = ['pb', 'json'] as const;
type Enc = (typeof ENCODINGS)[number];

type Outcome =
  /** 200, stored with the canary redacted (redaction.hits > 0) */
  | { kind: 'record' }
  /** 200 with a partial success: the span / log record is a quarantine row, nothing stored */
  | { kind: 'quarantined'; reason: string }
  /** refused whole (400): one quarantine row for the request, nothing stored */
  | { kind: 'refused'; reason: string };

const RECORD: Outcome = { kind: 'record' };

interface Case {
  id: string;
  title: string;
  /** what a carrier of values (attribute value, event attribute, kvlist body, resource attribute, tool arguments) holds */
  value: V;
  /** what a carrier of text (attribute key, string body) holds */
  text: string | Raw;
  /** what must never appear in any stored byte or log, in any encoding */
  needles: string[];
  outcome: (carrier: Carrier, enc: Enc) => Outcome;
}

const always = (): Outcome => RECORD;

function corpus(): Case[] {
  const cases: Case[] = [];
  const add = (c: Omit<Case, 'outcome'> & { outcome?: Case['outcome'] }): void => void cases.push({ outcome: always, ...c });
  const same = (s: string | Raw): { value: V; text: string | Raw } => ({ value: s, text: s });

  add({ id: 'c00', title: 'plain email (control)', ...same(`reach me at ${mail(0)} please`), needles: [tok(0)] });

  add({ id: 'c01', title: 'email with its @ written as \\u0040', ...same(escaped(`write to ${tok(1)}\\u0040example.com today`)), needles: [tok(1)] });

  add({ id: 'c02', title: 'email written entirely in \\u escapes', ...same(escaped(ESCAPE_ALL(mail(2)))), needles: [tok(2)] });

  const ssn3 = '431-03-7303';
  add({
    id: 'c03',
    title: 'SSN in full-width digits (NFKC)',
    ...same(`ssn ${FULL_WIDTH_DIGIT(ssn3)} on file`),
    needles: [FULL_WIDTH_DIGIT(ssn3), ssn3, ssn3.replace(/-/g, ''), FULL_WIDTH_DIGIT(ssn3.replace(/-/g, ''))],
  });

  const ssn4 = '452-04-7404';
  const fw4 = FULL_WIDTH_DIGIT(ssn4).replace(/-/g, '\uff0d');
  add({
    id: 'c04',
    title: 'SSN in full-width digits and full-width hyphens',
    ...same(`member ${fw4}`),
    needles: [fw4, ssn4, ssn4.replace(/-/g, ''), FULL_WIDTH_DIGIT(ssn4.replace(/-/g, ''))],
  });

  add({
    id: 'c05',
    title: 'emails as object keys',
    value: kv([mail(5), 'subscribed'], [`cc:${tok(5)}x@example.org`, true]),
    text: mail(5),
    needles: [tok(5)],
  });

  add({ id: 'c06', title: 'SSN as a bare number (intValue)', value: 463067606, text: '463067606', needles: ['463067606', '463-06-7606'] });

  const card = luhnComplete('492971820230707');
  if (Number(card) > Number.MAX_SAFE_INTEGER) throw new Error('card does not fit a JSON number exactly');
  add({
    id: 'c07',
    title: 'Luhn-valid card as a number (intValue)',
    value: Number(card),
    text: card,
    needles: [card, card.replace(/(\d{4})(?=\d)/g, '$1 '), card.replace(/(\d{4})(?=\d)/g, '$1-')],
  });

  add({ id: 'c08', title: 'base64 of an email', ...same(Buffer.from(mail(8)).toString('base64')), needles: [tok(8)] });

  let blob9 = '';
  for (let k = 0; ; k++) {
    blob9 = JSON.stringify({ email: mail(9), scope: 'crm.read', n: k, note: '>>>???' });
    if (/[+/]/.test(Buffer.from(blob9).toString('base64'))) break;
  }
  add({ id: 'c09', title: 'base64url of a JSON blob holding an email', ...same(B64URL(Buffer.from(blob9))), needles: [tok(9)] });

  add({
    id: 'c10',
    title: 'percent-encoded @ in a URL',
    ...same(`https://crm.example.org/search?q=${encodeURIComponent(mail(10))}&page=2`),
    needles: [tok(10)],
  });

  add({ id: 'c11', title: 'email percent-encoded byte by byte', ...same(`email=${PERCENT_ALL(mail(11))}`), needles: [tok(11)] });

  // Nesting: an attribute's value sits three levels below the record's root
  // (details.attributes.<key>), a span event's five, so 50 kvlist levels stay
  // under the redaction max_depth (64) everywhere.
  add({
    id: 'c12',
    title: 'email 50 kvlist levels deep (inside both limits): redacted',
    value: nestedKv(50, kv(['email', mail(12)])),
    text: JSON.stringify(nestedObject(50, { email: mail(12) })),
    needles: [tok(12)],
  });

  // 100 levels: past OTLP's AnyValue limit, so the request is refused
  // whole (record_invalid). Where the nesting is only text (a key, a string
  // body, tool arguments nested past the 32 levels the mapping parses), it
  // is a string, and the email in it is redacted.
  add({
    id: 'c13',
    title: `email 100 kvlist levels deep (over OTLP's ${MAX_ANY_DEPTH})`,
    value: nestedKv(100, kv(['email', mail(13)])),
    text: JSON.stringify(nestedObject(100, { email: mail(13) })),
    needles: [tok(13)],
    outcome: (carrier) => (VALUE_CARRIERS.includes(carrier) ? { kind: 'refused', reason: 'record_invalid' } : RECORD),
  });

  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(Math.ceil(250_000 / 57)).slice(0, 250_000);
  add({ id: 'c14', title: '500 KB string with an email in the middle', ...same(`${filler} ${mail(14)} ${filler}`), needles: [tok(14)] });

  add({
    id: 'c15',
    title: 'invalid UTF-8 bytes in a string with an email: refused',
    ...same(badBytes(Buffer.concat([Buffer.from(`${mail(15)} `), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x80]), Buffer.from(' tail')]))),
    needles: [tok(15)],
    outcome: () => ({ kind: 'refused', reason: 'format_mismatch' }),
  });

  // A lone surrogate: in JSON a \ud800 escape (repaired to U+FFFD, then
  // redacted); in protobuf only as bytes UTF-8 forbids (refused).
  // In the tool arguments it is a \ud800 escape inside JSON text, valid
  // UTF-8 in either encoding: the mapping keeps such text as text (parsing
  // it would make a lone surrogate), so it is stored, redacted, either way.
  const loneOutcome = (carrier: Carrier, enc: Enc): Outcome =>
    enc === 'json' || carrier === 'e' ? RECORD : { kind: 'refused', reason: 'format_mismatch' };
  add({
    id: 'c16',
    title: 'lone surrogates right next to an email',
    ...same(escaped(`\\ud800${mail(16)}\\udfff and \\udc00${tok(16)}b@example.net\\ud83d`)),
    needles: [tok(16)],
    outcome: loneOutcome,
  });

  const key17 = escaped(`\\udbff${mail(17)}`);
  add({
    id: 'c17',
    title: 'lone surrogate next to an email in a key',
    value: kv([key17, 1]),
    text: key17,
    needles: [tok(17)],
    outcome: loneOutcome,
  });

  add({ id: 'c18', title: 'email in full-width letters (NFKC)', ...same(`contact ${FULL_WIDTH_ASCII(mail(18))}`), needles: [tok(18), FULL_WIDTH_ASCII(tok(18))] });

  // secrets pack
  const awsId = 'AKIAZQXIXCANARYAWSZQ';
  add({ id: 'c19', title: 'AWS access key id', ...same(`AWS_ACCESS_KEY_ID=${awsId} region=eu-west-1`), needles: [awsId, 'ZQXIXCANARYAWSZQ'] });

  const sig20 = B64URL(Buffer.from(`signature-${tok(20)}-signature`));
  const jwt = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${B64URL(Buffer.from(JSON.stringify({ sub: mail(20), iat: 1767225600 })))}.${sig20}`;
  add({
    id: 'c20',
    title: 'JWT (payload holds an email) in an Authorization header',
    value: kv(['headers', kv(['X-Forwarded-Auth', `Bearer ${jwt}`])], ['log', `sent Authorization: Bearer ${jwt}`]),
    text: `sent Authorization: Bearer ${jwt}`,
    needles: [tok(20), jwt.split('.')[1]!, sig20],
  });

  const pemBody = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCZQ21PEMCANARY21ZQxyz';
  add({
    id: 'c21',
    title: 'PEM private key block',
    ...same(`-----BEGIN PRIVATE KEY-----\n${pemBody}\nAbCdEfGh0123456789\n-----END PRIVATE KEY-----\n`),
    needles: [pemBody, 'ZQ21PEMCANARY21ZQ'],
  });

  add({ id: 'c22', title: 'password=... in free text', ...same(`login ok with password=${tok(22)}pw! for svc`), needles: [tok(22)] });

  // The value's only mark is the member it sits in; where no member can
  // hold it (a key, a string body) it is written `api_key=<value>`.
  add({
    id: 'c23',
    title: 'api_key member with a shapeless value',
    value: kv(['api_key', `${tok(23)}Shapeless`]),
    text: `api_key=${tok(23)}Shapeless`,
    needles: [tok(23)],
  });

  // OTLP only: deep enough for OTLP (62 kvlist levels, under its 64) but
  // past the record's max_depth once it sits under details.
  add({
    id: 'c24',
    title: `email 62 kvlist levels deep (under OTLP's ${MAX_ANY_DEPTH}, over the record's max_depth)`,
    value: nestedKv(62, kv(['email', mail(24)])),
    text: JSON.stringify(nestedObject(62, { email: mail(24) })),
    needles: [tok(24)],
    outcome: (carrier) => (VALUE_CARRIERS.includes(carrier) ? { kind: 'quarantined', reason: 'redact_too_deep' } : RECORD),
  });

  return cases;
}

// ------------------------------------------------------------------ OTLP requests

/** How one request is built: placeholders registered for the Raw strings in it. */
class Builder {
  /** [search, replacement] on the encoded body */
  readonly subs: Array<[Buffer, Buffer]> = [];
  constructor(readonly enc: Enc) {}

  private placeholder(r: Raw, where: 'd' | 'a'): string {
    const len = where === 'd' ? r.pb.length : r.inner.length;
    const head = `~R${r.n}${where}`;
    if (len < head.length + 1) throw new Error('a Raw string is too short for its placeholder');
    return head + '~'.repeat(len - head.length);
  }

  /** a string member of the request */
  str(s: string | Raw): string {
    if (typeof s === 'string') return s;
    const ph = this.placeholder(s, 'd');
    if (this.enc === 'pb') this.subs.push([Buffer.from(ph), s.pb]);
    else this.subs.push([Buffer.from(JSON.stringify(ph)), s.jsonLiteral]);
    return ph;
  }

  anyValue(v: V): Record<string, unknown> {
    if (typeof v === 'string' || v instanceof Raw) return { stringValue: this.str(v) };
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error('integers only');
      return { intValue: String(v) };
    }
    if (typeof v === 'boolean') return { boolValue: v };
    return { kvlistValue: { values: v.kv.map(([k, x]) => ({ key: this.str(k), value: this.anyValue(x) })) } };
  }

  /** `v` as JSON text (the tool arguments), Raw strings as their escaped literals */
  jsonText(v: V): string {
    if (typeof v === 'string') return JSON.stringify(v);
    if (v instanceof Raw) {
      const ph = this.placeholder(v, 'a');
      this.subs.push([Buffer.from(ph), this.enc === 'pb' ? v.inner : v.innerInJson]);
      return `"${ph}"`;
    }
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return `{${v.kv.map(([k, x]) => `${this.jsonText(k)}:${this.jsonText(x)}`).join(',')}}`;
  }
}

const attr = (key: string, value: Record<string, unknown>): Record<string, unknown> => ({ key, value });
const sv = (s: string): Record<string, unknown> => ({ stringValue: s });

const TRACE_ID = 'fedcbafedcbafedcbafedcbafedcbafe';
const SPAN_ID = 'abcdefabcdefabcd';
const T0 = '1795000000000000000';
const T1 = '1795000000250000000';

interface Sent {
  c: Case;
  carrier: Carrier;
  enc: Enc;
  gzip: boolean;
  label: string;
  want: Outcome;
  signal: 'traces' | 'logs';
  status: number;
  requestId: string | undefined;
  /** rejectedSpans / rejectedLogRecords of a 200 */
  rejected: number;
  /** google.rpc.Status message of an error answer */
  message: string;
  answer: Buffer;
}

function buildRequest(c: Case, carrier: Carrier, enc: Enc, label: string): { signal: 'traces' | 'logs'; form: Record<string, unknown>; b: Builder } {
  const b = new Builder(enc);
  const common = [attr('label', sv(label)), attr('marker', sv(`visible-marker-${label}`))];
  const resource = (extra: Array<Record<string, unknown>> = []): Record<string, unknown> => ({
    attributes: [attr('service.name', sv('bypass-bot')), attr('tenant.id', sv('acme')), ...extra],
  });
  const span = (attributes: Array<Record<string, unknown>>, events?: Array<Record<string, unknown>>): Record<string, unknown> => ({
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    name: 'bypass',
    kind: 3,
    startTimeUnixNano: T0,
    endTimeUnixNano: T1,
    attributes: [...common, ...attributes],
    ...(events ? { events } : {}),
  });
  const traces = (s: Record<string, unknown>, res = resource()): Record<string, unknown> => ({
    resourceSpans: [{ resource: res, scopeSpans: [{ scope: { name: 'bypass-corpus', version: '1' }, spans: [s] }] }],
  });
  const logRecord = (body: Record<string, unknown> | undefined, attributes: Array<Record<string, unknown>> = []): Record<string, unknown> => ({
    timeUnixNano: T0,
    observedTimeUnixNano: T1,
    severityNumber: 9,
    severityText: 'INFO',
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    ...(body ? { body } : {}),
    attributes: [...common, ...attributes],
  });
  const logs = (r: Record<string, unknown>, res = resource()): Record<string, unknown> => ({
    resourceLogs: [{ resource: res, scopeLogs: [{ scope: { name: 'bypass-corpus', version: '1' }, logRecords: [r] }] }],
  });
  const userMessage = attr('event.name', sv('gen_ai.user.message'));

  switch (carrier) {
    case 'a':
      return { signal: 'traces', form: traces(span([attr('note', b.anyValue(c.value))])), b };
    case 'b':
      return { signal: 'traces', form: traces(span([attr(b.str(c.text), sv('key-carrier'))])), b };
    case 'c':
      return {
        signal: 'traces',
        form: traces(
          span(
            [attr('gen_ai.operation.name', sv('chat')), attr('gen_ai.provider.name', sv('openai')), attr('gen_ai.request.model', sv('gpt-4o'))],
            [{ name: 'gen_ai.user.message', timeUnixNano: T0, attributes: [attr('gen_ai.system', sv('openai')), attr('content', b.anyValue(c.value))] }],
          ),
        ),
        b,
      };
    case 'd-str':
      return { signal: 'logs', form: logs(logRecord({ stringValue: b.str(c.text) }, [userMessage])), b };
    case 'd-kv':
      return {
        signal: 'logs',
        form: logs(logRecord({ kvlistValue: { values: [attr('role', sv('user')), attr('content', b.anyValue(c.value))] } }, [userMessage])),
        b,
      };
    case 'e':
      return {
        signal: 'traces',
        form: traces(
          span([
            attr('gen_ai.operation.name', sv('execute_tool')),
            attr('gen_ai.tool.name', sv('crm.lookup')),
            attr('gen_ai.tool.call.id', sv('call-bypass')),
            attr('gen_ai.tool.call.arguments', sv(b.jsonText(kv(['limit', 5], ['q', c.value])))),
          ]),
        ),
        b,
      };
    case 'f-span':
      return { signal: 'traces', form: traces(span([]), resource([attr('note', b.anyValue(c.value))])), b };
    case 'f-log':
      return { signal: 'logs', form: logs(logRecord(sv('resource carrier')), resource([attr('note', b.anyValue(c.value))])), b };
  }
}

/** ids as bytes, for protobufjs fromObject (OTLP/JSON writes them as hex) */
function withIdBytes(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withIdBytes);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = (k === 'traceId' || k === 'spanId') && typeof x === 'string' ? Buffer.from(x, 'hex') : withIdBytes(x);
  return out;
}

function replaceAll(body: Buffer, search: Buffer, replacement: Buffer): Buffer {
  const parts: Buffer[] = [];
  let from = 0;
  let found = 0;
  for (let at = body.indexOf(search, from); at !== -1; at = body.indexOf(search, from)) {
    parts.push(body.subarray(from, at), replacement);
    from = at + search.length;
    found++;
  }
  if (found === 0) throw new Error(`placeholder ${search.toString()} not in the encoded body`);
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

function encodeRequest(type: Type, form: Record<string, unknown>, b: Builder): Buffer {
  let body: Buffer;
  if (b.enc === 'json') {
    body = Buffer.from(JSON.stringify(form));
  } else {
    // 100 kvlist levels are 300 nested messages: past protobufjs's default limit (this process only)
    const saved = protobuf.util.recursionLimit;
    protobuf.util.recursionLimit = 100_000;
    try {
      body = Buffer.from(type.encode(type.fromObject(withIdBytes(form) as Record<string, unknown>)).finish());
    } finally {
      protobuf.util.recursionLimit = saved;
    }
  }
  const length = body.length;
  for (const [search, replacement] of b.subs) body = replaceAll(body, search, replacement);
  if (b.enc === 'pb' && body.length !== length) throw new Error('a protobuf placeholder changed the body length');
  return body;
}

async function send(url: string, c: Case, carrier: Carrier, enc: Enc, gzip: boolean): Promise<Sent> {
  const label = `${c.id}-${carrier}-${enc}`;
  const t = otlpTypes();
  const { signal, form, b } = buildRequest(c, carrier, enc, label);
  const raw = encodeRequest(signal === 'traces' ? t.traceRequest : t.logsRequest, form, b);
  const res = await request(`${url}/v1/${signal}`, {
    method: 'POST',
    headers: {
      'content-type': enc === 'pb' ? 'application/x-protobuf' : 'application/json',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    },
    body: gzip ? gzipSync(raw) : raw,
  });
  const answer = Buffer.from(await res.body.arrayBuffer());
  const sent: Sent = {
    c,
    carrier,
    enc,
    gzip,
    label,
    want: c.outcome(carrier, enc),
    signal,
    status: res.statusCode,
    requestId: typeof res.headers['x-request-id'] === 'string' ? res.headers['x-request-id'] : undefined,
    rejected: 0,
    message: '',
    answer,
  };
  const decoded: any =
    enc === 'json'
      ? JSON.parse(answer.toString('utf8') || '{}')
      : (res.statusCode === 200 ? (signal === 'traces' ? t.traceResponse : t.logsResponse) : t.status).toObject(
          (res.statusCode === 200 ? (signal === 'traces' ? t.traceResponse : t.logsResponse) : t.status).decode(answer),
          { longs: Number },
        );
  if (res.statusCode === 200) {
    sent.rejected = Number(decoded.partialSuccess?.rejectedSpans ?? decoded.partialSuccess?.rejectedLogRecords ?? 0);
    sent.message = String(decoded.partialSuccess?.errorMessage ?? '');
  } else {
    sent.message = String(decoded.message ?? '');
  }
  return sent;
}

// ------------------------------------------------------------------ run

describe('redaction bypass corpus through OTLP (traces and logs, protobuf and JSON) into a real sidecar and collector', () => {
  const cases = corpus();
  const packs = PACKS.map(packPath);
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let sent: Sent[] = [];
  let delivered: { records: number; quarantined: number };
  let items: any[] = [];
  let hitsMetric = new Map<string, number>();
  let verifyUrl: { code: number | null; stdout: string; stderr: string };
  let exits: { sidecar: number | null; collector: number | null };
  const scanned: FileBytes[] = [];
  let quarantine: Array<{ source: string; path: string; file_key: string; offset: number; reason: string }> = [];

  beforeAll(async () => {
    const otlpPort = await freePort();
    d = await makeDeployment({
      prefix: 'sealtrail-redact-otlp-e2e-',
      rules: packs,
      extraSources: [`{ id: otel, type: otlp, listen: "127.0.0.1:${otlpPort}" }`],
    });
    const env = { SEALTRAIL_LOG_LEVEL: 'trace' };
    collector = await startCollector(d, env);
    sidecar = await startSidecar(d, env);
    const otlpUrl = `http://127.0.0.1:${otlpPort}`;

    // One span or log record per request; every answer comes after the durable commit.
    const jobs: Array<() => Promise<Sent>> = [];
    cases.forEach((c, ci) =>
      CARRIERS.forEach((carrier, ki) =>
        ENCODINGS.forEach((enc, ei) => jobs.push(() => send(otlpUrl, c, carrier, enc, (ci + ki + ei) % 2 === 1))),
      ),
    );
    const results: Sent[] = new Array(jobs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = next++; i < jobs.length; i = next++) results[i] = await jobs[i]!();
      }),
    );
    sent = results;

    delivered = await waitDelivered(d, sent.length);
    items = await queryAll(d);
    const metrics = await getJson(`${d.telemetryUrl}/metrics`);
    for (const m of String(metrics.body).matchAll(/^sealtrail_redaction_hits_total\{rule="([^"]+)"\}\s+(\S+)$/gm)) {
      hitsMetric.set(m[1]!, Number(m[2]));
    }
    verifyUrl = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);

    // Snapshot while running (the WALs hold the newest pages), then stop and read again.
    scanned.push(...readAllFiles(d.dir).map((f) => ({ name: `running:${f.name}`, bytes: f.bytes })));
    const s = await stop(sidecar);
    const c = await stop(collector);
    exits = { sidecar: s.code, collector: c.code };
    scanned.push(...readAllFiles(d.dir).map((f) => ({ name: `stopped:${f.name}`, bytes: f.bytes })));
    scanned.push({ name: 'sidecar stdout', bytes: Buffer.from(sidecar.stdout()) });
    scanned.push({ name: 'sidecar stderr', bytes: Buffer.from(sidecar.stderr()) });
    scanned.push({ name: 'collector stdout', bytes: Buffer.from(collector.stdout()) });
    scanned.push({ name: 'collector stderr', bytes: Buffer.from(collector.stderr()) });
    scanned.push({ name: 'verify --url output', bytes: Buffer.from(verifyUrl.stdout + verifyUrl.stderr) });
    scanned.push({ name: 'GET /v1/audit', bytes: Buffer.from(JSON.stringify(items)) });
    for (const x of sent) scanned.push({ name: `answer to ${x.label}`, bytes: x.answer });

    const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
    try {
      quarantine = db.prepare('SELECT source, path, file_key, offset, reason FROM quarantine ORDER BY id').all() as typeof quarantine;
    } finally {
      db.close();
    }
  }, 240_000);

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
    if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  const recordOf = (label: string): any => items.find((i) => i.record?.details?.attributes?.label === label)?.record;
  const hitsOf = (r: any): number => Object.values((r?.redaction?.hits ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  const rowsOf = (x: Sent): typeof quarantine => quarantine.filter((q) => x.requestId !== undefined && q.file_key === `otlp:${x.requestId}`);
  const fromCorpus = (): Array<{ record: any }> => items.filter((i) => i.record?.source !== 'sealtrail');

  it('runs with both packs, pii-basic and secrets, and sent every case in every place and encoding, gzip or not', () => {
    expect(packs.map((p) => p.split('/').pop())).toEqual(PACKS.map((p) => `${p}.yaml`));
    expect(sent.length).toBe(cases.length * CARRIERS.length * ENCODINGS.length);
    expect(sent.filter((x) => x.requestId === undefined).map((x) => x.label)).toEqual([]);
    for (const enc of ENCODINGS) {
      for (const gzip of [true, false]) expect(sent.filter((x) => x.enc === enc && x.gzip === gzip).length, `${enc} gzip=${gzip}`).toBeGreaterThan(50);
    }
  });

  it('sealtrail verify --url passed against the live collector before stopping', () => {
    expect(verifyUrl.stderr).toBe('');
    expect(verifyUrl.code).toBe(0);
    expect(verifyUrl.stdout).toMatch(/HMAC chain checked/);
  });

  it('both programs exit 0 on SIGTERM', () => {
    expect(exits).toEqual({ sidecar: 0, collector: 0 });
  });

  it('every request has its expected answer, and the collector holds exactly the expected records (not vacuous)', () => {
    const got = sent.map((x) => ({ label: x.label, status: x.status, rejected: x.rejected, reason: x.status === 200 ? x.message.split(' ')[0] : x.message.split(':')[0] }));
    const want = sent.map((x) =>
      x.want.kind === 'record'
        ? { label: x.label, status: 200, rejected: 0, reason: '' }
        : x.want.kind === 'quarantined'
          ? { label: x.label, status: 200, rejected: 1, reason: expect.any(String) }
          : { label: x.label, status: 400, rejected: 0, reason: x.want.reason },
    );
    expect(got).toEqual(want);
    for (const x of sent) if (x.want.kind === 'quarantined') expect(x.message, x.label).toContain(`${x.want.reason} ×1`);

    const wantRecords = sent.filter((x) => x.want.kind === 'record').map((x) => x.label).sort();
    const own = items.filter((i) => i.record?.source === 'sealtrail');
    expect(own.every((i) => i.record.event_type === 'ingest_rejected')).toBe(true);
    expect(fromCorpus().map((i) => i.record?.details?.attributes?.label).sort()).toEqual(wantRecords);
    expect(fromCorpus().every((i) => i.record.source === 'otel')).toBe(true);
    expect(wantRecords.length).toBeGreaterThan(300);
    expect(delivered).toEqual({ records: wantRecords.length, quarantined: sent.length - wantRecords.length });
    // one quarantine row for every request not stored, and no other
    expect(quarantine.length).toBe(sent.length - wantRecords.length);
    expect(quarantine.every((q) => q.source === 'otel')).toBe(true);
  });

  it('redaction.hits counts the replacements: every stored record has some, and they add up to the sidecar metric', () => {
    const byRule = new Map<string, number>();
    for (const i of fromCorpus()) {
      for (const [rule, n] of Object.entries((i.record.redaction?.hits ?? {}) as Record<string, number>)) byRule.set(rule, (byRule.get(rule) ?? 0) + n);
    }
    expect([...byRule].sort()).toEqual([...hitsMetric].filter(([, n]) => n > 0).sort());
    expect([...byRule.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(fromCorpus().length);
  });

  it('the scan sees record content in plain text (so a miss means absent, not unreadable)', () => {
    const names = scanned.map((s) => s.name);
    for (const want of ['stopped:sidecar/buffer.db', 'stopped:collector/audit.db']) expect(names).toContain(want);
    const collectorBytes = Buffer.concat(scanned.filter((s) => s.name.includes('collector/audit.db')).map((s) => s.bytes));
    for (const x of sent.filter((y) => y.want.kind === 'record')) {
      expect(collectorBytes.includes(`visible-marker-${x.label}`), x.label).toBe(true);
    }
    expect(findLeaks(scanned, ['visible-marker-c00-a-pb']).length).toBeGreaterThan(0);
  });

  for (const c of cases) {
    it(`${c.id} ${c.title}: in every place and encoding, the expected outcome, and the canary in no stored byte or log`, () => {
      for (const x of sent.filter((y) => y.c === c)) {
        const r = recordOf(x.label);
        if (x.want.kind === 'record') {
          expect(r, `record for ${x.label}`).toBeDefined();
          expect(hitsOf(r), `redaction hits in ${x.label}: ${JSON.stringify(r?.redaction)}`).toBeGreaterThan(0);
          expect(rowsOf(x), x.label).toEqual([]);
        } else {
          expect(r, `no record for ${x.label}`).toBeUndefined();
          const rows = rowsOf(x);
          expect(
            rows.map((q) => ({ path: q.path, offset: q.offset, reason: q.reason })),
            x.label,
          ).toEqual([{ path: `POST /v1/${x.signal}`, offset: 0, reason: x.want.reason }]);
        }
      }
      expect(findLeaks(scanned, c.needles)).toEqual([]);
    });
  }
});
