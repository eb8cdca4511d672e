import type { Logger } from '../../log.js';
import type { ClientTlsConfig } from '../../tls/types.js';
import type { AuditBuffer, BatchRow } from '../buffer/buffer.js';
import type { SidecarMetrics } from '../telemetry/metrics.js';
import { classifyStatus, fullJitterDelay, parseRetryAfter } from './backoff.js';
import { posterFor, type Poster } from './post.js';

export { MAX_ANSWER_BYTES } from './post.js';

/** Why shipping stopped: the batch the collector refuses and what it said. */
export interface ShippingHalt {
  /** when the first refusal of this batch was seen (RFC 3339) */
  since: string;
  batch: number;
  firstSeq: number;
  lastSeq: number;
  /** HTTP status, or 0 when the batch could not be built locally */
  status: number;
  /** the collector's error code, `http_<status>`, `bad_ack` or `local_error` */
  reason: string;
  /** the collector's message (printable, at most 300 characters), when it gave one */
  message?: string;
}

export interface ShipperOptions {
  url: string;
  token?: string | undefined;
  /**
   * ship.tls: the CA bundle the collector's certificate must chain to and the
   * sidecar's client certificate (mTLS), re-read when they change (a new
   * connection uses the new files; see src/tls/client-tls.ts). Absent with an
   * https:// url: Node's roots, no client certificate.
   */
  tls?: ClientTlsConfig | undefined;
  timeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** verifier key text sent with each batch so a collector in trust-on-first-use mode can pin it */
  vkey?: string;
  logger: Logger;
  metrics: SidecarMetrics;
  onAck?: (row: BatchRow) => void;
}

const RUNBOOK = 'docs/runbook.md#shipping-halted';

/** One line for /readyz: which batch is refused, by whom, why, since when, and what happens meanwhile. */
export function describeHalt(h: ShippingHalt, reprobeMs: number): string {
  const said = h.message === undefined ? '' : `: ${h.message}`;
  const by = h.status === 0 ? 'cannot be built locally' : `is refused by the collector with ${h.status} ${h.reason}${said}`;
  return (
    `shipping halted since ${h.since}: batch ${h.batch} (seq ${h.firstSeq}..${h.lastSeq}) ${by}; ` +
    `records are kept and taken in until the buffer is full, the batch is re-sent every ${reprobeMs} ms; see ${RUNBOOK}`
  );
}

/**
 * Ships sealed batches in order, one at a time, to POST /v1/batches.
 *
 * Delivery contract: a batch leaves the buffer only when the collector
 * answered 200 for exactly that stream and batch number (buffer.ack). Network
 * errors, 408, 429 and 5xx are retried forever with full-jitter exponential
 * backoff, honouring Retry-After. Any other answer halts shipping (metric
 * sealtrail_shipping_halted=1, sealtrail_shipping_halt_info naming the batch,
 * status and reason, an error log line, and halt() for /readyz) and is
 * re-probed every backoff_max, so the operator can fix the collector without
 * losing data; the first acknowledgement clears it. Nothing is skipped,
 * deleted or re-signed to get past a refusal (docs/runbook.md).
 *
 * A newly sealed batch (wake) ends only the idle wait, never a backoff: the
 * retry of the oldest batch waits out its backoff or Retry-After however
 * many batches are sealed meanwhile. One attempt (connect, send, answer) may
 * take at most timeoutMs in all, so a collector that trickles its answer
 * cannot stall the stream; at most MAX_ANSWER_BYTES of an answer are read.
 */
export class Shipper {
  private readonly buffer: AuditBuffer;
  private readonly opts: ShipperOptions;
  private readonly poster: Poster;
  private readonly endpoint: string;
  private running = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  /** ends the current sleep; set while sleeping */
  private wakeUp: (() => void) | undefined;
  /** whether the current sleep is the idle wait (wake() may end it) rather than a backoff */
  private idle = false;
  private attempt = 0;
  private stopAt = Number.POSITIVE_INFINITY;
  private abort = new AbortController();
  /** wire body of the batch being retried: a sealed batch never changes, so it is built once */
  private cached: { batch: number; body: string } | undefined;
  /** a batch the collector acknowledged whose local deletion failed; only that is retried */
  private ackFailing: BatchRow | undefined;
  private halted: ShippingHalt | undefined;

  constructor(buffer: AuditBuffer, opts: ShipperOptions) {
    this.buffer = buffer;
    this.opts = opts;
    this.endpoint = new URL('/v1/batches', opts.url).toString();
    // Files are read and checked here, so a bad ship.tls stops the sidecar at start.
    this.poster = posterFor(this.endpoint, opts.tls, opts.logger, opts.timeoutMs);
  }

  /** Why shipping is halted, or undefined while batches are being acknowledged (or retried). */
  halt(): ShippingHalt | undefined {
    return this.halted === undefined ? undefined : { ...this.halted };
  }

  /** Records a refusal retrying cannot fix: metric, info labels and one error line per probe. */
  private haltOn(row: BatchRow, status: number, reason: string, message: string | undefined, what: string): number {
    const { logger, metrics } = this.opts;
    const same = this.halted?.batch === row.batch && this.halted.reason === reason && this.halted.status === status;
    if (!same) {
      if (this.halted) metrics.shippingHaltInfo.reset();
      this.halted = { since: new Date().toISOString(), batch: row.batch, firstSeq: row.firstSeq, lastSeq: row.lastSeq, status, reason };
      if (message !== undefined) this.halted.message = message;
      metrics.shippingHaltInfo.set({ batch: String(row.batch), status: String(status), reason }, 1);
    }
    metrics.shippingHalted.set(1);
    logger.error(
      {
        stream: this.buffer.stream,
        batch: row.batch,
        first_seq: row.firstSeq,
        last_seq: row.lastSeq,
        status,
        reason,
        ...(message !== undefined ? { collector_message: message } : {}),
        halted_since: this.halted!.since,
        retry_in_ms: this.opts.backoffMaxMs,
        runbook: RUNBOOK,
      },
      `${what}; shipping halted for stream ${this.buffer.stream} at batch ${row.batch} (records kept, nothing skipped); re-probing every ${this.opts.backoffMaxMs} ms`,
    );
    return this.opts.backoffMaxMs;
  }

  private clearHalt(row: BatchRow): void {
    this.opts.metrics.shippingHalted.set(0);
    if (!this.halted) return;
    this.opts.logger.info(
      { stream: this.buffer.stream, batch: row.batch, halted_since: this.halted.since, reason: this.halted.reason },
      'the collector accepted the batch it refused before: shipping resumed',
    );
    this.halted = undefined;
    this.opts.metrics.shippingHaltInfo.reset();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** A new batch was sealed: ends the idle wait, not a backoff (see the class comment). */
  wake(): void {
    if (this.idle) this.wakeUp?.();
  }

  /** Keep shipping until nothing is left or the deadline passes, then stop. */
  async drain(deadlineMs: number): Promise<void> {
    this.stopAt = deadlineMs;
    // any sleep: an idle one returns (nothing left), a backoff gets one more attempt before the deadline
    this.wakeUp?.();
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - Date.now()));
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    this.abort.abort();
    this.wakeUp?.();
    await this.loop;
    await this.poster.close();
  }

  private sleep(ms: number, idle: boolean): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        if (this.wakeUp === done) {
          this.wakeUp = undefined;
          this.idle = false;
        }
        resolve();
      };
      timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.idle = idle;
      this.wakeUp = done;
    });
  }

  private draining(): boolean {
    return this.stopAt !== Number.POSITIVE_INFINITY;
  }

  private async run(): Promise<void> {
    while (this.running && !this.abort.signal.aborted) {
      const row = this.buffer.nextToShip();
      if (!row) {
        if (this.draining()) return;
        await this.sleep(1000, true);
        continue;
      }
      if (Date.now() >= this.stopAt) return;
      let delay: number;
      if (this.ackFailing?.batch === row.batch) {
        delay = this.recordAck(row);
      } else {
        try {
          delay = await this.shipOne(row);
        } catch (err) {
          // e.g. the buffer cannot produce the batch: a rejected loop would be an
          // unhandled rejection; halt (records kept) and look again later.
          this.cached = undefined;
          this.opts.metrics.batchesFailed.inc({ reason: 'local_error' });
          delay = this.haltOn(row, 0, 'local_error', printable((err as Error).message), 'cannot build the batch to ship');
        }
      }
      if (delay > 0) await this.sleep(Math.min(delay, Math.max(0, this.stopAt - Date.now())), false);
    }
  }

  /**
   * The collector holds the batch; now forget it locally. If that fails (a
   * full disk cannot even take the WAL frames of a DELETE) only the local
   * step is retried: the batch is not sent again, and this is not the
   * collector refusing anything, so shipping_halted stays 0.
   */
  private recordAck(row: BatchRow): number {
    try {
      this.buffer.ack(row);
    } catch (err) {
      if (this.ackFailing === undefined) {
        this.opts.logger.error(
          { batch: row.batch, code: (err as { code?: string }).code, err: (err as Error).message },
          'the collector acknowledged the batch but the buffer cannot record it (disk full?); retrying the local step',
        );
      }
      this.ackFailing = row;
      this.opts.metrics.batchesFailed.inc({ reason: 'local_ack' });
      return 1000;
    }
    if (this.ackFailing !== undefined) this.opts.logger.info({ batch: row.batch }, 'acknowledged batch recorded in the buffer again');
    this.ackFailing = undefined;
    this.cached = undefined;
    this.opts.onAck?.(row);
    return 0;
  }

  private bodyOf(row: BatchRow): string {
    if (this.cached?.batch !== row.batch) {
      const body = JSON.stringify(this.buffer.wireBatch(row, row.batch === 0 ? this.opts.vkey : undefined));
      this.cached = { batch: row.batch, body };
    }
    return this.cached.body;
  }

  /** Returns how long to wait before the next attempt (0 after an ack). */
  private async shipOne(row: BatchRow): Promise<number> {
    const { logger, metrics } = this.opts;
    const body = this.bodyOf(row);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const end = metrics.shipDuration.startTimer();
    let status: number;
    let retryAfter: string | string[] | undefined;
    let answer: unknown;
    // One deadline for the whole attempt: a client's own timeouts bound only the
    // gaps between bytes, so a trickled answer would otherwise never end.
    const attempt = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      attempt.abort();
    }, this.opts.timeoutMs);
    const onStop = (): void => attempt.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    try {
      const res = await this.poster.post(body, headers, attempt.signal);
      status = res.status;
      retryAfter = res.retryAfter;
      try {
        answer = res.text === undefined ? undefined : JSON.parse(res.text);
      } catch {
        answer = undefined;
      }
    } catch (err) {
      end();
      if (this.abort.signal.aborted) return 0;
      const code = (err as { code?: unknown }).code;
      const timeout = timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
      metrics.batchesFailed.inc({ reason: timeout ? 'timeout' : 'network' });
      const wait = fullJitterDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
      logger.warn(
        { batch: row.batch, err: timedOut ? `no complete answer within ${this.opts.timeoutMs} ms` : (err as Error).message, retry_in_ms: wait },
        timeout ? 'collector did not answer in time; will retry' : 'collector unreachable; will retry',
      );
      return wait;
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', onStop);
    }
    end();
    const verdict = classifyStatus(status);
    if (verdict === 'ack') {
      const ack = (answer as { ack?: { stream?: unknown; batch?: unknown } } | undefined)?.ack;
      if (ack?.stream !== this.buffer.stream || ack?.batch !== row.batch) {
        // An acknowledgement for something else is not an acknowledgement: keep the records.
        metrics.batchesFailed.inc({ reason: 'bad_ack' });
        return this.haltOn(row, status, 'bad_ack', undefined, 'collector answered 200 without a matching ack');
      }
      this.attempt = 0;
      metrics.batchesShipped.inc();
      this.clearHalt(row);
      return this.recordAck(row);
    }
    const error = (answer as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = error?.code;
    const reason = typeof code === 'string' && /^[a-z0-9_]{1,64}$/.test(code) ? code : `http_${status}`;
    metrics.batchesFailed.inc({ reason });
    if (verdict === 'retry') {
      const jitter = fullJitterDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
      const hinted = parseRetryAfter(retryAfter, Date.now());
      const wait = hinted === undefined ? jitter : Math.max(hinted, jitter);
      logger.warn({ batch: row.batch, status, reason, retry_in_ms: wait }, 'collector asked to retry');
      return wait;
    }
    const message = typeof error?.message === 'string' ? printable(error.message) : undefined;
    return this.haltOn(row, status, reason, message, `collector refused batch ${row.batch} with ${status} ${reason}`);
  }
}

/**
 * A message from the collector, fit for a log line and a probe: printable
 * characters only, at most 300. The collector's messages name streams,
 * batches and limits, never record content.
 */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 300 ? `${clean.slice(0, 297)}...` : clean;
}
