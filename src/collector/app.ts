import type { Server as TlsServer, TLSSocket } from 'node:tls';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { HttpCode } from '../core/error-codes.js';
import { HttpError, SealtrailError } from '../core/errors.js';
import { capConnections, resolveHttpLimits } from '../http-limits.js';
import { AdminAuth } from './auth.js';
import { connectionOptions } from './connections.js';
import type { CollectorContext } from './context.js';
import { CursorCodec } from './cursor.js';
import { listenError } from '../listen-error.js';
import { errorBody } from './http-error.js';
import { KeyedMutex } from './mutex.js';
import { RateLimitedError } from './rate-limit.js';
import { ReadAuditor } from './read-audit.js';
import { registerSingleAuthorization } from './repeated-headers.js';
import { COLLECTOR_STREAM_PREFIX, isCollectorStream } from '../core/reserved-streams.js';
import type { CollectorOptions } from './options.js';
import { registerAuditRoute } from './routes/audit.js';
import { registerBatchesRoute } from './routes/batches.js';
import { registerCheckpointsRoute } from './routes/checkpoints.js';
import { registerConsistencyRoute } from './routes/consistency.js';
import { registerExportRoute } from './routes/export.js';
import { CollectorMetrics } from './metrics.js';
import { isProbe, registerHealthRoute } from './routes/health.js';
import { registerRecordRoute } from './routes/record.js';
import { registerReportRoute } from './routes/report.js';
import { registerStreamRecordsRoute } from './routes/stream-records.js';
import { registerStreamsRoute } from './routes/streams.js';
import { registerVerifyRoute } from './routes/verify.js';
import { StoreError, type AuditStore } from './store/types.js';
import { StreamKeys } from './stream-keys.js';
import { ShipIdentities } from './ship-identities.js';
import { ReloadingServerTls } from '../tls/server-tls.js';
import { logTlsRefusals } from './tls-log.js';

/** The TLS of each app built with collector.tls, for startCollector and tests (rotation). */
const appTls = new WeakMap<FastifyInstance, ReloadingServerTls>();

/** The reloading TLS of an app built with `tls`, undefined for plain HTTP. */
export function collectorTls(app: FastifyInstance): ReloadingServerTls | undefined {
  return appTls.get(app);
}

/** Fastify's own 4xx errors, renamed to stable codes with messages that echo nothing. */
const FASTIFY_ERRORS: Record<string, { status: number; code: HttpCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'body_too_large', message: 'request body is too large' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'body_malformed', message: 'request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'body_malformed', message: 'request body is empty' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'unsupported_media_type',
    message: 'content-type must be application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'body_malformed',
    message: 'request body size does not match content-length',
  },
};

function buildContext(opts: CollectorOptions, store: AuditStore, logger: Logger): CollectorContext {
  if (!Number.isSafeInteger(opts.max_body_bytes) || opts.max_body_bytes <= 0) {
    throw new SealtrailError('collector_options_invalid', 'max_body_bytes must be a positive integer');
  }
  const hmacKeys = new Map<string, Buffer>();
  for (const k of opts.hmac_keys) {
    if (hmacKeys.has(k.id)) throw new SealtrailError('collector_options_invalid', `hmac_keys: duplicate id ${k.id}`);
    if (k.key.length < 16) throw new SealtrailError('collector_options_invalid', `hmac_keys: key ${k.id} shorter than 16 bytes`);
    hmacKeys.set(k.id, k.key);
  }
  // The collector's own chain key verifies its read-audit stream server-side (GET /v1/verify).
  const ownKey = opts.read_audit?.hmac_key;
  if (ownKey) {
    const known = hmacKeys.get(ownKey.id);
    if (known && !known.equals(ownKey.key)) {
      throw new SealtrailError('collector_options_invalid', `hmac_keys: key ${ownKey.id} differs from the collector's own key with that id`);
    }
    hmacKeys.set(ownKey.id, ownKey.key);
  }
  let auth: AdminAuth;
  let streamKeys: StreamKeys;
  let shipIdentities: ShipIdentities | undefined;
  try {
    shipIdentities = opts.ship_identities?.length ? new ShipIdentities(opts.ship_identities) : undefined;
    auth = new AdminAuth({
      admin_tokens: opts.admin_tokens,
      ...(opts.tokens ? { tokens: opts.tokens } : {}),
      ...(opts.rate_limit ? { rate_limit: opts.rate_limit } : {}),
    });
    const own = opts.read_audit;
    const reserved = opts.streams.find((s) => isCollectorStream(s.match));
    if (reserved) {
      throw new Error(
        `streams: "${reserved.match}" names collectors' read-audit streams (${COLLECTOR_STREAM_PREFIX}...); their key is the collector's signing key`,
      );
    }
    // Collector streams, this replica's and its peers' (replicas share
    // collector.keys), are verified with the collector key: the exact entry
    // and the longer prefix win over any shorter pattern such as "*".
    streamKeys = new StreamKeys(
      own
        ? [{ match: own.stream, vkey: own.vkey }, { match: `${COLLECTOR_STREAM_PREFIX}*`, vkey: own.vkey }, ...opts.streams]
        : opts.streams,
    );
  } catch (err) {
    throw new SealtrailError('collector_options_invalid', (err as Error).message, { cause: err });
  }
  const streamLocks = new KeyedMutex();
  return {
    opts,
    store,
    logger,
    auth,
    // Hashed tokens join the derivation only when configured, so cursors of
    // a plain-token deployment stay valid across this change.
    cursors: opts.cursor_key
      ? new CursorCodec(opts.cursor_key)
      : CursorCodec.fromSecrets([...opts.admin_tokens, ...(opts.tokens ?? []).map((t) => t.sha256.toLowerCase())]),
    streamKeys,
    shipIdentities,
    hmacKeys,
    streamLocks,
    readAudit: new ReadAuditor(store, opts.read_audit, streamLocks, logger.child({ component: 'read-audit' })),
    metrics: new CollectorMetrics(),
  };
}

/**
 * The collector's HTTP app, not yet listening. The store is the caller's: the
 * app never closes it, so one store can outlive several app instances (tests,
 * graceful restarts).
 */
export function buildCollectorApp(opts: CollectorOptions, store: AuditStore, logger: Logger): FastifyInstance {
  const ctx = buildContext(opts, store, logger);
  const limits = resolveHttpLimits(opts.http, 'collector_options_invalid');
  const connection = connectionOptions(limits, logger);
  // Files are read and checked here, before anything listens (FileError/TlsError name the file and key).
  const tls = opts.tls
    ? new ReloadingServerTls(opts.tls, {
        field: 'collector.tls',
        logger: logger.child({ component: 'tls' }),
        ...(opts.tls.poll_ms !== undefined ? { pollMs: opts.tls.poll_ms } : {}),
        onReload: () => ctx.metrics.tlsReloads.inc({ result: 'applied' }),
        onReloadError: () => ctx.metrics.tlsReloads.inc({ result: 'refused' }),
      })
    : undefined;
  const app = Fastify({
    loggerInstance: logger,
    // Slow clients are cut off (see src/http-limits.ts); fastify's own
    // defaults would keep them forever.
    ...connection,
    // With TLS fastify builds an https server from these alone, so the
    // timeouts of `http` go in with the certificate.
    // Client certificates are checked per request (below) so a refused
    // sidecar gets a 403 naming the reason instead of a bare reset.
    ...(tls ? { https: { ...connection.http, ...tls.serverOptions({ answerRefusals: true }) } } : {}),
    // Default request logs carry URLs with filter values (actor ids,
    // tenants); our own line below names only the route pattern.
    disableRequestLogging: true,
    bodyLimit: opts.max_body_bytes,
    routerOptions: { maxParamLength: 300 },
    return503OnClosing: true,
    // Router-level errors (a path like /v1/streams/%ZZ/records, a bad
    // content-type header) skip setErrorHandler; without this they answer in
    // Fastify's own shape and echo the URL.
    frameworkErrors: (err: FastifyError, _req: unknown, reply: { code(status: number): { send(body: unknown): unknown } }) => {
      const known = FASTIFY_ERRORS[err.code];
      const status = known?.status ?? 400;
      void reply.code(status).send(errorBody(known?.code ?? 'bad_request', known?.message ?? 'malformed request'));
    },
  }) as unknown as FastifyInstance;
  capConnections(app.server, limits);
  if (tls) {
    tls.attach(app.server as unknown as TlsServer);
    logTlsRefusals(app.server as unknown as TlsServer, logger);
    appTls.set(app, tls);
    app.addHook('onClose', async () => tls.close());
    // First hook of every request, 404s included (the contract of serverOptions({ answerRefusals })).
    // The probes are exempt: the kubelet presents no client certificate,
    // and they tell nothing but up/ready.
    app.addHook('onRequest', async (req, reply) => {
      if (isProbe(req.method, req.url)) return;
      const refusal = tls.clientRefusal(req.raw.socket as TLSSocket);
      if (refusal === undefined) return;
      reply.header('connection', 'close');
      throw new HttpError(403, 'client_certificate_refused', refusal);
    });
  }
  registerSingleAuthorization(app);

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ route, method: req.method, status: reply.statusCode });
    ctx.metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
    req.log.info(
      {
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  // Every error answer is counted by route pattern and code (sealtrail_collector_errors_total).
  const counted = (req: FastifyRequest, code: HttpCode, message: string) => {
    ctx.metrics.errors.inc({ route: req.routeOptions.url ?? 'unmatched', code });
    return errorBody(code, message);
  };

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    if (err instanceof HttpError) {
      if (err.status === 401) reply.header('www-authenticate', 'Bearer');
      if (err.status === 503) reply.header('retry-after', '1');
      if (err instanceof RateLimitedError) reply.header('retry-after', String(err.retryAfter));
      const level = err.status === 409 ? 'warn' : 'info';
      req.log[level]({ code: err.code, status: err.status }, err.message);
      return reply.code(err.status).send(counted(req, err.code, err.message));
    }
    const fe = err as FastifyError;
    const known = fe.code ? FASTIFY_ERRORS[fe.code] : undefined;
    if (known) {
      req.log.info({ code: known.code, status: known.status }, known.message);
      return reply.code(known.status).send(counted(req, known.code, known.message));
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      req.log.info({ code: fe.code, status: fe.statusCode }, 'request refused');
      return reply.code(fe.statusCode).send(counted(req, 'bad_request', 'request refused'));
    }
    // A read the store gave up on (Postgres statement_timeout, lost
    // connection) is "try again", not a server bug.
    const sqlState = (err as { code?: unknown }).code;
    if (sqlState === '57014' || (err instanceof StoreError && err.code === 'store_unavailable')) {
      req.log.warn({ code: 'store_timeout', sqlstate: sqlState }, 'store query timed out or store unavailable');
      reply.header('retry-after', '1');
      return reply.code(503).send(counted(req, 'store_unavailable', 'the store did not answer in time; retry or narrow the query'));
    }
    // Unexpected: log the detail, answer without it.
    req.log.error({ err: { type: err.name, code: fe.code, message: err.message, stack: err.stack } }, 'internal error');
    return reply.code(500).send(counted(req, 'internal', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(counted(req, 'not_found', 'no such route'));
  });

  registerHealthRoute(app, ctx);
  registerBatchesRoute(app, ctx);
  registerAuditRoute(app, ctx);
  registerStreamsRoute(app, ctx);
  registerCheckpointsRoute(app, ctx);
  registerStreamRecordsRoute(app, ctx);
  registerRecordRoute(app, ctx);
  registerConsistencyRoute(app, ctx);
  registerVerifyRoute(app, ctx);
  registerReportRoute(app, ctx);
  registerExportRoute(app, ctx);
  return app;
}

export interface RunningCollector {
  /** base URL, e.g. "http://127.0.0.1:39123" ("https://" with collector.tls) */
  url: string;
  app: FastifyInstance;
  /** stops accepting, finishes in-flight requests; does not close the store */
  close(): Promise<void>;
}

/** Builds the app and listens on opts.listen (port 0 picks a free port). */
export async function startCollector(
  opts: CollectorOptions,
  store: AuditStore,
  logger: Logger,
  /** the config key (or flag) opts.listen came from, named when it cannot be bound */
  setting = 'collector.listen (sealtrail dev: --collector-listen)',
): Promise<RunningCollector> {
  const app = buildCollectorApp(opts, store, logger);
  try {
    await app.listen({ host: opts.listen.host, port: opts.listen.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    const host = opts.listen.host.includes(':') ? `[${opts.listen.host}]` : opts.listen.host;
    throw listenError(err, `${host}:${opts.listen.port}`, setting);
  }
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('collector is not listening on TCP');
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`,
    app,
    close: () => app.close(),
  };
}
