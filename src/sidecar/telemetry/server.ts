import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { splitHostPort } from '../../config/units.js';
import type { SidecarMetrics } from './metrics.js';

export interface TelemetryProbes {
  /** process and database alive */
  healthy(): boolean;
  /** sources open; deliberately not tied to the collector, since a sidecar's readiness gates the whole pod */
  ready(): boolean;
  /** refresh gauges just before a scrape */
  refresh(): void;
}

export interface TelemetryServerOptions {
  /** handles every method on /v1/events (the http source); absent, that path is like any other */
  events?: (req: IncomingMessage, res: ServerResponse) => void;
  /** ms to receive a request's headers; default 10 s */
  headersTimeoutMs?: number;
  /** ms to receive a whole request, body included (slowloris bound); default 60 s */
  requestTimeoutMs?: number;
  /** ms between Node's checks of those two timeouts; default 1 s */
  timeoutCheckIntervalMs?: number;
}

export const EVENTS_PATH = '/v1/events';

export async function startTelemetryServer(
  listen: string,
  metrics: SidecarMetrics,
  probes: TelemetryProbes,
  opts: TelemetryServerOptions = {},
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const requestTimeout = opts.requestTimeoutMs ?? 60_000;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (opts.events && path === EVENTS_PATH) {
      opts.events(req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      probes.refresh();
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end('metrics unavailable\n'),
      );
    } else if (path === '/healthz') {
      const ok = probes.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
    } else if (path === '/readyz') {
      const ok = probes.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  };
  const server = createServer(
    {
      // Node insists on headersTimeout ≤ requestTimeout.
      headersTimeout: Math.min(opts.headersTimeoutMs ?? 10_000, requestTimeout),
      requestTimeout,
      connectionsCheckingInterval: opts.timeoutCheckIntervalMs ?? 1_000,
    },
    onRequest,
  );
  // "Expect: 100-continue" reaches the handler before anything is sent, so a
  // request that will be refused (too large, buffer full) gets its final
  // status instead of an invitation to upload the body; the events handler
  // sends "100 Continue" itself once it accepts.
  server.on('checkContinue', onRequest);
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // a scraper's keep-alive connection must not hold shutdown open
        server.closeAllConnections();
      }),
  };
}
