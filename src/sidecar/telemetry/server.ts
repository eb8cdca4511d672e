import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { splitHostPort } from '../../config/units.js';
import { capConnections, httpServerOptions, resolveHttpLimits, type HttpLimits } from '../../http-limits.js';
import { listenError } from '../../listen-error.js';
import type { SidecarMetrics } from './metrics.js';

export interface TelemetryProbes {
  /** process and database alive */
  healthy(): boolean;
  /** sources open; deliberately not tied to the collector, since a sidecar's readiness gates the whole pod */
  ready(): boolean;
  /** refresh gauges just before a scrape */
  refresh(): void;
  /**
   * Lines /readyz adds below its verdict: conditions an operator must see
   * (shipping halted) that deliberately do not make the sidecar unready.
   */
  notes?(): string[];
}

export interface TelemetryServerOptions {
  /** handles every method on /v1/events (the http source); absent, that path is like any other */
  events?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Header, request and keep-alive timeouts (ms) and the connection cap
   * (sidecar.telemetry.http); what is absent gets DEFAULT_HTTP_LIMITS. The
   * events route reads bodies here, so these bound slow clients on it too.
   */
  http?: Partial<HttpLimits>;
  /** the config key (or flag) `listen` came from, for a bind error; default sidecar.telemetry.listen */
  setting?: string;
  /** ms between Node's checks of the header and request timeouts; default derived from them */
  timeoutCheckIntervalMs?: number;
}

export const EVENTS_PATH = '/v1/events';

export async function startTelemetryServer(
  listen: string,
  metrics: SidecarMetrics,
  probes: TelemetryProbes,
  opts: TelemetryServerOptions = {},
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const limits = resolveHttpLimits(opts.http, 'telemetry_options_invalid', 'telemetry.http');
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
      const notes = probes.notes?.() ?? [];
      const text = [ok ? 'ready' : 'not ready', ...notes].join('\n') + '\n';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(text);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  };
  const server = createServer(httpServerOptions(limits, opts.timeoutCheckIntervalMs), onRequest);
  capConnections(server, limits);
  // "Expect: 100-continue" reaches the handler before anything is sent, so a
  // request that will be refused (too large, buffer full) gets its final
  // status instead of an invitation to upload the body; the events handler
  // sends "100 Continue" itself once it accepts.
  server.on('checkContinue', onRequest);
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, listen, opts.setting ?? 'sidecar.telemetry.listen (sealtrail dev: --telemetry-listen)')));
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
