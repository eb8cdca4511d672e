/**
 * What a POST body may be labelled with, checked before a byte of it is
 * read: UTF-8 JSON, sent as is or gzip-compressed. Anything else is refused
 * rather than read as something it is not (a body labelled gzip but sent
 * plain was once acknowledged; a latin1 body would be decoded as UTF-8).
 * The same rules as the sidecar's POST /v1/events (docs/http-events.md).
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { contentCodingOf, mediaTypeOf, type ContentCoding } from '../http-body.js';
import type { ApiCode } from '../core/error-codes.js';
import { HttpError } from '../core/errors.js';

/** A stream fastify reads the body from; `receivedEncodedLength` is what its Content-Length check compares. */
type DecodedBody = PassThrough & { receivedEncodedLength: number };

/**
 * Adds the checks to every route of `scope` (register it inside the scope
 * that owns the body-reading routes). A gzip body is decoded as it arrives
 * and refused (413) once either its encoded or its decoded bytes pass
 * `maxBytes`, so a decompression bomb costs at most `maxBytes` plus one zlib
 * chunk of output.
 */
export function registerBodyEncoding(scope: FastifyInstance, maxBytes: number): void {
  scope.addHook('preParsing', async (req, reply, payload) => {
    const mediaType = checkCharset(req.headers['content-type']);
    let coding: ContentCoding;
    try {
      coding = contentCoding(req.headers['content-encoding']);
    } catch (err) {
      // RFC 9110 §15.5.16: say which codings would have been accepted.
      void reply.header('accept-encoding', 'gzip');
      throw err;
    }
    // Only a body the route will read is decoded: for any other media type
    // fastify answers 415 without reading, and a gunzip fed from the socket
    // would then hold the connection until the request timeout.
    if (coding === 'identity' || mediaType !== 'application/json') return payload;
    return gunzipWithin(req.raw, payload, maxBytes);
  });
}

/** The lowercased media type; 415 for a charset other than UTF-8. */
function checkCharset(contentType: string | undefined): string {
  const { mediaType, utf8 } = mediaTypeOf(contentType);
  if (!utf8) throw new HttpError(415, 'unsupported_media_type', 'the only accepted charset is utf-8');
  return mediaType;
}

function contentCoding(header: string | undefined): ContentCoding {
  const coding = contentCodingOf(header);
  if (coding === undefined) throw new HttpError(415, 'content_encoding_unsupported', 'Content-Encoding must be gzip or identity');
  return coding;
}

function tooLarge(): HttpError<ApiCode> {
  return new HttpError(413, 'body_too_large', 'request body is too large (the limit applies after gzip decoding)');
}

/**
 * The decoded body of `source`. On refusal the rest of the body is read and
 * dropped (fastify answers a failed parse with Connection: close), so the
 * client sees the answer rather than a reset.
 */
function gunzipWithin(req: IncomingMessage, source: Readable, maxBytes: number): DecodedBody {
  const gunzip = createGunzip();
  const out = new PassThrough() as DecodedBody;
  out.receivedEncodedLength = 0;
  let decoded = 0;
  let settled = false;

  const stop = (err: Error): void => {
    if (settled) return;
    settled = true;
    source.unpipe(gunzip);
    gunzip.destroy();
    if (!req.destroyed) source.resume();
    out.destroy(err);
  };
  // Errors after the outcome is settled (a reset after the answer, a gunzip
  // torn down mid-write) have nobody to report to but must not go unhandled.
  gunzip.on('error', () => stop(new HttpError(400, 'gzip_invalid', 'request body is not valid gzip')));
  out.on('error', () => undefined);

  source.on('data', (chunk: Buffer) => {
    out.receivedEncodedLength += chunk.length;
    if (out.receivedEncodedLength > maxBytes) stop(tooLarge());
  });
  // The client went away mid-body: fastify is told through the stream it reads.
  source.on('error', (err) => stop(err));
  req.on('close', () => {
    if (!req.complete) stop(new HttpError(400, 'body_incomplete', 'the request body was cut off'));
  });

  gunzip.on('data', (chunk: Buffer) => {
    if (settled) return;
    decoded += chunk.length;
    if (decoded > maxBytes) {
      stop(tooLarge());
      return;
    }
    if (!out.write(chunk)) {
      gunzip.pause();
      out.once('drain', () => gunzip.resume());
    }
  });
  gunzip.on('end', () => {
    if (settled) return;
    settled = true;
    out.end();
  });
  source.pipe(gunzip);
  return out;
}
