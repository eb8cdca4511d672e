/**
 * AuditClient: what an agent imports to record its actions through a
 * sealtrail sidecar.
 *
 * Durability: `await emit(e)` resolves only once the sidecar answered that
 * the event's record is committed to its local buffer (socket, http), or,
 * with the file transport, once its line is written (and fsynced if asked).
 * Until then the event is held in this process's memory only (queue.ts):
 * if the process dies first, the emit never resolved. Delivery is
 * at-least-once: an unanswered line is sent again after a reconnect with the
 * same event_id. With failClosed an emit rejects with `client_ack_timeout`
 * after ackTimeoutMs instead of waiting; such an event may or may not be
 * stored, and is not sent again.
 */
import { ClientError, type ConnectionError } from './errors.js';
import { FileTransport } from './file-transport.js';
import { HttpTransport } from './http-transport.js';
import { resolveOptions, type AuditClientOptions, type ResolvedOptions } from './options.js';
import { prepareEvent } from './prepare.js';
import { PendingQueue, type Entry } from './queue.js';
import { SocketTransport } from './socket-transport.js';
import type { AckResult, Transport, TransportHost } from './transport.js';
import type { ClientEvent, EmitResult } from './types.js';

export class AuditClient {
  private readonly opts: ResolvedOptions;
  private readonly queue: PendingQueue;
  private readonly transport: Transport;
  private closing: Promise<void> | undefined;
  /** connection failure reasons already warned about (when no onConnectionError is set) */
  private readonly warned = new Set<string>();

  /** Throws `client_options_invalid` naming the option. Connects on the first emit, not here. */
  constructor(options: AuditClientOptions) {
    this.opts = resolveOptions(options);
    this.queue = new PendingQueue(this.opts.maxQueue, this.opts.maxQueueBytes);
    const host: TransportHost = {
      pending: () => this.queue,
      pendingCount: () => this.queue.size,
      acked: (e, r) => this.settle(e, r),
      failed: (e, err) => this.fail(e, err),
      connectionError: (err, retry) => this.reportConnectionError(err, retry),
    };
    const t = this.opts.transport;
    this.transport =
      t.kind === 'socket'
        ? new SocketTransport(t.path, host, this.opts.backoff)
        : t.kind === 'http'
          ? new HttpTransport({ ...t, backoff: this.opts.backoff }, host)
          : new FileTransport(t, host);
  }

  /** Events emitted and not yet answered. */
  get pending(): number {
    return this.queue.size;
  }

  /**
   * Sends one event. Resolves with its event_id and seq once the sidecar
   * stored it. Rejects with a ClientError: `client_event_invalid` /
   * `client_event_too_large` (not sent: what the sidecar would refuse),
   * `client_event_refused` (the sidecar did not store it), `client_queue_full`,
   * `client_ack_timeout` (failClosed), `client_write_failed` (file),
   * `client_closed`.
   */
  emit(event: ClientEvent): Promise<EmitResult> {
    if (this.closing) {
      return Promise.reject(new ClientError('client_closed', 'emit() after close(): the event was not sent; emit before closing the client'));
    }
    let prepared: ReturnType<typeof prepareEvent>;
    try {
      prepared = prepareEvent(event, { maxEventBytes: this.opts.maxEventBytes, maxDepth: this.opts.maxDepth });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<EmitResult>((resolve, reject) => {
      const entry: Entry = { eventId: prepared.eventId, line: prepared.line, settled: false, timer: undefined, resolve, reject };
      try {
        this.queue.add(entry);
      } catch (err) {
        reject(err);
        return;
      }
      if (this.opts.failClosed) {
        const ms = this.opts.ackTimeoutMs;
        entry.timer = setTimeout(() => {
          this.fail(
            entry,
            new ClientError(
              'client_ack_timeout',
              `no answer from the sidecar within ackTimeoutMs (${ms} ms): the event may or may not be stored and will not be sent again (failClosed); do not act as if it was audited`,
              { eventId: entry.eventId },
            ),
          );
        }, ms);
      }
      this.transport.push(entry);
    });
  }

  /**
   * Flushes and closes: no emit is taken any more; waits until every pending
   * emit is settled, then half-closes the connection (closes the file).
   * With `timeoutMs`, emits still pending then are rejected with
   * `client_closed` and close() rejects with `client_flush_timeout`.
   * Calling it again returns the same promise.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.flushAndEnd(options.timeoutMs);
    return this.closing;
  }

  private async flushAndEnd(timeoutMs: number | undefined): Promise<void> {
    if (timeoutMs !== undefined && (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)) {
      throw new ClientError('client_options_invalid', 'close() option timeoutMs: expected an integer of 0 or more');
    }
    if (timeoutMs === undefined) {
      await this.queue.drained();
    } else {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.queue.drained().then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        const n = this.queue.size;
        this.transport.destroy();
        for (const e of [...this.queue]) {
          this.fail(e, new ClientError('client_closed', 'the client was closed before the sidecar answered: the event may or may not be stored', { eventId: e.eventId }));
        }
        throw new ClientError('client_flush_timeout', `${n} events were not answered within close()'s timeoutMs (${timeoutMs} ms); their emits were rejected with client_closed`);
      }
    }
    await this.transport.end();
  }

  private settle(entry: Entry, result: AckResult): void {
    if (this.take(entry)) entry.resolve({ event_id: entry.eventId, ...result });
  }

  private fail(entry: Entry, err: Error): void {
    if (this.take(entry)) entry.reject(err);
  }

  /** Marks the entry settled and forgets it; false if it already was. */
  private take(entry: Entry): boolean {
    if (entry.settled) return false;
    entry.settled = true;
    clearTimeout(entry.timer);
    this.queue.delete(entry);
    if (this.queue.size === 0) this.transport.idle();
    return true;
  }

  private reportConnectionError(err: ConnectionError, retry: { attempt: number; delayMs: number }): void {
    const hook = this.opts.onConnectionError;
    if (!hook) {
      // Without a hook, each kind of failure is said once as a process
      // warning: a wrong socket path would otherwise leave emits waiting in
      // silence while the client retries.
      if (!this.warned.has(err.reason)) {
        this.warned.add(err.reason);
        process.emitWarning(`${err.message} (retrying with backoff; set onConnectionError to handle this)`, { type: 'SealtrailClientWarning', code: err.code });
      }
      return;
    }
    try {
      hook(err, retry);
    } catch {
      // A faulty hook must not stop the retries.
    }
  }
}
