/**
 * The seal stage: turns committed records into signed batches for the
 * shipper, and writes the sidecar's own records (heartbeats, ingest_rejected
 * reports) through the same commit path as any source.
 *
 * Contracts:
 * - A batch is sealed as soon as seal.max_records are unsealed (after each
 *   commit), and whatever is unsealed at least every seal.max_interval (the
 *   seal timer), so a record waits at most that long to be shippable.
 * - Each timer tick first reports what was quarantined since the last report
 *   (one chained `ingest_rejected` record, rejections.ts), then seals, so
 *   refusals reach the collector with the records; once more at shutdown.
 * - While the buffer is full (backpressure) the sidecar writes no record of
 *   its own: no heartbeat, no report; both are written once it drains.
 * - A full disk is reported once by the commit path, not on every tick; a
 *   seal that wrote a batch proves the disk takes writes again.
 * - Shutdown: stopHeartbeats() as it begins (records drained from sources are
 *   not idleness), drain() once the sources are closed (report, seal
 *   everything), close() last; each step runs even if one before failed.
 */
import type { NoteSigner } from '../../core/note.js';
import type { Logger } from '../../log.js';
import type { AuditBuffer } from '../buffer/buffer.js';
import type { CommitPath } from '../commit.js';
import type { SidecarMetrics } from '../telemetry/metrics.js';
import { HeartbeatTimer, heartbeatLine } from './heartbeat.js';
import { RejectionReporter } from './rejections.js';

export interface SealStageOptions {
  buffer: AuditBuffer;
  signer: NoteSigner;
  /** seal.max_records */
  maxRecords: number;
  /** ship.max_batch_bytes: a batch's body stays within it */
  maxBatchBytes: number;
  /** seal.max_interval (ms) */
  maxInterval: number;
  /** seal.heartbeat_interval (ms); 0: no heartbeats */
  heartbeatInterval: number;
  /** `source` of the sidecar's own records (heartbeats, reports) */
  source: string;
  commits: CommitPath;
  /** backpressure: the buffer is full */
  paused: () => boolean;
  /** a batch was sealed: wake the shipper */
  onSealed: () => void;
  metrics: SidecarMetrics;
  logger: Logger;
}

export class SealStage {
  private readonly opts: SealStageOptions;
  private readonly rejections: RejectionReporter;
  private readonly heartbeats: HeartbeatTimer | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** shutdown began: no more heartbeats */
  private stopping = false;

  constructor(opts: SealStageOptions) {
    this.opts = opts;
    const { buffer } = opts;
    this.rejections = new RejectionReporter(buffer.db, opts.source, (s, k) => buffer.getPosition(s, k));
    if (opts.heartbeatInterval > 0) {
      this.heartbeats = new HeartbeatTimer({
        every: opts.heartbeatInterval,
        lastRecordAt: () => opts.commits.lastRecordAt,
        beat: () => this.heartbeat(),
        onError: (err) => {
          if (!opts.commits.diskFull.full) opts.logger.error({ err: (err as Error).message }, 'heartbeat failed; will retry');
        },
      });
    }
  }

  /** Starts the seal timer and the heartbeats. */
  start(): void {
    const { commits, logger } = this.opts;
    this.timer = setInterval(() => {
      try {
        this.reportRejections();
      } catch (err) {
        if (!commits.diskFull.failed(err)) logger.error({ err: (err as Error).message }, 'reporting quarantined lines failed; will retry');
      }
      try {
        // a seal that wrote a batch proves the disk takes writes again
        if (this.sealBatches(true) > 0) commits.diskFull.succeeded();
      } catch (err) {
        // a full disk is reported once (diskFull), not on every tick
        if (!commits.diskFull.failed(err)) logger.error({ err: (err as Error).message }, 'sealing failed; will retry');
      }
    }, this.opts.maxInterval);
    this.heartbeats?.start();
  }

  /**
   * Seals batches: only full ones (seal.max_records), or with `all` every
   * unsealed record. Returns how many it sealed. Throws what the buffer throws.
   */
  sealBatches(all: boolean): number {
    const { buffer, signer, maxRecords, maxBatchBytes, metrics } = this.opts;
    for (let n = 0; ; n++) {
      if (!all && buffer.unsealedCount() < maxRecords) return n;
      const row = buffer.seal(signer, maxRecords, maxBatchBytes);
      if (!row) return n;
      metrics.batchesSealed.inc();
      metrics.lastCheckpoint.set(Date.now() / 1000);
      this.opts.onSealed();
    }
  }

  /** Shutdown began: no heartbeat from now on. The seal timer keeps running while sources drain. */
  stopHeartbeats(): void {
    this.stopping = true;
    this.heartbeats?.stop();
  }

  /** Sources are closed: stop the timer, report the last refusals and seal everything left. Never throws. */
  drain(): void {
    const { logger } = this.opts;
    this.close();
    try {
      this.reportRejections();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'reporting quarantined lines at shutdown failed; they are reported after the next start');
    }
    try {
      this.sealBatches(true);
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'sealing at shutdown failed; unsealed records stay in the buffer');
    }
  }

  /** Stops both timers; nothing keeps the process alive. */
  close(): void {
    clearInterval(this.timer);
    this.stopHeartbeats();
  }

  private heartbeat(): void {
    const { commits, heartbeatInterval, source } = this.opts;
    const lastRecordAt = commits.lastRecordAt;
    // A few ms of slack: the timer fires at lastRecordAt + interval, not after it.
    if (this.opts.paused() || this.stopping || Date.now() - lastRecordAt < heartbeatInterval - 5) return;
    const text = heartbeatLine(Math.round((Date.now() - lastRecordAt) / 1000));
    commits.commit({ source, path: '(heartbeat)', fileKey: 'heartbeat', lines: [{ offset: 0, length: text.length, text }] });
    this.sealBatches(true);
    this.opts.metrics.heartbeats.inc();
  }

  /**
   * What was quarantined since the last report becomes one chained
   * `ingest_rejected` record, committed with the position that marks its
   * rows reported (exactly once, across crashes).
   */
  private reportRejections(): void {
    if (this.opts.paused()) return;
    const report = this.rejections.next();
    if (!report) return;
    const [outcome] = this.opts.commits.commit({
      source: this.opts.source,
      path: '(quarantine report)',
      fileKey: 'quarantine-report',
      lines: [{ offset: report.position.offset, length: report.text.length, text: report.text }],
      position: report.position,
    });
    if (outcome && 'error' in outcome) {
      this.opts.logger.error(
        { code: outcome.error.code, rows: report.rows },
        'the ingest_rejected report could not become a record; the quarantine table still lists every refused line',
      );
    } else {
      this.opts.metrics.rejectionReports.inc();
    }
  }
}
