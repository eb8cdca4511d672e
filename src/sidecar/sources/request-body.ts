/**
 * Reading a request body within a byte bound, gunzipping as it arrives, and
 * discarding what a client still sends after an early answer: shared by the
 * sidecar's listeners that take bodies (POST /v1/events, the OTLP receiver),
 * each answering a refusal in its own shape.
 *
 * Contracts:
 * - The bound applies to the bytes received and to the bytes decoded: a
 *   decompression bomb is stopped after at most `max` plus one zlib chunk
 *   of output, holding no more than that in memory.
 * - On refusal the request is left paused (see linger); on an aborted or
 *   reset request the promise rejects with BodyAborted, and there is
 *   nobody to answer.
 */
import type { IncomingMessage } from 'node:http';
import { createGunzip } from 'node:zlib';

/** The client went away before its body was complete. */
export class BodyAborted extends Error {
  constructor() {
    super('the client closed the request before its body was complete');
    this.name = 'BodyAborted';
  }
}

/** The listener's own errors for a body over the bound and for gzip that does not inflate; `received`: bytes read so far. */
export interface BodyRefusals {
  tooLarge(received: number): Error;
  gzipInvalid(received: number): Error;
}

/** Whether the request announces a body (a length other than 0, or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export function readBoundedBody(req: IncomingMessage, max: number, gzip: boolean, refuse: BodyRefusals): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;
    const gunzip = gzip ? createGunzip() : undefined;
    // Errors after the outcome is settled (a reset after a 413, a gunzip torn
    // down mid-write) have nobody to report to, but must not go unhandled.
    req.on('error', ignore);
    gunzip?.on('error', ignore);

    const finish = (err: Error | undefined, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onClose);
      if (err) {
        req.pause();
        chunks.length = 0;
        gunzip?.destroy();
        reject(err);
      } else {
        resolve(body!);
      }
    };
    const tooLarge = (): Error => refuse.tooLarge(received);
    const keep = (chunk: Buffer): void => {
      decoded += chunk.length;
      if (decoded > max) finish(tooLarge());
      else chunks.push(chunk);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > max) {
        finish(tooLarge());
        return;
      }
      if (!gunzip) {
        keep(chunk);
      } else if (!gunzip.write(chunk)) {
        req.pause();
        gunzip.once('drain', () => {
          if (!settled) req.resume();
        });
      }
    };
    const onEnd = (): void => {
      if (gunzip) gunzip.end();
      else finish(undefined, Buffer.concat(chunks, decoded));
    };
    const onAbort = (): void => finish(new BodyAborted());
    const onClose = (): void => {
      if (!req.complete) finish(new BodyAborted());
    };
    if (gunzip) {
      gunzip.on('data', (chunk: Buffer) => {
        if (!settled) keep(chunk);
      });
      gunzip.on('end', () => finish(undefined, Buffer.concat(chunks, decoded)));
      gunzip.on('error', () => finish(refuse.gzipInvalid(received)));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onClose);
  });
}

/**
 * After an answer sent before the body was read: discards what the client
 * is still sending, up to `cap` bytes, then closes. Closing at once would
 * make the kernel answer the client's next write with a reset, which can
 * destroy the answer before the client reads it. Discarding holds no
 * memory; the server's request timeout bounds the time.
 */
export function linger(req: IncomingMessage, cap: number): void {
  if (req.complete) return;
  let discarded = 0;
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > cap) req.socket.destroy();
  });
  req.resume();
}

function ignore(): void {}
