/**
 * Backpressure (invariant 2: when the buffer is full, reading pauses; it never
 * drops). At buffer.max_records or buffer.max_bytes every source is paused
 * (metric sealtrail_backpressure 1, one log line); once acknowledgements take
 * the buffer below both limits they resume. Checked after every commit and
 * every acknowledgement, the only two things that change the buffer's size.
 */
import type { Logger } from '../log.js';
import type { AuditBuffer } from './buffer/buffer.js';
import type { Source } from './sources/source.js';
import type { SidecarMetrics } from './telemetry/metrics.js';

export interface BackpressureOptions {
  buffer: AuditBuffer;
  maxRecords: number;
  maxBytes: number;
  metrics: SidecarMetrics;
  logger: Logger;
}

export class Backpressure {
  private readonly sources: readonly Source[];
  private readonly opts: BackpressureOptions;
  private isPaused = false;

  /** `sources` is read on every change, so sources added to it later are paused and resumed too. */
  constructor(sources: readonly Source[], opts: BackpressureOptions) {
    this.sources = sources;
    this.opts = opts;
  }

  /** the buffer is full: sources are paused, and the sidecar writes no records of its own */
  get paused(): boolean {
    return this.isPaused;
  }

  update(): void {
    const { buffer, metrics, logger } = this.opts;
    const s = buffer.stats();
    const full = s.records >= this.opts.maxRecords || s.bytes >= this.opts.maxBytes;
    if (full && !this.isPaused) {
      this.isPaused = true;
      for (const src of this.sources) src.pause();
      metrics.backpressure.set(1);
      logger.warn({ stream: buffer.stream, ...buffer.stats() }, 'buffer full: reading paused until the collector acknowledges batches');
    } else if (!full && this.isPaused) {
      this.isPaused = false;
      for (const src of this.sources) src.resume();
      metrics.backpressure.set(0);
      logger.info({ stream: buffer.stream }, 'buffer below its limits: reading resumed');
    }
  }
}
