import type { IncomingMessage, ServerResponse } from 'node:http';
import { BodyAborted, hasBody, linger, readBoundedBody } from './request-body.js';
import type { EventsCode } from '../../core/error-codes.js';
import { HttpError } from '../../core/errors.js';
import { contentCodingOf } from '../../http-body.js';
import { uuidv7 } from '../../core/uuid.js';
import type { IngestLine, LineOutcome } from './types.js';
import { formatOf, parseEventsBody, type EventsFormat } from './events-body.js';

/**
 * `POST /v1/events`: the http source. Protocol in docs/http-events.md.
 *
 * A request is answered 202 only after `sink` returned, i.e. after its
 * records and quarantine rows are durably committed; every refusal before
 * that commits nothing, so a client may always resend a refused request
 * whole. Nothing from the body reaches a response, an error or a hook:
 * only codes, counts, line numbers and event indexes.
 */

export interface EventsRequestMeta {
  /** generated per request, returned in `x-request-id`: use it as the quarantine rows' file key */
  requestId: string;
  /** the body was sent as application/cloudevents(-batch)+json: its events are CloudEvents, whatever the source's format */
  cloudEvents: boolean;
}

export interface EventsRequestSummary {
  /** the source id */
  source: string;
  requestId: string | undefined;
  status: number;
  /** error code when refused */
  code: string | undefined;
  /** events in the request (0 when refused before parsing) */
  events: number;
  accepted: number;
  rejected: number;
}

export interface EventsHandlerOptions {
  /** source id */
  id: string;
  maxBodyBytes: number;
  maxEvents: number;
  /**
   * Durably commits all the lines in one transaction (Ingest.ingest) and
   * returns one outcome per line, in order. It may throw (e.g. disk full)
   * only when nothing was committed: the client is told 503 + Retry-After
   * and resends the whole request. Work after the commit (metrics, sealing)
   * must not throw out of it, or a resend would store the events twice.
   */
  sink: (lines: IngestLine[], meta: EventsRequestMeta) => LineOutcome[];
  /** true while the buffer is full (backpressure): respond 503 with Retry-After, read nothing */
  paused: () => boolean;
  /**
   * true once the sidecar is shutting down: respond 503 `shutting_down` and
   * commit nothing more, so no record arrives after the final seal
   */
  stopping?: () => boolean;
  /** server-side faults (a sink that threw, a bug); never a client error */
  onError?: (err: Error) => void;
  /** called once per answered request, for metrics and logs */
  onResponse?: (summary: EventsRequestSummary) => void;
  /**
   * Requests whose bodies may be held in memory at once; more get 503. Bounds
   * memory at about maxInFlight × maxBodyBytes whatever clients do. Default 8.
   */
  maxInFlight?: number;
  /** Retry-After (seconds) while the buffer is full; default 5 */
  retryAfterFullSeconds?: number;
  /** Retry-After (seconds) after a failed commit or when busy; default 1 */
  retryAfterSeconds?: number;
}

export type EventsHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The client went away; there is nobody to answer. */

export function createEventsHandler(opts: EventsHandlerOptions): EventsHandler {
  const maxInFlight = opts.maxInFlight ?? 8;
  const retryFull = String(opts.retryAfterFullSeconds ?? 5);
  const retrySoon = String(opts.retryAfterSeconds ?? 1);
  const lingerBytes = Math.max(opts.maxBodyBytes, 1024 * 1024);
  let inFlight = 0;

  return (req, res) => {
    const summary: EventsRequestSummary = { source: opts.id, requestId: undefined, status: 0, code: undefined, events: 0, accepted: 0, rejected: 0 };
    let bodyRead = !hasBody(req);
    // A client that waits for "100 Continue" sends no body until told to.
    let awaitingContinue = /^\s*100-continue\s*$/i.test(req.headers.expect ?? '');

    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      summary.status = status;
      const text = JSON.stringify(body);
      const h: Record<string, string | number> = {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        ...headers,
      };
      if (summary.requestId) h['x-request-id'] = summary.requestId;
      // Refused before "100 Continue": nothing of the body is on its way, and
      // closing is how RFC 9110 §10.1.1 lets the client know none is wanted.
      if (!bodyRead && awaitingContinue) h.connection = 'close';
      if (!res.headersSent && !res.destroyed && !req.socket.destroyed) {
        res.writeHead(status, h).end(text);
        if (!bodyRead && !awaitingContinue) linger(req, lingerBytes);
      }
      try {
        opts.onResponse?.(summary);
      } catch {
        // a faulty hook must not turn an answered request into a crash
      }
    };
    const refuse = (err: HttpError<EventsCode>, headers: Record<string, string> = {}): void => {
      summary.code = err.code;
      const error: Record<string, unknown> = { code: err.code, message: err.message };
      if (err.line !== undefined) error.line = err.line;
      if (err.index !== undefined) error.index = err.index;
      send(err.status, { error }, headers);
    };
    const retryHeaders = (code: EventsCode): Record<string, string> => ({ 'retry-after': code === 'buffer_full' ? retryFull : retrySoon });
    const fault = (err: unknown): void => {
      try {
        opts.onError?.(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // see above
      }
    };

    let format: EventsFormat;
    let gzip: boolean;
    try {
      if (req.method !== 'POST') {
        refuse(new HttpError(405, 'method_not_allowed', 'use POST'), { allow: 'POST' });
        return;
      }
      format = formatOf(req.headers['content-type']);
      gzip = gzipped(req.headers['content-encoding']);
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > opts.maxBodyBytes) {
        throw new HttpError(413, 'body_too_large', `body is over the ${opts.maxBodyBytes}-byte limit`);
      }
      if (declared !== undefined && Number(declared) === 0) {
        throw new HttpError(400, 'body_empty', 'the body holds no events');
      }
      if (opts.stopping?.()) throw new HttpError(503, 'shutting_down', 'the sidecar is shutting down; retry against its replacement');
      if (opts.paused()) throw new HttpError(503, 'buffer_full', 'the local buffer is full; retry later');
      if (inFlight >= maxInFlight) throw new HttpError(503, 'busy', `${maxInFlight} requests are already being read; retry later`);
    } catch (err) {
      if (!(err instanceof HttpError)) {
        fault(err);
        send(500, { error: { code: 'internal_error', message: 'the request could not be handled' } });
        return;
      }
      refuse(err, err.status === 415 && err.code === 'content_encoding_unsupported' ? { 'accept-encoding': 'gzip' } : err.status === 503 ? retryHeaders(err.code) : {});
      return;
    }

    // Only now that the request is acceptable does a client that asked for it get "100 Continue".
    if (awaitingContinue) {
      res.writeContinue();
      awaitingContinue = false;
    }
    inFlight++;
    summary.requestId = uuidv7();
    readBody(req, opts.maxBodyBytes, gzip)
      .then((body) => {
        bodyRead = true;
        const parsed = parseEventsBody(body, format, opts.maxEvents);
        summary.events = parsed.lines.length;
        // Checked again: the buffer may have filled, or shutdown begun, while this body arrived.
        if (opts.stopping?.()) throw new HttpError(503, 'shutting_down', 'the sidecar is shutting down; retry against its replacement');
        if (opts.paused()) throw new HttpError(503, 'buffer_full', 'the local buffer is full; retry later');
        let outcomes: LineOutcome[];
        try {
          outcomes = opts.sink(parsed.lines, { requestId: summary.requestId!, cloudEvents: format === 'cloudevents' || format === 'cloudevents-batch' });
        } catch (err) {
          fault(err);
          throw new HttpError(503, 'commit_failed', 'the events could not be stored; nothing was stored; retry later');
        }
        const rejected: Array<{ index: number; line: number; code: string }> = [];
        const duplicates: Array<{ index: number; seq: number }> = [];
        let firstSeq: number | null = null;
        let lastSeq: number | null = null;
        let records = 0;
        outcomes.forEach((o, index) => {
          if ('seq' in o && o.duplicate) {
            // stored before under the same event_id: accepted, but no new record
            duplicates.push({ index, seq: o.seq });
            summary.accepted++;
          } else if ('seq' in o) {
            // An event in a format that makes several records (an OTLP/JSON request) takes several seqs.
            const n = o.records ?? 1;
            firstSeq ??= o.seq;
            lastSeq = o.seq + n - 1;
            records += n;
            summary.accepted++;
          } else if ('error' in o) {
            // The code only: Ingest's message may name members of the event.
            rejected.push({ index, line: parsed.lineNumbers[index] ?? 0, code: o.error.code });
          }
        });
        summary.rejected = rejected.length;
        send(202, { request_id: summary.requestId, accepted: summary.accepted, records, first_seq: firstSeq, last_seq: lastSeq, rejected, duplicates });
      })
      .catch((err: unknown) => {
        if (err instanceof BodyAborted) return;
        if (err instanceof HttpError) {
          refuse(err, err.status === 503 ? retryHeaders(err.code) : {});
          return;
        }
        fault(err);
        send(500, { error: { code: 'internal_error', message: 'the request could not be handled' } });
      })
      .finally(() => {
        inFlight--;
      });
  };
}

function gzipped(header: string | undefined): boolean {
  const coding = contentCodingOf(header);
  if (coding === undefined) throw new HttpError(415, 'content_encoding_unsupported', 'Content-Encoding must be gzip or identity');
  return coding === 'gzip';
}

/** Reads the body (request-body.ts), refusing it 413 past `max` received or decoded bytes. */
function readBody(req: IncomingMessage, max: number, gzip: boolean): Promise<Buffer> {
  return readBoundedBody(req, max, gzip, {
    tooLarge: () => new HttpError(413, 'body_too_large', `body is over the ${max}-byte limit`),
    gzipInvalid: () => new HttpError(400, 'gzip_invalid', 'the body is not valid gzip'),
  });
}
