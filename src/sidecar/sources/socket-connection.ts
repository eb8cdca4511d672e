/**
 * One client connection of the socket source: its bytes become numbered
 * lines in a queue, committed lines are answered in order, and the socket is
 * read only while it may hold more (docs/socket-source.md).
 *
 * Contracts:
 * - every complete, non-blank line received joins the queue, also after the
 *   peer sent FIN or died: they are real events (the source commits them);
 * - an answer is written only for lines the source committed (answer()),
 *   and a line whose outcome is unknown is never claimed stored;
 * - reading stops while this connection holds a batch worth of uncommitted
 *   lines or bytes, or while its unsent answers pile up (the client does not
 *   read them), or while the source takes no input at all.
 */
import type { Socket } from 'node:net';
import type { SourceCode } from '../../core/error-codes.js';
import { NdjsonLines, type StreamLine } from './ndjson-lines.js';
import type { IngestLine, LineOutcome } from './types.js';

/** one connection's uncommitted bytes before it stops being read */
const CONN_QUEUED_BYTES = 1024 * 1024;

/** What a connection needs of its source. */
export interface ConnectionHost {
  readonly maxLineBytes: number;
  /** uncommitted lines one connection may hold before it is no longer read (the batch size) */
  readonly maxBatchLines: number;
  /** unsent answer bytes one connection may hold before it is no longer read */
  readonly maxWriteBytes: number;
  /** the source reads at all: not paused, stopping, closed or over its total queue limit */
  reading(): boolean;
  closed(): boolean;
  /** a line joined `conn`'s queue: count it and put `conn` in the service order */
  queued(conn: Connection, bytes: number): void;
  /** lines are waiting: run the commit loop */
  kick(): void;
  /** the socket closed */
  disconnected(conn: Connection): void;
  /** the socket closed and nothing of it is left to commit */
  forget(conn: Connection): void;
  report(code: SourceCode, message: string): void;
}

export class Connection {
  readonly id: string;
  readonly socket: Socket;
  /** complete, non-blank lines received and not yet committed, in order */
  readonly queue: IngestLine[] = [];
  queuedBytes = 0;
  /** the peer sent FIN: nothing more will arrive, responses still can be written */
  private readEnded = false;
  /** the socket is closed: nothing can be written any more */
  gone = false;
  /** our side was ended with a last line (or none): close() must not write another */
  endSent = false;
  private readonly splitter: NdjsonLines;
  private readonly host: ConnectionHost;

  constructor(id: string, socket: Socket, host: ConnectionHost) {
    this.id = id;
    this.socket = socket;
    this.host = host;
    this.splitter = new NdjsonLines(host.maxLineBytes);
    const lines: StreamLine[] = [];
    socket.on('data', (chunk: Buffer) => {
      if (host.closed()) return;
      lines.length = 0;
      this.splitter.push(chunk, lines);
      for (const l of lines) this.enqueue(l);
      this.updateReading();
      host.kick();
    });
    socket.on('end', () => {
      this.readEnded = true;
      this.endOfInput();
    });
    socket.on('drain', () => this.updateReading());
    socket.on('close', () => {
      this.gone = true;
      host.disconnected(this);
      // No FIN first: the peer died or reset. Its unfinished line is all we will get.
      if (!this.readEnded && !host.closed()) this.endOfInput();
      this.finish();
    });
    this.updateReading();
  }

  /** `n` lines of `bytes` at the head of the queue were committed: they never go back. */
  committed(n: number, bytes: number): void {
    this.queue.splice(0, n);
    this.queuedBytes -= bytes;
  }

  /** Answers committed lines, one response per line in order (blank lines get none). */
  answer(lines: readonly IngestLine[], outcomes: readonly LineOutcome[]): void {
    if (outcomes.length !== lines.length) {
      this.host.report('socket_sink_outcomes', `the sink returned ${outcomes.length} outcomes for ${lines.length} lines of connection ${this.id}`);
    }
    if (this.gone || this.socket.writableEnded) return;
    let out = '';
    for (let i = 0; i < lines.length; i++) {
      const n = lines[i]!.offset;
      const o = outcomes[i];
      if (o === undefined) {
        // The commit happened, but what became of this line is unknown: never claim it was stored.
        out += errorLine(n, 'outcome_missing', `the outcome of line ${n} is unknown`);
      } else if ('seq' in o) {
        // A line in a format that makes several records (OTLP/JSON) took seq … seq+records-1.
        // A resent event (same event_id) is answered with the seq it was stored as before.
        const records = o.records === undefined ? '' : `,"records":${o.records}`;
        out += `{"ack":${n},"seq":${o.seq}${records}${o.duplicate ? ',"duplicate":true' : ''}}\n`;
      } else if ('error' in o) {
        out += errorLine(n, o.error.code, o.error.message);
      } else {
        // Blank lines never reach the sink, so this line was of its format but held no
        // event (an OTLP request without spans): answered, so a client counting answers does not wait.
        out += `{"ack":${n},"records":0}\n`;
      }
    }
    // The callback re-checks reading once this is flushed: 'drain' alone is not enough,
    // it only fires after write() returned false, i.e. above the socket's own high-water mark.
    if (out) this.socket.write(out, () => this.updateReading());
  }

  updateReading(): void {
    if (this.gone || this.readEnded) return;
    const s = this.socket;
    const read =
      this.host.reading() &&
      this.queue.length < this.host.maxBatchLines &&
      this.queuedBytes < CONN_QUEUED_BYTES &&
      s.writableLength <= this.host.maxWriteBytes;
    if (read) {
      if (s.isPaused()) s.resume();
    } else if (!s.isPaused()) {
      s.pause();
    }
  }

  /** Ends our side once everything the peer sent is answered, and forgets a closed, empty connection. */
  finish(): void {
    if (this.queue.length > 0) return;
    if (this.gone) {
      this.host.forget(this);
      return;
    }
    if (this.readEnded && !this.endSent) {
      this.endSent = true;
      this.socket.end();
    }
  }

  private endOfInput(): void {
    if (this.host.closed()) return;
    const last = this.splitter.end();
    if (last) this.enqueue(last);
    this.host.kick();
    this.finish();
  }

  private enqueue(l: StreamLine): void {
    // Blank lines get no response and are not stored; they still count in the numbering.
    if (l.text !== undefined && l.text.trim().length === 0) return;
    const line: IngestLine = { offset: l.line, length: l.length };
    if (l.error) line.error = l.error;
    else line.text = l.text!;
    this.queue.push(line);
    this.queuedBytes += l.length;
    this.host.queued(this, l.length);
  }
}

/** One error response line; without `line` it concerns the connection (refused, closing). */
export function errorLine(line: number | undefined, code: string, message: string): string {
  return `${JSON.stringify(line === undefined ? { error: { code, message } } : { line, error: { code, message } })}\n`;
}

/** end() with a last line, then destroy once flushed or after `graceMs`. */
export function endSocket(socket: Socket, last: string | undefined, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), graceMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    // Nothing more will be read: destroy as soon as our side is flushed.
    socket.once('finish', () => socket.destroy());
    if (socket.writableEnded) {
      if (socket.writableFinished) socket.destroy();
    } else {
      if (last === undefined) socket.end();
      else socket.end(last);
    }
  });
}
