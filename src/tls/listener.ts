/**
 * A plain Node HTTP listener, or an HTTPS one following its TLS files, with
 * mTLS refusals answered in the listener's own protocol: the sidecar's
 * telemetry port and its OTLP receivers (the collector, on Fastify, does the
 * same in a hook).
 *
 * Contract:
 * - without tls: http.createServer(http, handler), nothing more.
 * - with tls: an https server with tls.serverOptions({ answerRefusals:
 *   true }), tls attached (its files followed). A request on a connection
 *   whose client certificate tls refuses (none, expired, another CA) goes
 *   to `refuse` with the reason instead of to `handler`, unless
 *   `exempt(req)`; the answer closes the connection (nothing else is served
 *   on it), whatever body is still arriving is discarded, and the refusal
 *   is logged at most once a second per kind.
 * - "Expect: 100-continue" requests reach the same place as the others,
 *   so a refused client is never invited to upload its body.
 * - the caller owns both the server and tls: closing tls stops following
 *   the files, closing the server ends the connections.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { ReloadingServerTls } from './server-tls.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface ListenerOptions {
  /** Node's HTTP server options (timeouts) */
  http: ServerOptions;
  tls?: ReloadingServerTls | undefined;
  /** answers a request whose client certificate tls refuses; `reason` says why in words */
  refuse: (req: IncomingMessage, res: ServerResponse, reason: string) => void;
  /** requests served without looking at the client certificate */
  exempt?: (req: IncomingMessage) => boolean;
}

export function createListener(handler: RequestHandler, opts: ListenerOptions): Server {
  const tls = opts.tls;
  if (!tls) {
    const server = createHttpServer(opts.http, handler);
    server.on('checkContinue', handler);
    return server;
  }
  const checked: RequestHandler = (req, res) => {
    const socket = req.socket as TLSSocket;
    const reason = opts.exempt?.(req) === true ? undefined : tls.clientRefusal(socket);
    if (reason === undefined) {
      handler(req, res);
      return;
    }
    tls.logRefusal(socket, reason);
    res.setHeader('connection', 'close');
    opts.refuse(req, res, reason);
    // The connection closes after the answer; until then what the client still sends is read and dropped.
    req.resume();
  };
  const server = createHttpsServer({ ...opts.http, ...tls.serverOptions({ answerRefusals: true }) }, checked);
  server.on('checkContinue', checked);
  tls.attach(server);
  return server;
}
