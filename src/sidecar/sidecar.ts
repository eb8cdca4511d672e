import { join } from 'node:path';
import type { SidecarConfig } from '../config/types.js';
import { readHmacKey, readPseudonymKeys, readSigningKey } from '../keyfiles.js';
import type { Logger } from '../log.js';
import { AuditBuffer, type BatchRow } from './buffer/buffer.js';
import { Ingest, type IngestResult } from './ingest.js';
import { loadRuleset, type Ruleset } from './redact/index.js';
import { Shipper } from './ship/shipper.js';
import { FileSource, type LineChunk } from './sources/file-source.js';
import { defaultStreamId } from './stream-id.js';
import { SidecarMetrics } from './telemetry/metrics.js';
import { startTelemetryServer } from './telemetry/server.js';

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

  const buffer = AuditBuffer.open(join(cfg.data_dir, 'buffer.db'), {
    newStreamId: () => cfg.stream.id ?? defaultStreamId(cfg.stream.name, env),
    ...(cfg.stream.id !== undefined ? { expectStream: cfg.stream.id } : {}),
  });
  logger.info({ stream: buffer.stream, buffer: buffer.path, ruleset: ruleset.hash }, 'sidecar buffer open');

  const ingest = new Ingest(buffer, { hmacKey, keyId: cfg.keys.hmac_key_id, ruleset: () => ruleset });
  const sources: FileSource[] = [];
  const sourceIds: string[] = [];
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

  const sealBatches = (all: boolean): void => {
    for (;;) {
      if (!all && buffer.unsealedCount() < cfg.seal.max_records) return;
      const row = buffer.seal(signer, cfg.seal.max_records, cfg.ship.max_batch_bytes);
      if (!row) return;
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

  let sealTimer: NodeJS.Timeout | undefined;
  let telemetry: Awaited<ReturnType<typeof startTelemetryServer>> | undefined;
  const healthCheck = buffer.db.prepare('SELECT 1');
  try {
    for (const src of cfg.sources) {
      if (src.type !== 'file') continue; // wired below
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
          const r = ingest.ingest({
            source: chunk.source,
            path: chunk.file.path,
            fileKey: chunk.file.key,
            lines: chunk.lines,
            position: { source: chunk.source, ...chunk.position },
          });
          // The lines are committed now: nothing after this may reject, or the
          // source would offer the same lines again and they would be stored twice.
          try {
            record(chunk.source, r, chunk.lines.length);
            sealBatches(false);
            updateBackpressure();
          } catch (err) {
            logger.error({ source: chunk.source, err: (err as Error).message }, 'sealing after ingest failed; the seal timer retries');
          }
        },
        onError: (err) => logger.error({ source: src.id, code: (err as { code?: string }).code, err: err.message }, 'source error; will retry'),
      });
      sources.push(source);
      sourceIds.push(src.id);
    }

    sealTimer = setInterval(() => {
      try {
        sealBatches(true);
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'sealing failed; will retry');
      }
    }, cfg.seal.max_interval);

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
      refresh: () => {
        const s = buffer.stats();
        metrics.bufferRecords.set(s.records);
        metrics.bufferBytes.set(s.bytes);
        metrics.unanchoredRecords.set(s.records);
        metrics.chainHeadSeq.set(s.nextSeq - 1);
        const oldest = buffer.oldestUnacked();
        metrics.shippingLag.set(oldest ? Math.max(0, (Date.now() - Date.parse(oldest)) / 1000) : 0);
        metrics.fileLag.reset();
        sources.forEach((source, i) => {
          for (const f of source.files()) metrics.fileLag.set({ source: sourceIds[i]!, path: f.path }, Math.max(0, f.size - f.offset));
        });
      },
    });

    shipper.start();
    for (const s of sources) await s.start();
  } catch (err) {
    // A half-started sidecar must not keep the process alive (timer, server, watchers, shipper loop).
    clearInterval(sealTimer);
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
      try {
        await Promise.all(sources.map((s) => s.drain(readDeadline)));
        await Promise.allSettled(sources.map((s) => s.close()));
        clearInterval(timer);
        try {
          sealBatches(true);
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'sealing at shutdown failed; unsealed records stay in the buffer');
        }
        await shipper.drain(deadlineMs);
      } finally {
        clearInterval(timer);
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
