/**
 * The otlp source: an OTLP/HTTP receiver on its own port (default
 * 127.0.0.1:4318, where OpenTelemetry exporters send by default), serving
 * otlp-http.ts under the lifecycle every source shares.
 *
 * Contracts:
 * - start() loads the OTLP definitions (`package_incomplete` when the
 *   installation lacks them) and binds the port; an address that cannot be
 *   bound is a typed `listen_failed` error naming the source and the
 *   address.
 * - paused: every request is answered 503 `buffer_full` with Retry-After
 *   and nothing is read.
 * - from the moment drain() is called (synchronously) every request is
 *   answered 503 `shutting_down`, so no record arrives after the final
 *   seal; the port stays open until close() so clients are told to retry
 *   rather than refused a connection. A request's commit is synchronous, so
 *   there is never one in flight to wait for.
 * - close() closes the listener and every connection, idle or not.
 * - The listener keeps `http` (timeouts, connection cap) as the sidecar's
 *   other listeners do: a client that trickles its headers or body is cut
 *   off (408), and connections past the cap are closed at once.
 * - With `tls` (the source's `tls:` block) the port speaks HTTPS only. With
 *   client_ca_file, a request whose connection presented no client
 *   certificate, or one that does not verify, is answered 403 with a
 *   google.rpc.Status (PERMISSION_DENIED, message
 *   "client_certificate_refused: <why>") in the request's encoding, and
 *   the connection is closed; nothing of it is read or committed. The
 *   caller owns `tls` (close() does not stop following its files).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { splitHostPort } from '../../config/units.js';
import type { OtlpCode } from '../../core/error-codes.js';
import { SealtrailError } from '../../core/errors.js';
import { capConnections, httpServerOptions, resolveHttpLimits, type HttpLimits } from '../../http-limits.js';
import { listenError } from '../../listen-error.js';
import { createListener } from '../../tls/listener.js';
import type { ReloadingServerTls } from '../../tls/server-tls.js';
import { encodeOtlpStatus } from '../formats/otlp/index.js';
import { otlpTypes } from '../formats/otlp/proto.js';
import { createOtlpHandler, type OtlpRequestSummary, type OtlpSink } from './otlp-http.js';
import { CONTENT_TYPES, encodingOf, signalOf } from './otlp-request.js';
import { positiveInt, SourceLifecycle, type Deadline, type Source, type SourceReporting } from './source.js';

export interface OtlpSourceOptions extends SourceReporting {
  id: string;
  /** host:port */
  listen: string;
  /** decoded (after gunzip) bytes */
  maxBodyBytes: number;
  /** spans / log records per request */
  maxItems: number;
  http: HttpLimits;
  /**
   * Commits the request's events in one transaction and says what became
   * of each (LineOutcome[] in order); throws only when nothing was
   * committed.
   * lines: one per span/log record, `{ offset: index in the request,
   * length: 0, value: event }`; or, for a request refused whole after it
   * was read, one line `{ offset: 0, length: <body bytes>, error: { code,
   * message } }` so the refusal is quarantined and reported to auditors (no
   * bytes kept).
   * meta.path: 'POST /v1/traces' | 'POST /v1/logs'; meta.requestId: unique
   * per request (uuid).
   */
  sink: OtlpSink;
  /** once per answered request, for metrics and logs (never carries body bytes) */
  onResponse?: (summary: OtlpRequestSummary) => void;
  /** requests whose bodies may be held in memory at once (about maxInFlight × maxBodyBytes); default 8 */
  maxInFlight?: number;
  /** Retry-After (seconds) while the buffer is full; default 5 */
  retryAfterFullSeconds?: number;
  /** Retry-After (seconds) after a failed commit, when busy or shutting down; default 1 */
  retryAfterSeconds?: number;
  /** the config key `listen` came from, for a bind error; default sidecar.sources[id=<id>].listen */
  setting?: string;
  /** HTTPS with these files, followed on disk; with client_ca_file, client certificates are checked (see the contract) */
  tls?: ReloadingServerTls;
}

/** google.rpc.Code PERMISSION_DENIED: the gRPC name of 403. */
const RPC_PERMISSION_DENIED = 7;

export class OtlpSource implements Source {
  readonly id: string;
  private readonly life: SourceLifecycle;
  private readonly opts: OtlpSourceOptions;
  private readonly host: string;
  private readonly wantedPort: number;
  private readonly limits: HttpLimits;
  private server: Server | undefined;
  private boundPort = 0;
  private listening = false;

  constructor(opts: OtlpSourceOptions) {
    const life = new SourceLifecycle(`otlp source ${opts.id}`, opts, (code, message, o) => new SealtrailError(code, message, o));
    this.id = opts.id;
    this.life = life;
    this.opts = opts;
    positiveInt(life, 'maxBodyBytes', opts.maxBodyBytes, 0);
    positiveInt(life, 'maxItems', opts.maxItems, 0);
    if (opts.maxInFlight !== undefined) positiveInt(life, 'maxInFlight', opts.maxInFlight, 0);
    try {
      ({ host: this.host, port: this.wantedPort } = splitHostPort(opts.listen));
    } catch (err) {
      throw life.optionError(`listen ${(err as Error).message}`);
    }
    try {
      this.limits = resolveHttpLimits(opts.http, 'telemetry_options_invalid');
    } catch (err) {
      throw life.optionError((err as Error).message);
    }
  }

  get ready(): boolean {
    return this.listening && !this.life.closed;
  }

  /** the bound port (the one the OS chose for listen ':0') */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    // The definitions are read now, not on the first request: an incomplete
    // installation fails at start, and no request waits for the load.
    otlpTypes();
    this.life.start();
    const life = this.life;
    const handler = createOtlpHandler({
      id: this.id,
      maxBodyBytes: this.opts.maxBodyBytes,
      maxItems: this.opts.maxItems,
      sink: this.opts.sink,
      paused: () => life.paused,
      stopping: () => life.stopping || life.closed,
      onError: (err) => life.fail(err),
      ...(this.opts.onResponse ? { onResponse: this.opts.onResponse } : {}),
      ...(this.opts.maxInFlight !== undefined ? { maxInFlight: this.opts.maxInFlight } : {}),
      ...(this.opts.retryAfterFullSeconds !== undefined ? { retryAfterFullSeconds: this.opts.retryAfterFullSeconds } : {}),
      ...(this.opts.retryAfterSeconds !== undefined ? { retryAfterSeconds: this.opts.retryAfterSeconds } : {}),
    });
    // "Expect: 100-continue" reaches the handler before anything is sent (the
    // listener routes it there), so a request that will be refused gets its
    // final status instead of an invitation to upload; the handler sends
    // "100 Continue" once it accepts.
    const server = createListener(handler, {
      http: httpServerOptions(this.limits),
      tls: this.opts.tls,
      refuse: (req, res, reason) => this.refuseClient(req, res, reason),
    });
    capConnections(server, this.limits);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(this.bindError(err)));
      server.listen(this.wantedPort, this.host, () => resolve());
    }).catch((err: unknown) => {
      this.server = undefined;
      server.close();
      throw err;
    });
    server.on('error', (err) => life.report('source_read_failed', 'the listener failed', err));
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.wantedPort;
    this.listening = true;
    if (life.closed) await this.closeServer();
  }

  pause(): void {
    this.life.pause();
  }

  resume(): void {
    this.life.resume();
  }

  async drain(deadline: Deadline): Promise<void> {
    await this.life.drain(deadline, async () => undefined);
  }

  async close(): Promise<void> {
    this.life.close();
    await this.closeServer();
  }

  private closeServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.listening = false;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      // an exporter's kept-alive connection must not hold shutdown open
      server.closeAllConnections();
    });
  }

  /** A client certificate refused: answered as the handler answers its other refusals, counted like them. */
  private refuseClient(req: IncomingMessage, res: ServerResponse, reason: string): void {
    const named = encodingOf(req.headers['content-type']);
    const encoding = named ?? 'json';
    const signal = signalOf(req.url);
    const code: OtlpCode = 'client_certificate_refused';
    let body: Uint8Array | string = '';
    try {
      body = encodeOtlpStatus(RPC_PERMISSION_DENIED, `${code}: ${reason}`, encoding);
    } catch (err) {
      this.life.report('source_read_failed', 'could not encode a refusal', err);
    }
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(403, { 'content-type': CONTENT_TYPES[encoding], 'content-length': bytes.length }).end(bytes);
    try {
      this.opts.onResponse?.({
        source: this.id,
        requestId: undefined,
        path: `${req.method ?? '?'} ${signal ? `/v1/${signal}` : '(another path)'}`,
        status: 403,
        encoding: named,
        gzip: undefined,
        code,
        items: 0,
        accepted: 0,
        rejected: 0,
      });
    } catch {
      // a faulty hook must not turn an answered request into a crash
    }
  }

  private bindError(err: unknown): Error {
    const setting = this.opts.setting ?? `sidecar.sources[id=${this.id}].listen`;
    const typed = listenError(err, this.opts.listen, setting);
    const code = (err as { code?: unknown } | null)?.code;
    const message = typed instanceof SealtrailError ? typed.message : `cannot listen on ${this.opts.listen} (${typeof code === 'string' ? code : 'error'})`;
    return new SealtrailError('listen_failed', `${this.life.name}: ${message}`, { cause: err });
  }
}
