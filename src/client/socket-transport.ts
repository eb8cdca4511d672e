/**
 * The socket source's client side (docs/socket-source.md): NDJSON lines
 * out, one answer per line back, reconnecting with backoff.
 *
 * Durability: an entry is acked only on `{"ack":N,...}` for the line that
 * carried it on the current connection, which the sidecar writes after the
 * record's SQLite commit. A line written but unanswered when the connection
 * drops may or may not be stored; it stays pending and is written again on
 * the next connection (at-least-once, same bytes and event_id). Lines are
 * written in emit order on each connection, so the sidecar's seqs follow
 * emit order except across a resend.
 */
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { parseAnswer } from './answers.js';
import { Backoff, type BackoffPolicy } from './backoff.js';
import { ConnectionError, EventRejectedError } from './errors.js';
import { LineBook } from './lines.js';
import type { AckResult, Transport, TransportHost } from './transport.js';

/** Bytes handed to one socket.write: big enough to batch, small enough to keep answers flowing. */
const WRITE_CHUNK = 64 * 1024;
/** An answer line longer than this is not the socket source talking. */
const MAX_ANSWER = 64 * 1024;
/** How long close() waits for the sidecar to close its side once everything is answered. */
const END_GRACE_MS = 2_000;

type State = 'idle' | 'connecting' | 'open' | 'waiting' | 'ending' | 'closed';

export class SocketTransport implements Transport {
  private state: State = 'idle';
  private socket: net.Socket | undefined;
  private book: LineBook | undefined;
  private decoder = new StringDecoder('utf8');
  private partial = '';
  /** write() returned false: wait for 'drain' */
  private blocked = false;
  private flushQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** why the current connection is ending: the sidecar's connection error, a socket error, an unreadable answer */
  private dropReason: ConnectionError | undefined;
  private ended: (() => void) | undefined;
  private readonly backoff: Backoff;

  constructor(
    private readonly path: string,
    private readonly host: TransportHost,
    policy: BackoffPolicy,
  ) {
    this.backoff = new Backoff(policy);
  }

  push(entry: Parameters<Transport['push']>[0]): void {
    switch (this.state) {
      case 'idle':
        this.connect();
        break;
      case 'open':
        this.socket!.ref();
        this.book!.enqueue(entry);
        this.queueFlush();
        break;
      default:
        // connecting or waiting: the next connection starts from every pending entry, this one included
        break;
    }
  }

  idle(): void {
    if (this.state === 'waiting') {
      clearTimeout(this.retryTimer);
      this.state = 'idle';
    }
    // An agent that forgets close() can still exit once nothing is pending.
    this.socket?.unref();
  }

  end(): Promise<void> {
    const s = this.socket;
    if (this.state !== 'open' || !s) {
      this.destroy();
      return Promise.resolve();
    }
    this.state = 'ending';
    // Referenced again (idle() let go of it): the awaited close() must keep the process alive until it resolves.
    s.ref();
    return new Promise<void>((resolve) => {
      const guard = setTimeout(() => s.destroy(), END_GRACE_MS);
      this.ended = () => {
        clearTimeout(guard);
        resolve();
      };
      // Half-close: the sidecar answers what is left (nothing, as the queue drained) and closes its side.
      s.end();
    });
  }

  destroy(): void {
    clearTimeout(this.retryTimer);
    this.state = 'closed';
    this.socket?.destroy();
  }

  private connect(): void {
    this.state = 'connecting';
    this.dropReason = undefined;
    const s = net.createConnection({ path: this.path });
    this.socket = s;
    s.on('connect', () => {
      if (this.state !== 'connecting') return;
      this.state = 'open';
      // Every unanswered entry, in emit order, is (re)sent first: numbered from 1 on this connection.
      this.book = new LineBook(this.host.pending());
      this.flush();
    });
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      this.dropReason ??= new ConnectionError(err.code ?? 'socket_error', `socket ${this.path}: ${err.message}`, { cause: err });
    });
    s.on('close', () => this.onClose(s));
  }

  private onData(d: Buffer): void {
    const text = this.partial + this.decoder.write(d);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.onAnswer(text.slice(start, nl));
      start = nl + 1;
      if (!this.book) return;
    }
    this.partial = text.slice(start);
    if (this.partial.length > MAX_ANSWER) this.drop(new ConnectionError('answer_unreadable', `socket ${this.path}: an answer line longer than ${MAX_ANSWER} characters; is this a sealtrail socket source?`));
  }

  private onAnswer(text: string): void {
    const a = parseAnswer(text);
    const book = this.book;
    if (!book) return;
    switch (a.kind) {
      case 'ack': {
        this.backoff.reset();
        const e = book.answer(a.line);
        if (e && !e.settled) {
          const result: AckResult = {};
          if (a.seq !== undefined) result.seq = a.seq;
          if (a.records !== undefined) result.records = a.records;
          if (a.duplicate) result.duplicate = true;
          this.host.acked(e, result);
        }
        return;
      }
      case 'refused': {
        if (a.code === 'outcome_missing') {
          // The sidecar committed but cannot say what became of this line: it may
          // be stored. Resending is safe (its event_id makes a stored copy answer
          // as a duplicate); calling it refused would tell the agent a stored
          // event was not.
          this.drop(new ConnectionError('outcome_missing', `socket ${this.path}: the sidecar could not tell the outcome of line ${a.line}; resending`));
          return;
        }
        this.backoff.reset();
        const e = book.answer(a.line);
        if (e && !e.settled) {
          this.host.failed(
            e,
            new EventRejectedError('client_event_refused', a.code, `the sidecar did not store the event (${a.code}): ${a.message}`, undefined, { eventId: e.eventId }),
          );
        }
        return;
      }
      case 'connection':
        this.dropReason = new ConnectionError(a.code, `socket ${this.path}: the sidecar closed the connection (${a.code}): ${a.message}`);
        return;
      case 'unreadable':
        // Taking an answer we do not understand for an ack could lose an event; resending cannot.
        this.drop(new ConnectionError('answer_unreadable', `socket ${this.path}: an answer that is not the socket source's protocol; reconnecting`));
        return;
    }
  }

  private drop(reason: ConnectionError): void {
    this.dropReason = reason;
    // Nothing more of this connection is believed: its entries stay pending for the next one.
    this.book = undefined;
    this.socket?.destroy();
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Emits of one tick go out in one write.
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const s = this.socket;
    const book = this.book;
    if (this.state !== 'open' || this.blocked || !s || !book) return;
    for (let chunk = book.take(WRITE_CHUNK); chunk; chunk = book.take(WRITE_CHUNK)) {
      // The sidecar reads as long as we read its answers (we always do), so false means the kernel buffer is full.
      if (!s.write(chunk)) {
        this.blocked = true;
        return;
      }
    }
  }

  private onClose(s: net.Socket): void {
    if (s !== this.socket) return;
    this.socket = undefined;
    this.book = undefined;
    this.partial = '';
    this.decoder = new StringDecoder('utf8');
    this.blocked = false;
    if (this.state === 'ending' || this.state === 'closed') {
      this.state = 'closed';
      this.ended?.();
      this.ended = undefined;
      return;
    }
    if (this.host.pendingCount() === 0) {
      // Nothing to resend: reconnect only when there is something to send.
      this.state = 'idle';
      return;
    }
    const reason = this.dropReason ?? new ConnectionError('closed', `socket ${this.path}: the connection closed before every event was answered`);
    const delayMs = this.backoff.next();
    this.state = 'waiting';
    this.retryTimer = setTimeout(() => {
      if (this.state !== 'waiting') return;
      if (this.host.pendingCount() === 0) this.state = 'idle';
      else this.connect();
    }, delayMs);
    this.host.connectionError(reason, { attempt: this.backoff.failures, delayMs });
  }
}
