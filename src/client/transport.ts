/**
 * What the client core (client.ts) and a transport (socket, http, file)
 * owe each other. The core owns the entries and settles each exactly once;
 * a transport only moves lines and reports what the other end said.
 */
import type { ConnectionError } from './errors.js';
import type { Entry } from './queue.js';

/** What an answer says of a stored event (EmitResult without the event_id). */
export interface AckResult {
  seq?: number;
  records?: number;
  duplicate?: true;
}

export interface TransportHost {
  /** unsettled entries in emit order: what a new connection (re)sends */
  pending(): Iterable<Entry>;
  pendingCount(): number;
  /** the other end stored the entry's line */
  acked(entry: Entry, result: AckResult): void;
  /** the other end refused it, or the file write failed: not to be resent */
  failed(entry: Entry, err: Error): void;
  /** a connect or request failed; the transport retries after retry.delayMs */
  connectionError(err: ConnectionError, retry: { attempt: number; delayMs: number }): void;
}

export interface Transport {
  /** a new entry was queued (it is already in host.pending()) */
  push(entry: Entry): void;
  /** nothing is pending any more: stop keeping the process alive */
  idle(): void;
  /** nothing is pending and nothing will be: finish cleanly (half-close, close the file) */
  end(): Promise<void>;
  /** stop now, dropping whatever is in flight */
  destroy(): void;
}
