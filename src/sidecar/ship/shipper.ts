import { Agent, request } from 'undici';
import type { Logger } from '../../log.js';
import type { AuditBuffer, BatchRow } from '../buffer/buffer.js';
import type { SidecarMetrics } from '../telemetry/metrics.js';
import { classifyStatus, fullJitterDelay, parseRetryAfter } from './backoff.js';

export interface ShipperOptions {
  url: string;
  token?: string | undefined;
  timeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** verifier key text sent with each batch so a collector in trust-on-first-use mode can pin it */
  vkey?: string;
  logger: Logger;
  metrics: SidecarMetrics;
  onAck?: (row: BatchRow) => void;
}

/**
 * Ships sealed batches in order, one at a time, to POST /v1/batches.
 *
 * Delivery contract: a batch leaves the buffer only when the collector
 * answered 200 for exactly that stream and batch number (buffer.ack). Network
 * errors, 408, 429 and 5xx are retried forever with full-jitter exponential
 * backoff, honouring Retry-After. Any other answer halts shipping (metric
 * sealtrail_shipping_halted=1 and an error log) and is re-probed every
 * backoff_max, so the operator can fix the collector without losing data.
 */
export class Shipper {
  private readonly buffer: AuditBuffer;
  private readonly opts: ShipperOptions;
  private readonly agent: Agent;
  private readonly endpoint: string;
  private running = false;
  private closed = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private attempt = 0;
  private stopAt = Number.POSITIVE_INFINITY;
  private abort = new AbortController();
  /** wire body of the batch being retried: a sealed batch never changes, so it is built once */
  private cached: { batch: number; body: string } | undefined;

  constructor(buffer: AuditBuffer, opts: ShipperOptions) {
    this.buffer = buffer;
    this.opts = opts;
    this.endpoint = new URL('/v1/batches', opts.url).toString();
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 2 });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** A new batch was sealed. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Keep shipping until nothing is left or the deadline passes, then stop. */
  async drain(deadlineMs: number): Promise<void> {
    this.stopAt = deadlineMs;
    this.wake();
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
    this.wake();
    await this.loop;
    await this.agent.close();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      const t = setTimeout(done, ms);
      const onAbort = (): void => done();
      signal.addEventListener('abort', onAbort, { once: true });
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', onAbort);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
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
        await this.sleep(1000);
        continue;
      }
      if (Date.now() >= this.stopAt) return;
      let delay: number;
      try {
        delay = await this.shipOne(row);
      } catch (err) {
        // e.g. the buffer cannot produce the batch: a rejected loop would be an
        // unhandled rejection; halt (records kept) and look again later.
        this.cached = undefined;
        this.opts.metrics.batchesFailed.inc({ reason: 'local_error' });
        this.opts.metrics.shippingHalted.set(1);
        this.opts.logger.error({ batch: row.batch, err: (err as Error).message }, 'cannot build the batch to ship; re-probing');
        delay = this.opts.backoffMaxMs;
      }
      if (delay > 0) await this.sleep(Math.min(delay, Math.max(0, this.stopAt - Date.now())));
    }
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
    try {
      const res = await request(this.endpoint, {
        method: 'POST',
        body,
        headers,
        dispatcher: this.agent,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        signal: this.abort.signal,
      });
      status = res.statusCode;
      retryAfter = res.headers['retry-after'];
      const text = await res.body.text();
      try {
        answer = JSON.parse(text);
      } catch {
        answer = undefined;
      }
    } catch (err) {
      end();
      if (this.abort.signal.aborted) return 0;
      metrics.batchesFailed.inc({ reason: 'network' });
      const wait = fullJitterDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
      logger.warn({ batch: row.batch, err: (err as Error).message, retry_in_ms: wait }, 'collector unreachable; will retry');
      return wait;
    }
    end();
    const verdict = classifyStatus(status);
    if (verdict === 'ack') {
      const ack = (answer as { ack?: { stream?: unknown; batch?: unknown } } | undefined)?.ack;
      if (ack?.stream !== this.buffer.stream || ack?.batch !== row.batch) {
        // An acknowledgement for something else is not an acknowledgement: keep the records.
        metrics.batchesFailed.inc({ reason: 'bad_ack' });
        metrics.shippingHalted.set(1);
        logger.error({ batch: row.batch, status }, 'collector answered 200 without a matching ack; halting shipping');
        return this.opts.backoffMaxMs;
      }
      this.buffer.ack(row);
      this.cached = undefined;
      this.attempt = 0;
      metrics.batchesShipped.inc();
      metrics.shippingHalted.set(0);
      this.opts.onAck?.(row);
      return 0;
    }
    const code = (answer as { error?: { code?: unknown } } | undefined)?.error?.code;
    const reason = typeof code === 'string' && /^[a-z0-9_]{1,64}$/.test(code) ? code : `http_${status}`;
    metrics.batchesFailed.inc({ reason });
    if (verdict === 'retry') {
      const jitter = fullJitterDelay(this.attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs);
      const hinted = parseRetryAfter(retryAfter, Date.now());
      const wait = hinted === undefined ? jitter : Math.max(hinted, jitter);
      logger.warn({ batch: row.batch, status, reason, retry_in_ms: wait }, 'collector asked to retry');
      return wait;
    }
    metrics.shippingHalted.set(1);
    logger.error(
      { batch: row.batch, status, reason },
      'collector refused the batch; shipping halted for this stream (records kept, nothing skipped); re-probing',
    );
    return this.opts.backoffMaxMs;
  }
}
