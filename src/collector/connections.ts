/**
 * The collector's connection handling: the limits of src/http-limits.ts as
 * fastify options, and answers to clients Node cuts off before a request
 * reaches fastify, in the collector's error shape.
 */
import { STATUS_CODES, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { HttpCode } from '../core/error-codes.js';
import { httpServerOptions, type HttpLimits } from '../http-limits.js';
import { errorBody } from './http-error.js';

export interface ConnectionOptions {
  http: ServerOptions;
  requestTimeout: number;
  keepAliveTimeout: number;
  clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => void;
}

/**
 * Fastify sets requestTimeout and keepAliveTimeout on the server itself after
 * creating it, from its own options (defaults 0, i.e. never, and 72 s), so
 * they must be passed there as well as to Node. The connection cap is set on
 * the server once it exists (capConnections).
 */
export function connectionOptions(limits: HttpLimits, logger: Logger): ConnectionOptions {
  return {
    http: httpServerOptions(limits),
    requestTimeout: limits.request_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    clientErrorHandler: (err, socket) => answerClientError(err, socket, logger),
  };
}

const CLIENT_ERRORS: Record<string, { status: number; code: HttpCode; message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'request headers are too large' },
};

/**
 * Node's `clientError`: a timed-out or unparsable connection. Only a
 * connection with no answer under way gets one; the socket is closed either
 * way. Logged at debug: a client that trickles on purpose must not be able
 * to fill the log.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket, logger: Logger): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const known = (err.code && CLIENT_ERRORS[err.code]) || { status: 400, code: 'bad_request', message: 'malformed request' };
  logger.debug({ code: known.code, status: known.status }, 'connection closed');
  // Node keeps the response in flight on the socket; once its head is out,
  // another status line would corrupt what the client reads.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(errorBody(known.code, known.message));
    socket.write(
      `HTTP/1.1 ${known.status} ${STATUS_CODES[known.status]}\r\n` +
        `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
