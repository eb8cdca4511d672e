/**
 * The OTLP/HTTP request handler: POST /v1/traces and /v1/logs, protobuf or
 * JSON, gzip or identity, answered as OTLP/HTTP 1.x specifies. Protocol and
 * mapping for users in docs/otlp.md.
 *
 * Contracts:
 * - 200 is sent only after `sink` returned, i.e. after the request's
 *   records and quarantine rows are durably committed in one transaction.
 *   Items ingest quarantined are reported as a partial success
 *   (rejectedSpans / rejectedLogRecords, errorMessage with reason codes and
 *   counts), which OTLP clients do not retry.
 * - A request refused for its data (undecodable, too many items, too
 *   large: 400/413, which OTLP clients do not retry) stores nothing but one
 *   quarantine row saying so: its size and reason, never its bytes.
 * - Refusals of the moment (buffer full, shutting down, too many requests
 *   in flight, a failed commit) are 503 with Retry-After and store nothing:
 *   the client sends the same request again.
 * - No sink call starts while paused() or stopping() (a refusal's
 *   quarantine row included).
 * - Nothing from a body reaches an answer, an error or a hook: codes,
 *   counts, limits, indexes and field paths only.
 * - Every answer's body is in the request's encoding (a google.rpc.Status
 *   for errors); when the request named no encoding the receiver knows,
 *   JSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { uuidv7 } from '../../core/uuid.js';
import { contentCodingOf } from '../../http-body.js';
import { encodeOtlpResponse, encodeOtlpStatus, type OtlpEncoding, type OtlpSignal } from '../formats/otlp/index.js';
import { BodyAborted, BodyRefused, hasBody, linger, readBody } from './otlp-body.js';
import {
  CONTENT_TYPES,
  decodeBody,
  type DecodedBody,
  encodingOf,
  OtlpRefusal,
  refusalLine,
  refusals,
  signalOf,
  summariseOutcomes,
} from './otlp-request.js';
import type { IngestLine, LineOutcome } from './types.js';

export interface OtlpRequestMeta {
  /** unique per request (uuid), sent back in `x-request-id`: the quarantine rows' file key */
  requestId: string;
  /** 'POST /v1/traces' | 'POST /v1/logs' */
  path: string;
}

/**
 * Commits the request's lines in one transaction and says what became of
 * each, in order; throws only when nothing was committed (then also the
 * OtlpRefusal that reading a line threw: the request is refused whole).
 */
export type OtlpSink = (lines: Iterable<IngestLine>, meta: OtlpRequestMeta) => LineOutcome[];

export interface OtlpRequestSummary {
  /** the source id */
  source: string;
  requestId: string | undefined;
  /** the method and '/v1/traces' or '/v1/logs', or '(another path)' */
  path: string;
  status: number;
  /** how the body was sent, once the headers named one the receiver takes */
  encoding: OtlpEncoding | undefined;
  gzip: boolean | undefined;
  /** reason code when refused */
  code: string | undefined;
  /** spans / log records in the request (0 when it was refused whole) */
  items: number;
  accepted: number;
  rejected: number;
}

export interface OtlpHandlerOptions {
  /** source id */
  id: string;
  /** bytes of a body, as received and after gunzip */
  maxBodyBytes: number;
  /** spans / log records per request */
  maxItems: number;
  sink: OtlpSink;
  /** backpressure: 503 + Retry-After, nothing read */
  paused: () => boolean;
  /** shutdown began: 503 `shutting_down`, nothing committed any more */
  stopping: () => boolean;
  /** server-side faults (a sink that threw, a bug); never a client error */
  onError: (err: Error) => void;
  /** once per answered request, for metrics and logs */
  onResponse?: (summary: OtlpRequestSummary) => void;
  /** requests whose bodies may be held in memory at once; more get 503. Default 8 */
  maxInFlight?: number;
  /** Retry-After (seconds) while the buffer is full; default 5 */
  retryAfterFullSeconds?: number;
  /** Retry-After (seconds) after a failed commit, when busy or shutting down; default 1 */
  retryAfterSeconds?: number;
}

export type OtlpHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createOtlpHandler(opts: OtlpHandlerOptions): OtlpHandler {
  const maxInFlight = opts.maxInFlight ?? 8;
  const retryFull = String(opts.retryAfterFullSeconds ?? 5);
  const retrySoon = String(opts.retryAfterSeconds ?? 1);
  const lingerBytes = Math.max(opts.maxBodyBytes, 1024 * 1024);
  let inFlight = 0;

  const fault = (err: unknown): void => {
    try {
      opts.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // a throwing logger must not turn an answered request into a crash
    }
  };

  return (req, res) => {
    const signal = signalOf(req.url);
    const named = encodingOf(req.headers['content-type']);
    const encoding: OtlpEncoding = named ?? 'json';
    const summary: OtlpRequestSummary = {
      source: opts.id,
      requestId: undefined,
      // Node's parser only lets known methods through; a path it does not serve is input, and not repeated
      path: `${req.method ?? '?'} ${signal ? `/v1/${signal}` : '(another path)'}`,
      status: 0,
      encoding: named,
      gzip: undefined,
      code: undefined,
      items: 0,
      accepted: 0,
      rejected: 0,
    };
    let bodyRead = !hasBody(req);
    // A client that waits for "100 Continue" sends no body until told to.
    let awaitingContinue = /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');

    const send = (status: number, body: Uint8Array | string, headers: Record<string, string> = {}): void => {
      summary.status = status;
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      const h: Record<string, string | number> = { 'content-type': CONTENT_TYPES[encoding], 'content-length': bytes.length, ...headers };
      if (summary.requestId) h['x-request-id'] = summary.requestId;
      // Refused before "100 Continue": nothing of the body is on its way, and
      // closing is how RFC 9110 §10.1.1 lets the client know none is wanted.
      if (!bodyRead && awaitingContinue) h.connection = 'close';
      if (!res.headersSent && !res.destroyed && !req.socket.destroyed) {
        res.writeHead(status, h).end(bytes);
        if (!bodyRead && !awaitingContinue) linger(req, lingerBytes);
      }
      try {
        opts.onResponse?.(summary);
      } catch {
        // see fault()
      }
    };
    const refuse = (r: OtlpRefusal): void => {
      summary.code = r.code;
      const headers: Record<string, string> = {};
      if (r.retry) headers['retry-after'] = r.retry === 'full' ? retryFull : retrySoon;
      if (r.status === 405) headers.allow = 'POST';
      if (r.code === 'content_encoding_unsupported') headers['accept-encoding'] = 'gzip';
      let body: Uint8Array | string;
      try {
        body = encodeOtlpStatus(r.rpc, `${r.code}: ${r.message}`, encoding);
      } catch (err) {
        fault(err);
        body = '';
      }
      send(r.status, body, headers);
    };
    /** Stores the one quarantine row of a request refused for its data, then answers the refusal. */
    const quarantine = (r: OtlpRefusal, bodyBytes: number): void => {
      if (opts.stopping()) return refuse(refusals.shuttingDown());
      if (opts.paused()) return refuse(refusals.bufferFull());
      try {
        opts.sink([refusalLine(r, bodyBytes)], { requestId: summary.requestId!, path: `POST /v1/${signal}` });
      } catch (err) {
        fault(err);
        return refuse(refusals.commitFailed());
      }
      refuse(r);
    };
    const unexpected = (err: unknown): void => {
      fault(err);
      refuse(refusals.internal());
    };

    let gzip: boolean;
    try {
      if (!signal) return refuse(refusals.notFound());
      if (req.method !== 'POST') return refuse(refusals.method());
      if (!named) return refuse(refusals.contentType());
      const coding = contentCodingOf(req.headers['content-encoding']);
      if (coding === undefined) return refuse(refusals.contentEncoding());
      gzip = coding === 'gzip';
      summary.gzip = gzip;
      if (opts.stopping()) return refuse(refusals.shuttingDown());
      if (opts.paused()) return refuse(refusals.bufferFull());
      if (inFlight >= maxInFlight) return refuse(refusals.busy(maxInFlight));
      summary.requestId = uuidv7();
      const declared = Number(req.headers['content-length'] ?? 0);
      // Refused from the header alone, before a byte of the body: answered and
      // counted (http_requests_total) but not quarantined, or anyone who can
      // reach the port could grow the append-only quarantine table for free.
      if (declared > opts.maxBodyBytes) return refuse(refusals.tooLarge(opts.maxBodyBytes));
    } catch (err) {
      return unexpected(err);
    }

    const sig: OtlpSignal = signal;
    const answer = (body: Buffer): void => {
      let decoded: DecodedBody;
      try {
        decoded = decodeBody(sig, body, encoding, opts.maxItems);
        summary.items = decoded.count;
      } catch (err) {
        if (err instanceof OtlpRefusal) return quarantine(err, body.length);
        throw err;
      }
      // Checked again: the buffer may have filled, or shutdown begun, while this body arrived.
      if (opts.stopping()) return refuse(refusals.shuttingDown());
      if (opts.paused()) return refuse(refusals.bufferFull());
      let outcomes: LineOutcome[] = [];
      if (decoded.count > 0) {
        try {
          outcomes = opts.sink(decoded.lines, { requestId: summary.requestId!, path: `POST /v1/${sig}` });
        } catch (err) {
          // an item that could not be mapped, reached while storing: nothing of the request was committed
          if (err instanceof OtlpRefusal) {
            summary.items = 0;
            return quarantine(err, body.length);
          }
          fault(err);
          return refuse(refusals.commitFailed());
        }
        if (outcomes.length !== decoded.count) {
          // Committed all the same: a resend would store the items twice, so the client is told success.
          fault(new Error(`otlp source ${opts.id}: request ${summary.requestId}: the sink returned ${outcomes.length} outcomes for ${decoded.count} items`));
        }
      }
      const s = summariseOutcomes(sig, outcomes);
      summary.accepted = s.accepted;
      summary.rejected = s.rejected;
      send(200, encodeOtlpResponse(sig, s.rejected, s.errorMessage, encoding));
    };

    // Only now that the request is acceptable does a client that asked for it get "100 Continue".
    if (awaitingContinue) {
      res.writeContinue();
      awaitingContinue = false;
    }
    inFlight++;
    readBody(req, opts.maxBodyBytes, gzip)
      .then(
        (body) => {
          bodyRead = true;
          answer(body);
        },
        (err: unknown) => {
          if (err instanceof BodyAborted) return;
          if (err instanceof BodyRefused) return quarantine(err.refusal, err.received);
          unexpected(err);
        },
      )
      .catch(unexpected)
      .finally(() => {
        inFlight--;
      });
  };
}
