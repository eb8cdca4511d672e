/**
 * The sidecar's own port (sidecar.telemetry.listen): /metrics, /healthz,
 * /readyz, and POST /v1/events when an http source is configured.
 *
 * Contract:
 * - with `tls` (sidecar.telemetry.tls) the port speaks HTTPS only, its
 *   files followed on disk (src/tls/). With client_ca_file every request
 *   but the probes (GET/HEAD /healthz and /readyz) needs a client
 *   certificate that verifies against the bundle; otherwise it is answered
 *   403 `{"error":{"code":"client_certificate_refused","message":<why>}}`
 *   and the connection is closed. The probes are exempt because the
 *   kubelet presents no client certificate, and they tell nothing but
 *   up/ready: /readyz adds its notes (why shipping halted) only for a
 *   client whose certificate verified.
 * - the caller owns `tls`: close() ends the listener and its connections,
 *   not the following of the files.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { EventsCode } from '../../core/error-codes.js';
import { splitHostPort } from '../../config/units.js';
import { capConnections, httpServerOptions, resolveHttpLimits, type HttpLimits } from '../../http-limits.js';
import { listenError } from '../../listen-error.js';
import { createListener } from '../../tls/listener.js';
import type { ReloadingServerTls } from '../../tls/server-tls.js';
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
  /** HTTPS (sidecar.telemetry.tls), files followed; with client_ca_file, client certificates are checked (see the contract) */
  tls?: ReloadingServerTls;
}

export const EVENTS_PATH = '/v1/events';
const PROBES = new Set(['/healthz', '/readyz']);

/** The kubelet's probes, served whatever the client certificate (see the contract). */
function isProbe(req: IncomingMessage): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && PROBES.has((req.url ?? '/').split('?')[0]!);
}

/** A client certificate refused: the error shape of POST /v1/events, on every path. */
function refuseClient(_req: IncomingMessage, res: ServerResponse, reason: string): void {
  const code: EventsCode = 'client_certificate_refused';
  const text = JSON.stringify({ error: { code, message: reason } });
  res.writeHead(403, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
}

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
      // Under mTLS the probe is open to clients without a certificate (the
      // kubelet): they get the verdict alone, not the collector's messages.
      const unverified = opts.tls !== undefined && opts.tls.clientRefusal(req.socket as TLSSocket) !== undefined;
      const notes = unverified ? [] : (probes.notes?.() ?? []);
      const text = [ok ? 'ready' : 'not ready', ...notes].join('\n') + '\n';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(text);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  };
  // "Expect: 100-continue" reaches the handler before anything is sent (the
  // listener routes it there), so a request that will be refused (too
  // large, buffer full) gets its final status instead of an invitation to
  // upload the body; the events handler sends "100 Continue" itself once it
  // accepts.
  const server = createListener(onRequest, {
    http: httpServerOptions(limits, opts.timeoutCheckIntervalMs),
    tls: opts.tls,
    refuse: refuseClient,
    exempt: isProbe,
  });
  capConnections(server, limits);
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(listenError(err, listen, opts.setting ?? 'sidecar.telemetry.listen (sealtrail dev: --telemetry-listen)')));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server,
    url: `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${actualPort}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // a scraper's keep-alive connection must not hold shutdown open
        server.closeAllConnections();
      }),
  };
}
