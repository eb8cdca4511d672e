/**
 * The pure half of the OTLP/HTTP receiver (otlp-http.ts does the I/O): which
 * signal a path names, which encoding a Content-Type names, a decoded body
 * → the lines handed to the sink, the sink's outcomes → the partial-success
 * answer, and every refusal as status + reason code + google.rpc code.
 *
 * Contracts:
 * - No I/O, no clock, no randomness.
 * - Nothing from a request body reaches a refusal or an answer: messages
 *   name limits, counts, item indexes, reason codes and field paths (which
 *   InputError guarantees are value-free), never a value.
 * - A request is one unit: either every span / log record becomes a line,
 *   or the request is refused whole (a malformed body, too many items).
 */
import type { OtlpCode } from '../../core/error-codes.js';
import { InputError } from '../../core/errors.js';
import { mediaTypeOf } from '../../http-body.js';
import { countOtlpItems, decodeOtlpRequest, noSurrogateEscapes, otlpEventStream, type OtlpEncoding, type OtlpSignal } from '../formats/otlp/index.js';
import { ChunkRefused, type IngestLine, type LineOutcome } from './types.js';

export const OTLP_PATHS: Readonly<Record<string, OtlpSignal>> = Object.freeze({ '/v1/traces': 'traces', '/v1/logs': 'logs' });

/** google.rpc.Code values used in Status bodies (the gRPC code names of the HTTP statuses answered). */
export const RPC = Object.freeze({ INVALID_ARGUMENT: 3, NOT_FOUND: 5, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 });

/** Content types as OTLP/HTTP names them; the answer carries the same one. */
export const CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = Object.freeze({
  protobuf: 'application/x-protobuf',
  json: 'application/json',
});

/** When a 503 may be retried: the buffer is full (`full`), or anything that clears in a moment (`soon`). */
export type RetryHint = 'full' | 'soon';

/**
 * A request answered with an error. `quarantine`: the refusal concerns the
 * data itself (undecodable, too many items, too large), so it is committed
 * as one quarantine row and auditors see that data was refused; refusals of
 * the protocol (path, method, media type) and of the moment (503) are not.
 */
export class OtlpRefusal extends ChunkRefused {
  constructor(
    readonly status: number,
    readonly code: OtlpCode,
    message: string,
    readonly rpc: number,
    readonly quarantine = false,
    readonly retry?: RetryHint,
  ) {
    super(message);
    this.name = 'OtlpRefusal';
  }
}

export const refusals = {
  notFound: (): OtlpRefusal =>
    new OtlpRefusal(404, 'not_found', `the OTLP receiver serves ${Object.keys(OTLP_PATHS).join(' and ')} only`, RPC.NOT_FOUND),
  method: (): OtlpRefusal => new OtlpRefusal(405, 'method_not_allowed', 'use POST', RPC.UNIMPLEMENTED),
  contentType: (): OtlpRefusal =>
    new OtlpRefusal(415, 'content_type_unsupported', `Content-Type must be ${CONTENT_TYPES.protobuf} or ${CONTENT_TYPES.json} (charset utf-8)`, RPC.INVALID_ARGUMENT),
  contentEncoding: (): OtlpRefusal =>
    new OtlpRefusal(415, 'content_encoding_unsupported', 'Content-Encoding must be gzip or identity', RPC.INVALID_ARGUMENT),
  tooLarge: (max: number): OtlpRefusal =>
    new OtlpRefusal(413, 'body_too_large', `the body is over the ${max}-byte limit (counted after gzip decoding)`, RPC.INVALID_ARGUMENT, true),
  gzipInvalid: (): OtlpRefusal => new OtlpRefusal(400, 'gzip_invalid', 'the body is not valid gzip', RPC.INVALID_ARGUMENT, true),
  tooManyItems: (signal: OtlpSignal, max: number): OtlpRefusal =>
    new OtlpRefusal(400, 'otlp_too_many_items', `more than ${max} ${itemNoun(signal)} in one request`, RPC.INVALID_ARGUMENT, true),
  shuttingDown: (): OtlpRefusal =>
    new OtlpRefusal(503, 'shutting_down', 'the sidecar is shutting down; retry against its replacement', RPC.UNAVAILABLE, false, 'soon'),
  bufferFull: (): OtlpRefusal => new OtlpRefusal(503, 'buffer_full', 'the local buffer is full; retry later', RPC.UNAVAILABLE, false, 'full'),
  busy: (max: number): OtlpRefusal =>
    new OtlpRefusal(503, 'busy', `${max} requests are already being read; retry later`, RPC.UNAVAILABLE, false, 'soon'),
  commitFailed: (): OtlpRefusal =>
    new OtlpRefusal(503, 'commit_failed', 'the request could not be stored; nothing was stored; retry later', RPC.UNAVAILABLE, false, 'soon'),
  internal: (): OtlpRefusal => new OtlpRefusal(500, 'internal_error', 'the request could not be handled', RPC.INTERNAL),
};

/** The signal a request path names (query string ignored), or undefined: no normalisation, so `/v1/../v1/traces` is not `/v1/traces`. */
export function signalOf(url: string | undefined): OtlpSignal | undefined {
  const q = (url ?? '').indexOf('?');
  const path = q < 0 ? (url ?? '') : (url ?? '').slice(0, q);
  return Object.prototype.hasOwnProperty.call(OTLP_PATHS, path) ? OTLP_PATHS[path] : undefined;
}

/**
 * The encoding a Content-Type names, or undefined. JSON must be UTF-8 (a
 * charset other than utf-8 is refused, not guessed at); a charset on a
 * protobuf body means nothing and is ignored.
 */
export function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const { mediaType, utf8 } = mediaTypeOf(contentType);
  if (mediaType === CONTENT_TYPES.protobuf) return 'protobuf';
  if (mediaType === CONTENT_TYPES.json && utf8) return 'json';
  return undefined;
}

export function itemNoun(signal: OtlpSignal): string {
  return signal === 'traces' ? 'spans' : 'log records';
}

/**
 * Items mapped at a time ahead of ingest: enough for mapping to run in a
 * tight loop, few enough that a request's events are not all alive at once.
 */
const MAP_BATCH = 64;

/** A request body, decoded and counted; its items are mapped to lines only as they are stored. */
export interface DecodedBody {
  /** spans or log records in the request */
  count: number;
  /**
   * One line per item, in request order, mapped MAP_BATCH at a time as
   * ingest reaches them, each decoded item dropped once mapped
   * (otlpEventStream). Iterating throws an
   * OtlpRefusal to quarantine when an item cannot be mapped: the sink then
   * commits nothing of the request, which is refused whole. Once only.
   */
  lines: Iterable<IngestLine>;
}

/**
 * A request body (already gunzipped) → its item count and lazily mapped
 * lines, or an OtlpRefusal to quarantine: format_mismatch / record_invalid
 * from the decoder (with the field path), otlp_too_many_items past
 * `maxItems`.
 */
export function decodeBody(signal: OtlpSignal, body: Uint8Array, encoding: OtlpEncoding, maxItems: number): DecodedBody {
  let request: ReturnType<typeof decodeOtlpRequest>;
  let count: number;
  try {
    request = decodeOtlpRequest(signal, body, encoding);
    count = countOtlpItems(signal, request);
  } catch (err) {
    throw refusalOf(signal, err);
  }
  if (count > maxItems) throw refusals.tooManyItems(signal, maxItems);
  const lines = requestLines(signal, request, encoding === 'protobuf' || noSurrogateEscapes(body), maxItems);
  if (count > 0) return { count, lines };
  // Nothing counted: walked now, so that a request of a shape the count
  // does not read is refused here, as one holding items would be.
  const all = [...lines];
  return { count: all.length, lines: all };
}

/**
 * One line per item, placed by its index in the request. `wellFormed`: no
 * string of the request can hold a lone surrogate (a protobuf body's were
 * decoded from strict UTF-8; a JSON body's can only by a \ud800 escape),
 * so ingest need not walk them for one.
 */
function* requestLines(signal: OtlpSignal, request: ReturnType<typeof decodeOtlpRequest>, wellFormed: boolean, maxItems: number): Generator<IngestLine, void, undefined> {
  const events = otlpEventStream(signal, request, true);
  const batch: IngestLine[] = [];
  let i = 0;
  for (;;) {
    // Mapped MAP_BATCH at a time: mapping one item between two items'
    // redaction and hashing cost about a tenth more per record (bench/README.md,
    // bench:otlp), the mapping code running cold each time.
    batch.length = 0;
    try {
      while (batch.length < MAP_BATCH) {
        const next = events.next();
        if (next.done === true) break;
        // Checked again while mapping, in case the count missed a shape.
        if (i >= maxItems) throw refusals.tooManyItems(signal, maxItems);
        const { event, path } = next.value;
        batch.push(wellFormed ? { offset: i, length: 0, value: event, wellFormed: true, path } : { offset: i, length: 0, value: event, path });
        i++;
      }
    } catch (err) {
      throw refusalOf(signal, err);
    }
    if (batch.length === 0) return;
    yield* batch;
  }
}

/** A decoding or mapping failure as the refusal of the whole request. */
function refusalOf(signal: OtlpSignal, err: unknown): OtlpRefusal {
  if (err instanceof OtlpRefusal) return err;
  if (err instanceof InputError) return new OtlpRefusal(400, err.code, withField(err), RPC.INVALID_ARGUMENT, true);
  // Not the decoder's own refusal (a RangeError on hostile nesting, a bug):
  // still the body's fault as far as the client can tell. Only the error's
  // name is kept; a foreign message may quote the input.
  const name = err instanceof Error ? err.name : typeof err;
  return new OtlpRefusal(400, 'format_mismatch', `the body could not be decoded as an OTLP ${signal} request (${name})`, RPC.INVALID_ARGUMENT, true);
}

function withField(err: InputError): string {
  return err.field && !err.message.includes(err.field) ? `${err.message} (at ${err.field})` : err.message;
}

/**
 * The one line a request refused whole leaves in quarantine: its size and
 * reason, never its bytes.
 */
export function refusalLine(refusal: OtlpRefusal, bodyBytes: number): IngestLine {
  return { offset: 0, length: Math.max(0, Math.min(bodyBytes, Number.MAX_SAFE_INTEGER)), error: { code: refusal.code, message: refusal.message } };
}

export interface OutcomeSummary {
  accepted: number;
  rejected: number;
  /** the partial-success errorMessage: reason codes, counts and the first index of each; '' when nothing was rejected */
  errorMessage: string;
}

/** How many items were stored and quarantined, and why, for the partial-success answer. */
export function summariseOutcomes(signal: OtlpSignal, outcomes: readonly LineOutcome[]): OutcomeSummary {
  let accepted = 0;
  let rejected = 0;
  const reasons = new Map<string, { count: number; first: number }>();
  outcomes.forEach((o, index) => {
    if ('seq' in o) {
      accepted += o.records ?? 1;
    } else if ('error' in o) {
      rejected++;
      // The code only: ingest's message may name members of the event.
      const r = reasons.get(o.error.code);
      if (r) r.count++;
      else reasons.set(o.error.code, { count: 1, first: index });
    }
  });
  if (rejected === 0) return { accepted, rejected, errorMessage: '' };
  const noun = signal === 'traces' ? 'span' : 'log record';
  const parts = [...reasons].map(([code, r]) => `${code} ×${r.count} (first: ${noun} ${r.first})`);
  return {
    accepted,
    rejected,
    errorMessage: `${rejected} of ${outcomes.length} ${itemNoun(signal)} quarantined by sealtrail: ${parts.join(', ')}`,
  };
}
