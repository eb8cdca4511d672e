import { join } from 'node:path';
import { RESERVED_SOURCE_ID } from '../config/normalize.js';
import type { SidecarConfig } from '../config/types.js';
import { SealtrailError } from '../core/errors.js';
import { COLLECTOR_STREAM_PREFIX, isCollectorStream } from '../core/reserved-streams.js';
import { readHmacKey, readPseudonymKeys, readSigningKey } from '../keyfiles.js';
import type { Logger } from '../log.js';
import { AuditBuffer, type BatchRow } from './buffer/buffer.js';
import { DiskFullState, isDiskFull } from './disk-full.js';
import { Ingest, type IngestChunk, type IngestResult, type LineOutcome } from './ingest.js';
import { loadRuleset, type Ruleset } from './redact/index.js';
import { RejectionReporter } from './rejections.js';
import { describeHalt, Shipper } from './ship/shipper.js';
import { FileSource, type LineChunk } from './sources/file-source.js';
import { createEventsHandler } from './sources/http-events.js';
import { SocketSource } from './sources/socket-source.js';
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
  /** reload redaction rules; a bad file keeps the old rules */
  reload(): void;
  /** SIGTERM path: stop sources, commit, seal, ship until the deadline, close. */
  shutdown(deadlineMs: number): Promise<void>;
}

export async function startSidecar(
  cfg: SidecarConfig,
  opts: { logger: Logger; env?: NodeJS.ProcessEnv },
): Promise<SidecarHandle> {
  const logger = opts.logger;
  const env = opts.env ?? process.env;
  const { signer, vkey } = readSigningKey(cfg.keys.signing_key_file);
  const hmacKey = readHmacKey(cfg.keys.hmac_key_file);
  const loadRules = (): Ruleset =>
    loadRuleset(cfg.redaction.rules, { pseudonymKeys: readPseudonymKeys(cfg.redaction.pseudonym_keys) });
  let ruleset: Ruleset = loadRules();
  const metrics = new SidecarMetrics();

  const refuseReserved = (id: string): string => {
    if (!isCollectorStream(id)) return id;
    throw new SealtrailError(
      'stream_reserved',
      `stream id ${id} begins with "${COLLECTOR_STREAM_PREFIX}", which collectors reserve for their own read-audit streams ` +
        'and refuse from sidecars; set stream.name (or stream.id) in the sidecar config',
    );
  };
  // Checked before a new buffer is created (so none is made under a reserved
  // id) and again on the id an existing buffer holds.
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
  logger.info({ stream: buffer.stream, buffer: buffer.path, ruleset: ruleset.hash }, 'sidecar buffer open');

  const ingest = new Ingest(buffer, { hmacKey, keyId: cfg.keys.hmac_key_id, ruleset: () => ruleset });
  /** what the sidecar needs of every source: start, backpressure, the shutdown order */
  interface Source {
    readonly ready: boolean;
    start(): Promise<void>;
    pause(): void;
    resume(): void;
    drain(deadlineMs: number): Promise<void>;
    close(): Promise<void>;
  }
  const sources: Source[] = [];
  const fileSources: Array<{ id: string; source: FileSource }> = [];
  let paused = false;

  const overFull = (): boolean => {
    const s = buffer.stats();
    return s.records >= cfg.buffer.max_records || s.bytes >= cfg.buffer.max_bytes;
  };
  const updateBackpressure = (): void => {
    const full = overFull();
    if (full && !paused) {
      paused = true;
      for (const s of sources) s.pause();
      metrics.backpressure.set(1);
      logger.warn({ stream: buffer.stream, ...buffer.stats() }, 'buffer full: reading paused until the collector acknowledges batches');
    } else if (!full && paused) {
      paused = false;
      for (const s of sources) s.resume();
      metrics.backpressure.set(0);
      logger.info({ stream: buffer.stream }, 'buffer below its limits: reading resumed');
    }
  };

  /** Returns how many batches it sealed. */
  const sealBatches = (all: boolean): number => {
    for (let n = 0; ; n++) {
      if (!all && buffer.unsealedCount() < cfg.seal.max_records) return n;
      const row = buffer.seal(signer, cfg.seal.max_records, cfg.ship.max_batch_bytes);
      if (!row) return n;
      metrics.batchesSealed.inc();
      metrics.lastCheckpoint.set(Date.now() / 1000);
      shipper.wake();
    }
  };

  const shipper = new Shipper(buffer, {
    url: cfg.ship.url,
    token: cfg.ship.token,
    timeoutMs: cfg.ship.timeout,
    backoffInitialMs: cfg.ship.backoff_initial,
    backoffMaxMs: cfg.ship.backoff_max,
    vkey,
    logger,
    metrics,
    onAck: (_row: BatchRow) => updateBackpressure(),
  });

  const record = (source: string, r: IngestResult, lines: number): void => {
    metrics.linesRead.inc({ source }, lines);
    if (r.records) metrics.recordsIngested.inc({ source }, r.records);
    if (r.blank) metrics.linesBlank.inc({ source }, r.blank);
    for (const q of r.quarantined) metrics.recordsQuarantined.inc({ source, reason: q.reason });
    for (const [rule, n] of Object.entries(r.hits)) metrics.redactionHits.inc({ rule }, n);
    if (r.quarantined.length) {
      logger.warn({ source, quarantined: r.quarantined.length, reasons: [...new Set(r.quarantined.map((q) => q.reason))] }, 'lines quarantined');
    }
  };

  const diskFull = new DiskFullState({
    onFull: (err) => {
      metrics.diskFull.set(1);
      logger.error(
        { stream: buffer.stream, buffer: buffer.path, code: (err as { code?: string }).code },
        'disk full: the buffer cannot take more records; sources hold their lines and positions and retry; nothing is lost or skipped',
      );
    },
    onRecovered: (failedFor, failures) => {
      metrics.diskFull.set(0);
      logger.info({ stream: buffer.stream, failed_for_ms: failedFor, failed_commits: failures }, 'disk space available again: committing resumed');
    },
  });
  let lastCommit = Date.now();
  /** set when shutdown begins: the http source commits nothing after it */
  let stopping = false;

  /**
   * Commits lines from any source (records, quarantine and position in one
   * transaction) and returns what became of each. It throws only if nothing
   * was committed (then the source offers the same lines again); nothing
   * after the commit may throw, or the lines would be stored twice.
   */
  const commit = (chunk: IngestChunk): LineOutcome[] => {
    let r: IngestResult;
    try {
      r = ingest.ingest(chunk);
    } catch (err) {
      if (diskFull.failed(err)) metrics.commitsFailed.inc({ reason: 'disk_full' });
      else metrics.commitsFailed.inc({ reason: 'error' });
      throw err;
    }
    try {
      diskFull.succeeded();
      if (r.records > 0) lastCommit = Date.now();
      record(chunk.source, r, chunk.lines.length);
      sealBatches(false);
      updateBackpressure();
    } catch (err) {
      if (!diskFull.failed(err)) logger.error({ source: chunk.source, err: (err as Error).message }, 'sealing after ingest failed; the seal timer retries');
    }
    return r.lines;
  };

  /**
   * An idle stream still signs a checkpoint every heartbeat_interval: one
   * `heartbeat` record of the sidecar's own (source "sealtrail") is chained
   * and sealed, so an auditor can tell "nothing happened" from "records are
   * missing" for any period longer than the interval.
   */
  const heartbeat = (): void => {
    // A few ms of slack: the timer fires at lastCommit + every, not after it.
    if (paused || stopping || Date.now() - lastCommit < cfg.seal.heartbeat_interval - 5) return;
    const idleSeconds = Math.round((Date.now() - lastCommit) / 1000);
    const text = JSON.stringify({
      event_type: 'heartbeat',
      actor: { id: 'sealtrail-sidecar', type: 'system' },
      action: 'heartbeat',
      outcome: 'success',
      details: { idle_seconds: idleSeconds },
    });
    commit({ source: HEARTBEAT_SOURCE, path: '(heartbeat)', fileKey: 'heartbeat', lines: [{ offset: 0, length: text.length, text }] });
    sealBatches(true);
    metrics.heartbeats.inc();
  };

  /**
   * What was quarantined since the last report becomes one chained
   * `ingest_rejected` record (rejections.ts), at most once per seal tick and
   * once more at shutdown, so refusals reach the collector with the records.
   */
  const rejections = new RejectionReporter(buffer.db, HEARTBEAT_SOURCE, (s, k) => buffer.getPosition(s, k));
  const reportRejections = (): void => {
    if (paused) return;
    const report = rejections.next();
    if (!report) return;
    const [outcome] = commit({
      source: HEARTBEAT_SOURCE,
      path: '(quarantine report)',
      fileKey: 'quarantine-report',
      lines: [{ offset: report.position.offset, length: report.text.length, text: report.text }],
      position: report.position,
    });
    if (outcome && 'error' in outcome) {
      logger.error({ code: outcome.error.code, rows: report.rows }, 'the ingest_rejected report could not become a record; the quarantine table still lists every refused line');
    } else {
      metrics.rejectionReports.inc();
    }
  };

  let sealTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let telemetry: Awaited<ReturnType<typeof startTelemetryServer>> | undefined;
  const healthCheck = buffer.db.prepare('SELECT 1');
  let events: ReturnType<typeof createEventsHandler> | undefined;
  const sourceError = (id: string, err: Error): void => {
    // Disk full is reported once, by the commit path, not once per retry.
    if (isDiskFull(err) || isDiskFull((err as { cause?: unknown }).cause)) return;
    logger.error({ source: id, code: (err as { code?: string }).code, err: err.message }, 'source error; will retry');
  };
  try {
    for (const src of cfg.sources) {
      if (src.type === 'socket') {
        sources.push(
          new SocketSource({
            id: src.id,
            path: src.path,
            mode: src.mode,
            maxLineBytes: src.max_line_bytes,
            maxConnections: src.max_connections,
            sink: (b) => commit({ source: b.source, path: b.path, fileKey: b.fileKey, lines: b.lines }),
            onError: (err) => sourceError(src.id, err),
            onNotice: (message) => logger.info({ source: src.id }, message),
          }),
        );
        continue;
      }
      if (src.type === 'http') {
        events = createEventsHandler({
          id: src.id,
          maxBodyBytes: src.max_body_bytes,
          maxEvents: src.max_events,
          sink: (lines, meta) => commit({ source: src.id, path: 'POST /v1/events', fileKey: `http:${meta.requestId}`, lines }),
          paused: () => paused,
          stopping: () => stopping,
          onError: (err) => sourceError(src.id, err),
          onResponse: (r) => metrics.httpRequests.inc({ source: src.id, code: r.code ?? 'accepted' }),
        });
        continue;
      }
      const source = new FileSource({
        id: src.id,
        include: src.include,
        exclude: src.exclude,
        maxLineBytes: src.max_line_bytes,
        // start_at applies to files found at the stream's first start only; after a
        // restart, files that appeared while the sidecar was down are read whole.
        startAt: buffer.created ? src.start_at : 'beginning',
        positions: { get: (s, k) => buffer.getPosition(s, k) },
        sink: async (chunk: LineChunk) => {
          commit({
            source: chunk.source,
            path: chunk.file.path,
            fileKey: chunk.file.key,
            lines: chunk.lines,
            position: { source: chunk.source, ...chunk.position },
          });
        },
        onError: (err) => sourceError(src.id, err),
        // inode reuse, recognised copies, truncation: worth a line, not an error
        onNotice: (message) => logger.info({ source: src.id }, message),
      });
      sources.push(source);
      fileSources.push({ id: src.id, source });
    }

    sealTimer = setInterval(() => {
      try {
        reportRejections();
      } catch (err) {
        if (!diskFull.failed(err)) logger.error({ err: (err as Error).message }, 'reporting quarantined lines failed; will retry');
      }
      try {
        // a seal that wrote a batch proves the disk takes writes again
        if (sealBatches(true) > 0) diskFull.succeeded();
      } catch (err) {
        // a full disk is reported once (diskFull), not on every tick
        if (!diskFull.failed(err)) logger.error({ err: (err as Error).message }, 'sealing failed; will retry');
      }
    }, cfg.seal.max_interval);
    if (cfg.seal.heartbeat_interval > 0) {
      // Scheduled for the moment the stream has been idle for exactly the
      // interval (a fixed tick would let the gap grow to interval + tick).
      // A heartbeat that was due but not written (buffer paused, commit failed)
      // is retried in a second, neither a whole interval later nor in a spin.
      const every = cfg.seal.heartbeat_interval;
      const schedule = (): void => {
        if (stopping) return;
        const due = lastCommit + every - Date.now();
        heartbeatTimer = setTimeout(tick, due > 0 ? Math.max(10, due) : 1000);
      };
      const tick = (): void => {
        try {
          heartbeat();
        } catch (err) {
          if (!diskFull.full) logger.error({ err: (err as Error).message }, 'heartbeat failed; will retry');
        }
        schedule();
      };
      schedule();
    }

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
        for (const { id, source } of fileSources) {
          for (const f of source.files()) metrics.fileLag.set({ source: id, path: f.path }, Math.max(0, f.size - f.offset));
        }
      },
    }, { http: cfg.telemetry.http, ...(events ? { events } : {}) });

    shipper.start();
    for (const s of sources) await s.start();
  } catch (err) {
    // A half-started sidecar must not keep the process alive (timer, server, watchers, shipper loop).
    clearInterval(sealTimer);
    stopping = true;
    clearTimeout(heartbeatTimer);
    await Promise.allSettled(sources.map((s) => s.close()));
    await shipper.close().catch(() => undefined);
    await telemetry?.close().catch(() => undefined);
    buffer.close();
    throw err;
  }
  const telemetryUrl = telemetry.url;
  const telemetryServer = telemetry;
  const timer = sealTimer;
  logger.info({ stream: buffer.stream, telemetry: telemetryUrl, collector: cfg.ship.url }, 'sidecar started');

  return {
    stream: buffer.stream,
    buffer,
    metrics,
    telemetryUrl,
    reload() {
      try {
        const next = loadRules();
        ruleset = next;
        logger.info({ ruleset: next.hash }, 'redaction rules reloaded');
      } catch (err) {
        logger.error({ code: (err as { code?: string }).code, err: (err as Error).message }, 'redaction rules NOT reloaded; keeping the previous rules');
      }
    },
    async shutdown(deadlineMs: number) {
      // Fixed order: stop reading (committing what was read), seal, ship, close.
      // Every step runs even if an earlier one failed, so nothing keeps the process alive.
      const readDeadline = Date.now() + Math.max(0, (deadlineMs - Date.now()) / 4);
      stopping = true; // the http source answers 503 from now on; no heartbeat either
      clearTimeout(heartbeatTimer);
      try {
        await Promise.all(sources.map((s) => s.drain(readDeadline)));
        await Promise.allSettled(sources.map((s) => s.close()));
        clearInterval(timer);
        clearTimeout(heartbeatTimer);
        try {
          reportRejections();
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'reporting quarantined lines at shutdown failed; they are reported after the next start');
        }
        try {
          sealBatches(true);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'sealing at shutdown failed; unsealed records stay in the buffer');
        }
        await shipper.drain(deadlineMs);
      } finally {
        clearInterval(timer);
        clearTimeout(heartbeatTimer);
        await Promise.allSettled(sources.map((s) => s.close()));
        await shipper.close().catch(() => undefined);
        await telemetryServer.close();
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
