/**
 * The sidecar: wires its stages together, sources → commit path (ingest,
 * buffer) → seal stage → shipper, with backpressure from the buffer back to
 * the sources and the telemetry server watching them all.
 *
 * Shutdown (SIGTERM) runs in a fixed order within the deadline: stop
 * heartbeats; drain the sources (a quarter of the time left), committing
 * what they hold; close them; report and seal what is left; ship until the
 * deadline; close everything. Every step runs even if one before failed, so
 * nothing keeps the process alive; what was not shipped stays in the buffer
 * and ships on the next start.
 *
 * The listeners' TLS files (telemetry.tls, an otlp source's tls) are read
 * and checked before anything else is opened, so a bad file stops the start
 * with an error naming it and its config key; they are followed on disk
 * until shutdown, which stops every watcher and timer that following took.
 */
import { join } from 'node:path';
import { RESERVED_SOURCE_ID } from '../config/normalize.js';
import type { ServerTlsConfig, SidecarConfig } from '../config/types.js';
import { SealtrailError } from '../core/errors.js';
import { COLLECTOR_STREAM_PREFIX, isCollectorStream } from '../core/reserved-streams.js';
import { readHmacKey, readPseudonymKeys, readSigningKey } from '../keyfiles.js';
import type { Logger } from '../log.js';
import { ReloadingServerTls } from '../tls/server-tls.js';
import { Backpressure } from './backpressure.js';
import { AuditBuffer } from './buffer/buffer.js';
import { CommitPath } from './commit.js';
import { isDiskFull } from './disk-full.js';
import { Ingest } from './ingest.js';
import { loadRuleset, type Ruleset } from './redact/index.js';
import { SealStage } from './seal/seal-stage.js';
import { describeHalt, Shipper } from './ship/shipper.js';
import { sourcesFromConfig } from './sources/from-config.js';
import type { Source } from './sources/source.js';
import { defaultStreamId } from './stream-id.js';
import { SidecarMetrics } from './telemetry/metrics.js';
import { startTelemetryServer } from './telemetry/server.js';

/** `source` of the records the sidecar writes itself (heartbeats, ingest_rejected); config refuses it as a source id */
export const HEARTBEAT_SOURCE = RESERVED_SOURCE_ID;

export interface SidecarHandle {
  readonly stream: string;
  readonly buffer: AuditBuffer;
  readonly metrics: SidecarMetrics;
  readonly telemetryUrl: string;
  /** re-read redaction rules and the listeners' TLS files (SIGHUP); a bad file keeps the old rules or certificate */
  reload(): void;
  /** SIGTERM path: stop sources, commit, seal, ship until the deadline (absolute Date.now() time), close. */
  shutdown(deadlineMs: number): Promise<void>;
}

export interface StartSidecarOptions {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** stat poll period of the listeners' TLS files, ms (default 10 s; watches usually see a change first) */
  tlsPollMs?: number;
}

export async function startSidecar(cfg: SidecarConfig, opts: StartSidecarOptions): Promise<SidecarHandle> {
  const logger = opts.logger;
  const env = opts.env ?? process.env;
  const { signer, vkey } = readSigningKey(cfg.keys.signing_key_file);
  const hmacKey = readHmacKey(cfg.keys.hmac_key_file);
  const listenerTls = openListenerTls(cfg, logger, opts.tlsPollMs);
  const loadRules = (): Ruleset =>
    loadRuleset(cfg.redaction.rules, { pseudonymKeys: readPseudonymKeys(cfg.redaction.pseudonym_keys) });
  let ruleset: Ruleset = loadRules();
  const metrics = new SidecarMetrics();
  let buffer: AuditBuffer;
  try {
    buffer = openBuffer(cfg, env);
  } catch (err) {
    listenerTls.close();
    throw err;
  }
  logger.info({ stream: buffer.stream, buffer: buffer.path, ruleset: ruleset.hash }, 'sidecar buffer open');

  const ingest = new Ingest(buffer, { hmacKey, keyId: cfg.keys.hmac_key_id, ruleset: () => ruleset });
  const sources: Source[] = [];
  const backpressure = new Backpressure(sources, { buffer, maxRecords: cfg.buffer.max_records, maxBytes: cfg.buffer.max_bytes, metrics, logger });
  const shipper = new Shipper(buffer, {
    url: cfg.ship.url,
    token: cfg.ship.token,
    tls: cfg.ship.tls,
    timeoutMs: cfg.ship.timeout,
    backoffInitialMs: cfg.ship.backoff_initial,
    backoffMaxMs: cfg.ship.backoff_max,
    vkey,
    logger,
    metrics,
    onAck: () => backpressure.update(),
  });
  const commits = new CommitPath(ingest, {
    buffer,
    metrics,
    logger,
    afterCommit: () => {
      seal.sealBatches(false);
      backpressure.update();
    },
  });
  const seal = new SealStage({
    buffer,
    signer,
    maxRecords: cfg.seal.max_records,
    maxBatchBytes: cfg.ship.max_batch_bytes,
    maxInterval: cfg.seal.max_interval,
    heartbeatInterval: cfg.seal.heartbeat_interval,
    source: HEARTBEAT_SOURCE,
    commits,
    paused: () => backpressure.paused,
    onSealed: () => shipper.wake(),
    metrics,
    logger,
  });

  let telemetry: Awaited<ReturnType<typeof startTelemetryServer>> | undefined;
  const healthCheck = buffer.db.prepare('SELECT 1');
  try {
    const configured = await sourcesFromConfig(cfg.sources, {
      commit: (chunk) => commits.commit(chunk),
      positions: { get: (s, k) => buffer.getPosition(s, k) },
      firstStart: buffer.created,
      onError: (source, err) => {
        // Disk full is reported once, by the commit path, not once per retry.
        if (isDiskFull(err) || isDiskFull((err as { cause?: unknown }).cause)) return;
        logger.error({ source, code: (err as { code?: string }).code, err: err.message }, 'source error; will retry');
      },
      onNotice: (source, message) => logger.info({ source }, message),
      onHttpResponse: (r) => metrics.httpRequests.inc({ source: r.source, code: r.code ?? 'accepted' }),
      otlpTls: listenerTls.otlp,
    });
    sources.push(...configured.all);
    seal.start();

    telemetry = await startTelemetryServer(cfg.telemetry.listen, metrics, {
      healthy: () => {
        try {
          healthCheck.get();
          return true;
        } catch {
          return false;
        }
      },
      ready: () => sources.every((s) => s.ready),
      notes: () => {
        const h = shipper.halt();
        return h ? [describeHalt(h, cfg.ship.backoff_max)] : [];
      },
      refresh: () => {
        const s = buffer.stats();
        metrics.bufferRecords.set(s.records);
        metrics.bufferBytes.set(s.bytes);
        metrics.unanchoredRecords.set(s.records);
        metrics.chainHeadSeq.set(s.nextSeq - 1);
        const oldest = buffer.oldestUnacked();
        metrics.shippingLag.set(oldest ? Math.max(0, (Date.now() - Date.parse(oldest)) / 1000) : 0);
        metrics.fileLag.reset();
        for (const source of configured.files) {
          for (const f of source.files()) metrics.fileLag.set({ source: source.id, path: f.path }, Math.max(0, f.size - f.offset));
        }
      },
    }, {
      http: cfg.telemetry.http,
      ...(configured.http ? { events: configured.http.handler } : {}),
      ...(listenerTls.telemetry ? { tls: listenerTls.telemetry } : {}),
    });

    shipper.start();
    for (const s of sources) await s.start();
  } catch (err) {
    // A half-started sidecar must not keep the process alive (timer, server, watchers, shipper loop).
    seal.close();
    await Promise.allSettled(sources.map((s) => s.close()));
    await shipper.close().catch(() => undefined);
    await telemetry?.close().catch(() => undefined);
    listenerTls.close();
    buffer.close();
    throw err;
  }
  const telemetryServer = telemetry;
  logger.info({ stream: buffer.stream, telemetry: telemetryServer.url, collector: cfg.ship.url }, 'sidecar started');

  return {
    stream: buffer.stream,
    buffer,
    metrics,
    telemetryUrl: telemetryServer.url,
    reload() {
      try {
        const next = loadRules();
        ruleset = next;
        logger.info({ ruleset: next.hash }, 'redaction rules reloaded');
      } catch (err) {
        logger.error({ code: (err as { code?: string }).code, err: (err as Error).message }, 'redaction rules NOT reloaded; keeping the previous rules');
      }
      // Each logs what became of its files.
      for (const t of listenerTls.all) t.reload();
    },
    async shutdown(deadlineMs: number) {
      const readDeadline = Date.now() + Math.max(0, (deadlineMs - Date.now()) / 4);
      seal.stopHeartbeats();
      try {
        // Each source takes nothing new from the moment its drain is called (the http source answers 503).
        await Promise.all(sources.map((s) => s.drain(readDeadline)));
        await Promise.allSettled(sources.map((s) => s.close()));
        seal.drain();
        await shipper.drain(deadlineMs);
      } finally {
        seal.close();
        await Promise.allSettled(sources.map((s) => s.close()));
        await shipper.close().catch(() => undefined);
        await telemetryServer.close();
        listenerTls.close();
        const left = buffer.db.open ? buffer.stats() : undefined;
        if (left && left.records > 0) {
          logger.warn({ stream: buffer.stream, unanchored: left.records }, 'shutdown deadline reached with records not yet acknowledged; they stay in the buffer and ship on the next start');
        }
        buffer.close();
      }
      logger.info({ stream: buffer.stream }, 'sidecar stopped');
    },
  };
}

/** The TLS of the sidecar's listeners, read and checked; close() stops following every file. */
interface ListenerTls {
  telemetry: ReloadingServerTls | undefined;
  /** by source id */
  otlp: Map<string, ReloadingServerTls>;
  all: ReloadingServerTls[];
  close(): void;
}

/** Throws FileError/TlsError naming the file and its key (sidecar.sources[2].tls.key_file). */
function openListenerTls(cfg: SidecarConfig, logger: Logger, pollMs: number | undefined): ListenerTls {
  const tlsLogger = logger.child({ component: 'tls' });
  const open = (tls: ServerTlsConfig, field: string): ReloadingServerTls =>
    new ReloadingServerTls(tls, { field, logger: tlsLogger, refusalLogger: tlsLogger, ...(pollMs !== undefined ? { pollMs } : {}) });
  // Nothing is followed before attach(), so a refusal half-way leaves nothing running.
  const telemetry = cfg.telemetry.tls ? open(cfg.telemetry.tls, 'sidecar.telemetry.tls') : undefined;
  const otlp = new Map<string, ReloadingServerTls>();
  cfg.sources.forEach((s, i) => {
    if (s.type === 'otlp' && s.tls) otlp.set(s.id, open(s.tls, `sidecar.sources[${i}].tls`));
  });
  const all = [...(telemetry ? [telemetry] : []), ...otlp.values()];
  return { telemetry, otlp, all, close: () => all.forEach((t) => t.close()) };
}

/**
 * Opens the buffer, refusing a stream id collectors reserve: checked before a
 * new buffer is created (so none is made under a reserved id) and again on
 * the id an existing buffer holds.
 */
function openBuffer(cfg: SidecarConfig, env: NodeJS.ProcessEnv): AuditBuffer {
  const refuseReserved = (id: string): string => {
    if (!isCollectorStream(id)) return id;
    throw new SealtrailError(
      'stream_reserved',
      `stream id ${id} begins with "${COLLECTOR_STREAM_PREFIX}", which collectors reserve for their own read-audit streams ` +
        'and refuse from sidecars; set stream.name (or stream.id) in the sidecar config',
    );
  };
  const buffer = AuditBuffer.open(join(cfg.data_dir, 'buffer.db'), {
    newStreamId: () => refuseReserved(cfg.stream.id ?? defaultStreamId(cfg.stream.name, env)),
    ...(cfg.stream.id !== undefined ? { expectStream: cfg.stream.id } : {}),
  });
  try {
    refuseReserved(buffer.stream);
  } catch (err) {
    buffer.close();
    throw err;
  }
  return buffer;
}
