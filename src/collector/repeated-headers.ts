import type { FastifyInstance } from 'fastify';
import { HttpError } from '../core/errors.js';

/**
 * Refuses a request with more than one Authorization header (400
 * `authorization_repeated`) or more than one Content-Type (400
 * `content_type_repeated`), on every route. Node keeps only the first in
 * `req.headers`, while a proxy in front may have checked or logged another:
 * two credentials, or two labels for one body (one of them, say, a latin1
 * charset), are ambiguous, so neither is used.
 */
export function registerSingleAuthorization(app: FastifyInstance): void {
  app.addHook('onRequest', (req, _reply, done) => {
    const raw = req.raw.rawHeaders;
    if (countHeader(raw, 'authorization') > 1) done(new HttpError(400, 'authorization_repeated', 'more than one Authorization header'));
    else if (countHeader(raw, 'content-type') > 1) done(new HttpError(400, 'content_type_repeated', 'more than one Content-Type header'));
    else done();
  });
}

/** rawHeaders alternates names and values, names as the client spelt them. */
function countHeader(rawHeaders: readonly string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === lowerName.length && rawHeaders[i]!.toLowerCase() === lowerName) n++;
  }
  return n;
}
