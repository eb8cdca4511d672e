/**
 * POST /v1/events (docs/http-events.md), batched: whatever is pending when a
 * request can go out, up to maxBatchEvents / maxBatchBytes, as NDJSON. One
 * request at a time, so seqs follow emit order.
 *
 * Durability: entries are acked only from a 202, which the sidecar sends
 * after committing the whole request. Any other answer means nothing was
 * stored: 503, 408, 429, other 5xx, a timeout or a network error make the
 * same entries go again after a backoff (at-least-once if a 202 was lost
 * on the way back); a 413 for several events halves the batch and goes
 * again; another 4xx rejects the request's entries, since resending them
 * unchanged would fail the same way.
 */
import http from 'node:http';
import https from 'node:https';
import { Backoff, type BackoffPolicy } from './backoff.js';
import { ConnectionError, EventRejectedError } from './errors.js';
import type { Entry } from './queue.js';
import type { AckResult, Transport, TransportHost } from './transport.js';

/** An answer body longer than this is not the sidecar's (a 202 for maxBatchEvents' 10,000 events is well below). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export interface HttpTransportOptions {
  url: URL;
  maxBatchEvents: number;
  maxBatchBytes: number;
  requestTimeoutMs: number;
  backoff: BackoffPolicy;
}

interface Accepted {
  request_id?: unknown;
  records?: unknown;
  first_seq?: unknown;
  rejected?: unknown;
  duplicates?: unknown;
}

export class HttpTransport implements Transport {
  private readonly agent: http.Agent;
  private readonly backoff: Backoff;
  private inFlight: http.ClientRequest | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private sendQueued = false;
  private closed = false;
  /** events per request: maxBatchEvents, halved by each 413 of a request with several */
  private limit: number;

  constructor(
    private readonly opts: HttpTransportOptions,
    private readonly host: TransportHost,
  ) {
    const Agent = opts.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.backoff = new Backoff(opts.backoff);
    this.limit = opts.maxBatchEvents;
  }

  push(): void {
    if (this.inFlight || this.retryTimer || this.sendQueued || this.closed) return;
    this.sendQueued = true;
    // Emits of one tick go in one request.
    setImmediate(() => {
      this.sendQueued = false;
      this.send();
    });
  }

  idle(): void {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
  }

  end(): Promise<void> {
    this.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    this.closed = true;
    this.idle();
    this.inFlight?.destroy();
    this.agent.destroy();
  }

  private batch(): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (const e of this.host.pending()) {
      if (out.length >= this.limit) break;
      if (out.length > 0 && bytes + e.line.length > this.opts.maxBatchBytes) break;
      out.push(e);
      bytes += e.line.length;
    }
    return out;
  }

  private send(): void {
    if (this.closed || this.inFlight) return;
    const batch = this.batch();
    if (batch.length === 0) return;
    const body = Buffer.concat(batch.map((e) => e.line));
    const request = this.opts.url.protocol === 'https:' ? https.request : http.request;
    const req = request(this.opts.url, {
      method: 'POST',
      agent: this.agent,
      timeout: this.opts.requestTimeoutMs,
      headers: { 'content-type': 'application/x-ndjson', 'content-length': body.length },
    });
    this.inFlight = req;
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      this.inFlight = undefined;
      if (!this.closed) f();
    };
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within requestTimeoutMs (${this.opts.requestTimeoutMs} ms)`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(() => this.retry(new ConnectionError(err.code ?? 'request_failed', `POST ${this.opts.url.href}: ${err.message}`, { cause: err }))),
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(c);
      });
      res.on('error', () => undefined);
      res.on('end', () => finish(() => this.answered(batch, res.statusCode ?? 0, res.headers['retry-after'], Buffer.concat(chunks).toString('utf8'))));
      res.on('close', () => {
        if (!res.complete) finish(() => this.retry(new ConnectionError('ECONNRESET', `POST ${this.opts.url.href}: the answer was cut off`)));
      });
    });
    req.end(body);
  }

  private answered(batch: Entry[], status: number, retryAfter: string | undefined, text: string): void {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (status === 202 && (typeof body !== 'object' || body === null)) {
      // Stored, but which events were refused cannot be told: sending again is safe (event_id), guessing is not.
      this.retry(new ConnectionError('answer_unreadable', `POST ${this.opts.url.href}: a 202 whose body is not the sidecar's JSON answer; sending again`));
      return;
    } else if (status === 202) {
      this.backoff.reset();
      this.settle202(batch, body as Accepted);
    } else if (status === 408 || status === 429 || status >= 500 || status < 200) {
      const code = errorCode(body);
      this.retry(new ConnectionError(`http_${status}`, `POST ${this.opts.url.href}: ${status}${code ? ` ${code}` : ''}; nothing was stored, retrying`), retryAfterMs(retryAfter));
      return;
    } else if (status === 413 && batch.length > 1) {
      // The source's max_events or max_body_bytes is below our batch: smaller requests may pass.
      this.limit = Math.max(1, Math.floor(batch.length / 2));
    } else {
      // 4xx: the request as it is will not be taken; resending it unchanged would loop.
      const code = errorCode(body) ?? `http_${status}`;
      const message = errorMessage(body);
      for (const e of batch) {
        if (e.settled) continue;
        this.host.failed(
          e,
          new EventRejectedError('client_event_refused', code, `the sidecar refused the request (${status} ${code})${message ? `: ${message}` : ''}; nothing of it was stored`, undefined, { eventId: e.eventId }),
        );
      }
    }
    if (this.host.pendingCount() > 0) this.send();
  }

  /**
   * A 202: accepted events that are not duplicates got consecutive seqs in
   * request order; the k-th of them has first_seq + k when each became one
   * record, as sealtrail's own format always does. A duplicate (its event_id
   * already stored: a resend whose 202 was lost) carries the first seq.
   */
  private settle202(batch: Entry[], a: Accepted): void {
    const refused = new Map<number, string>();
    for (const r of listOf(a.rejected)) {
      if (typeof r.index === 'number') refused.set(r.index, typeof r.code === 'string' ? r.code : 'record_failed');
    }
    const duplicates = new Map<number, number>();
    for (const d of listOf(a.duplicates)) {
      if (typeof d.index === 'number' && typeof d.seq === 'number') duplicates.set(d.index, d.seq);
    }
    const fresh = batch.length - refused.size - duplicates.size;
    const firstSeq = typeof a.first_seq === 'number' ? a.first_seq : undefined;
    const oneRecordEach = a.records === fresh;
    let k = 0;
    batch.forEach((e, index) => {
      const code = refused.get(index);
      if (code !== undefined) {
        if (!e.settled) {
          this.host.failed(
            e,
            new EventRejectedError('client_event_refused', code, `the sidecar did not store the event (${code}; request ${String(a.request_id)}, index ${index})`, undefined, { eventId: e.eventId }),
          );
        }
        return;
      }
      const result: AckResult = {};
      const dup = duplicates.get(index);
      if (dup !== undefined) {
        result.seq = dup;
        result.duplicate = true;
      } else {
        if (firstSeq !== undefined && oneRecordEach) result.seq = firstSeq + k;
        else if (firstSeq !== undefined && fresh === 1) {
          result.seq = firstSeq;
          if (typeof a.records === 'number') result.records = a.records;
        }
        k++;
      }
      if (!e.settled) this.host.acked(e, result);
    });
  }

  private retry(reason: ConnectionError, atLeastMs = 0): void {
    if (this.host.pendingCount() === 0) return;
    const delayMs = Math.max(this.backoff.next(), Math.min(atLeastMs, this.opts.backoff.maxDelayMs));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.send();
    }, delayMs);
    this.host.connectionError(reason, { attempt: this.backoff.failures, delayMs });
  }
}

function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(body: unknown): string | undefined {
  const m = (body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof m === 'string' ? m : undefined;
}

function retryAfterMs(v: string | undefined): number {
  const s = Number(v);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 0;
}

function listOf(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
}
