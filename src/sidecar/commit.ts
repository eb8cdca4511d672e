/**
 * The one path every line takes into the buffer: sources, heartbeats and
 * ingest_rejected reports all commit through CommitPath.commit().
 *
 * Contracts:
 * - commit() throws only if nothing was committed (then the source offers the
 *   same lines again). Nothing after the commit may throw out of it, or the
 *   lines would be stored twice: the bookkeeping after it (metrics, the
 *   `afterCommit` hook: sealing, backpressure) logs its errors instead.
 * - A full disk (SQLITE_FULL, ENOSPC, buffer_disk_low) is one log line when
 *   commits start failing and one when they work again, plus a gauge
 *   (disk-full.ts), never a line per retry.
 */
import type { Logger } from '../log.js';
import type { AuditBuffer } from './buffer/buffer.js';
import { DiskFullState } from './disk-full.js';
import type { Ingest, IngestChunk, IngestResult } from './ingest.js';
import { ChunkRefused, type LineOutcome } from './sources/types.js';
import type { SidecarMetrics } from './telemetry/metrics.js';

export interface CommitPathOptions {
  buffer: AuditBuffer;
  metrics: SidecarMetrics;
  logger: Logger;
  /** after every successful commit: seal full batches, update backpressure */
  afterCommit: () => void;
}

export class CommitPath {
  readonly diskFull: DiskFullState;
  private readonly ingest: Ingest;
  private readonly opts: CommitPathOptions;
  private lastRecord = Date.now();

  constructor(ingest: Ingest, opts: CommitPathOptions) {
    this.ingest = ingest;
    this.opts = opts;
    const { buffer, metrics, logger } = opts;
    this.diskFull = new DiskFullState({
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
  }

  /** Date.now() of the last commit that stored a record (the start, before any): what heartbeats measure idleness from. */
  get lastRecordAt(): number {
    return this.lastRecord;
  }

  /**
   * Commits lines from any source (records, quarantine and position in one
   * transaction) and returns what became of each.
   */
  commit(chunk: IngestChunk): LineOutcome[] {
    const { metrics, logger } = this.opts;
    let r: IngestResult;
    try {
      r = this.ingest.ingest(chunk);
    } catch (err) {
      // the input refused whole while it was read: nothing failed to commit
      if (err instanceof ChunkRefused) throw err;
      if (this.diskFull.failed(err)) metrics.commitsFailed.inc({ reason: 'disk_full' });
      else metrics.commitsFailed.inc({ reason: 'error' });
      throw err;
    }
    try {
      this.diskFull.succeeded();
      metrics.commits.inc({ source: chunk.source });
      if (r.records > 0) this.lastRecord = Date.now();
      this.count(chunk.source, r, r.lines.length);
      this.opts.afterCommit();
    } catch (err) {
      if (!this.diskFull.failed(err)) logger.error({ source: chunk.source, err: (err as Error).message }, 'sealing after ingest failed; the seal timer retries');
    }
    return r.lines;
  }

  private count(source: string, r: IngestResult, lines: number): void {
    const { metrics, logger } = this.opts;
    metrics.linesRead.inc({ source }, lines);
    if (r.records) metrics.recordsIngested.inc({ source }, r.records);
    if (r.blank) metrics.linesBlank.inc({ source }, r.blank);
    if (r.duplicates) metrics.eventsDuplicate.inc({ source }, r.duplicates);
    for (const q of r.quarantined) metrics.recordsQuarantined.inc({ source, reason: q.reason });
    for (const [rule, n] of Object.entries(r.hits)) metrics.redactionHits.inc({ rule }, n);
    if (r.quarantined.length) {
      logger.warn({ source, quarantined: r.quarantined.length, reasons: [...new Set(r.quarantined.map((q) => q.reason))] }, 'lines quarantined');
    }
  }
}
