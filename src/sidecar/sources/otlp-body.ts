/**
 * The OTLP receiver's body reading: request-body.ts with the receiver's own
 * refusals, which carry the bytes received for the quarantine row.
 */
import type { IncomingMessage } from 'node:http';
import { readBoundedBody } from './request-body.js';
import { refusals, type OtlpRefusal } from './otlp-request.js';

export { BodyAborted, hasBody, linger } from './request-body.js';

/** A refusal found while reading, with the bytes received until then (for the quarantine row). */
export class BodyRefused extends Error {
  constructor(
    readonly refusal: OtlpRefusal,
    readonly received: number,
  ) {
    super(refusal.message);
    this.name = 'BodyRefused';
  }
}

export function readBody(req: IncomingMessage, max: number, gzip: boolean): Promise<Buffer> {
  return readBoundedBody(req, max, gzip, {
    tooLarge: (received) => new BodyRefused(refusals.tooLarge(max), received),
    gzipInvalid: (received) => new BodyRefused(refusals.gzipInvalid(), received),
  });
}
