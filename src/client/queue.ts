/**
 * The events emitted and not yet answered, in emit order, bounded.
 *
 * Durability: none of its own. An entry lives in this process's memory from
 * emit() until the sidecar's answer (or failClosed's timeout, or the file
 * write) settles it; if the process dies first, the entry is lost and its
 * emit() never resolved, which is what tells the agent it was not recorded.
 * The bound (events and bytes) turns a sidecar that cannot keep up into an
 * immediate `client_queue_full` rejection: the queue never drops silently and
 * never grows without limit.
 */
import { ClientError } from './errors.js';
import type { EmitResult } from './types.js';

export interface Entry {
  readonly eventId: string;
  /** the NDJSON line, "\n" included: the exact bytes every (re)send writes */
  readonly line: Buffer;
  /** resolved, rejected or timed out: no answer can change it any more */
  settled: boolean;
  /** failClosed's deadline */
  timer: NodeJS.Timeout | undefined;
  resolve(result: EmitResult): void;
  reject(err: Error): void;
}

export class PendingQueue implements Iterable<Entry> {
  // A Set keeps insertion order (= emit order) and removes from anywhere in O(1):
  // answers, refusals and timeouts settle entries out of order.
  private readonly entries = new Set<Entry>();
  private bytes = 0;
  private waiters: Array<() => void> = [];

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Queues `entry`, or throws `client_queue_full` naming the bound it would pass. */
  add(entry: Entry): void {
    if (this.entries.size >= this.maxEvents) {
      throw new ClientError(
        'client_queue_full',
        `${this.entries.size} events are already waiting for the sidecar's answer (maxQueue ${this.maxEvents}): ` +
          'the sidecar is unreachable or slower than the agent. Await emits before emitting more, or raise maxQueue',
      );
    }
    // One event larger than the whole bound is still accepted into an empty queue, or it could never be sent.
    if (this.entries.size > 0 && this.bytes + entry.line.length > this.maxBytes) {
      throw new ClientError(
        'client_queue_full',
        `the ${this.entries.size} events waiting for the sidecar's answer hold ${this.bytes} bytes; this one would pass maxQueueBytes (${this.maxBytes}). ` +
          'Await emits before emitting more, or raise maxQueueBytes',
      );
    }
    this.entries.add(entry);
    this.bytes += entry.line.length;
  }

  /** Removes `entry`; false if it was not queued. */
  delete(entry: Entry): boolean {
    if (!this.entries.delete(entry)) return false;
    this.bytes -= entry.line.length;
    if (this.entries.size === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    }
    return true;
  }

  [Symbol.iterator](): Iterator<Entry> {
    return this.entries.values();
  }

  /** Resolves once the queue is empty (at once if it is). */
  drained(): Promise<void> {
    if (this.entries.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
