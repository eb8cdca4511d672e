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
 */
import { createServer, type Server } from 'node:http';
import { splitHostPort } from '../../config/units.js';
import { SealtrailError } from '../../core/errors.js';
import { capConnections, httpServerOptions, resolveHttpLimits, type HttpLimits } from '../../http-limits.js';
import { listenError } from '../../listen-error.js';
import { otlpTypes } from '../formats/otlp/proto.js';
import { createOtlpHandler, type OtlpRequestSummary, type OtlpSink } from './otlp-http.js';
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
}

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
    const server = createServer(httpServerOptions(this.limits), handler);
    capConnections(server, this.limits);
    // "Expect: 100-continue" reaches the handler before anything is sent, so a
    // request that will be refused gets its final status instead of an
    // invitation to upload; the handler sends "100 Continue" once it accepts.
    server.on('checkContinue', handler);
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

  private bindError(err: unknown): Error {
    const setting = this.opts.setting ?? `sidecar.sources[id=${this.id}].listen`;
    const typed = listenError(err, this.opts.listen, setting);
    const code = (err as { code?: unknown } | null)?.code;
    const message = typed instanceof SealtrailError ? typed.message : `cannot listen on ${this.opts.listen} (${typeof code === 'string' ? code : 'error'})`;
    return new SealtrailError('listen_failed', `${this.life.name}: ${message}`, { cause: err });
  }
}
