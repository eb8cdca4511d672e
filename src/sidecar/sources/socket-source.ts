/**
 * Unix socket source: NDJSON over a stream socket, many concurrent clients,
 * one response per line sent only after the line is durable (wire protocol:
 * docs/socket-source.md).
 *
 * Invariant 2 (nothing lost, nothing duplicated) rests on these rules:
 * - a line is answered only after the sink resolved, i.e. after its record or
 *   quarantine row is committed; an ack therefore never names a line that a
 *   crash could still lose;
 * - a sink call that throws committed nothing, so the very same lines stay at
 *   the head of their connection's queue and are offered again, in order;
 * - complete lines already received from a client that went away are still
 *   committed (they are real events); a client that saw no ack may resend, so
 *   duplicates are possible only for lines the client was never told about.
 *
 * Memory stays bounded under any client behaviour: a connection stops being
 * read while it has a batch worth of uncommitted lines, while the total of
 * uncommitted bytes is over a limit, or while its unsent responses pile up
 * because the client does not read them (socket-connection.ts). The kernel
 * buffers then fill and the client's writes block, which is the backpressure
 * a fail-closed client wants.
 *
 * All sink calls come from one loop, one at a time, so records get their seq
 * in the order the loop picks batches; connections are served round-robin.
 */
import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import type { SourceCode } from '../../core/error-codes.js';
import { SealtrailError } from '../../core/errors.js';
import { Connection, endSocket, errorLine, type ConnectionHost } from './socket-connection.js';
import { closeListener, listenOn, unlinkOwnSocket } from './socket-file.js';
import { SourceLifecycle, errCode, nonNegative, positiveInt, type Deadline, type Source, type SourceReporting } from './source.js';
import type { IngestLine, LineOutcome } from './types.js';

export interface SocketBatch {
  source: string;
  /** connection id, unique within this process (random tag + counter) */
  connection: string;
  /** the socket path */
  path: string;
  /** `socket:<connection>`, the identity to put in quarantine rows */
  fileKey: string;
  /** offset = the client's 1-based line number, length = bytes including the "\n" */
  lines: IngestLine[];
}

export interface SocketSourceOptions extends SourceReporting {
  id: string;
  path: string;
  mode: number;
  maxLineBytes: number;
  maxConnections: number;
  /**
   * Durably commits the lines (in order) and returns one outcome per line. May
   * throw (e.g. disk full): then nothing was committed and the lines are offered
   * again after retryDelayMs, in the same order, and are not answered meanwhile.
   * (onError never carries line bytes: codes, counts, line numbers only.)
   */
  sink: (batch: SocketBatch) => LineOutcome[] | Promise<LineOutcome[]>;
  /** default 1000 */
  retryDelayMs?: number;
  /** lines per sink call, default 500; also how many uncommitted lines one connection may hold before it is no longer read */
  maxBatchLines?: number;
  /** uncommitted bytes over all connections before every connection stops being read; default 16 MiB */
  maxQueuedBytes?: number;
  /** unsent response bytes one connection may hold before it stops being read; default 256 KiB */
  maxPendingWriteBytes?: number;
  /** how long close() lets a connection flush its last responses before destroying it; default 1000 */
  closeGraceMs?: number;
}

/** Errors thrown by start() / the constructor or reported through onError. */
export class SocketSourceError extends SealtrailError<SourceCode> {}

const DEFAULT_RETRY_MS = 1000;
const DEFAULT_BATCH_LINES = 500;
const DEFAULT_QUEUED_BYTES = 16 * 1024 * 1024;
const DEFAULT_WRITE_BYTES = 256 * 1024;
const DEFAULT_CLOSE_GRACE_MS = 1000;

export class SocketSource implements Source {
  readonly id: string;
  private readonly opts: SocketSourceOptions;
  private readonly life: SourceLifecycle;
  private readonly retryDelayMs: number;
  private readonly maxBatchLines: number;
  private readonly maxQueuedBytes: number;
  private readonly maxWriteBytes: number;
  private readonly closeGraceMs: number;
  private readonly tag = randomBytes(4).toString('hex');

  private server: Server | undefined;
  private serverOpen = false;
  /** dev:ino of the socket file we created, so close() never unlinks someone else's */
  private socketIdentity: string | undefined;
  private nextConn = 0;
  private readonly conns = new Map<string, Connection>();
  /** connections with queued lines, in service order (Set keeps insertion order) */
  private readonly waiting = new Set<Connection>();
  private readonly rejected = new Set<Socket>();
  private openCount = 0;
  private queuedBytes = 0;
  private queuedLines = 0;
  private overQueued = false;
  private accepting = false;

  private loop: Promise<void> | undefined;
  /**
   * Set while a failed sink call waits for its retry; the timer callback alone clears it.
   * The gate is the timer, never Date.now(): libuv fires timers on its monotonic clock,
   * which can read a millisecond ahead of Date.now() (or the wall clock can step back),
   * and a retry turned away by a clock check would never be scheduled again.
   */
  private retryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  /** what every connection sees of this source */
  private readonly host: ConnectionHost;

  constructor(opts: SocketSourceOptions) {
    if (!opts.id) throw new SocketSourceError('source_config_invalid', 'socket source needs an id');
    const life = new SourceLifecycle(`socket source ${opts.id}`, opts, (code, message, o) => new SocketSourceError(code, message, o));
    if (!opts.path) throw life.optionError('path is empty');
    if (!Number.isInteger(opts.mode) || opts.mode < 0 || opts.mode > 0o777) {
      throw life.optionError('mode must be a permission mode between 0 and 0o777');
    }
    const maxLineBytes = positiveInt(life, 'maxLineBytes', opts.maxLineBytes, 0);
    positiveInt(life, 'maxConnections', opts.maxConnections, 0);
    this.id = opts.id;
    this.opts = opts;
    this.life = life;
    this.retryDelayMs = nonNegative(life, 'retryDelayMs', opts.retryDelayMs, DEFAULT_RETRY_MS);
    this.maxBatchLines = positiveInt(life, 'maxBatchLines', opts.maxBatchLines, DEFAULT_BATCH_LINES);
    this.maxQueuedBytes = positiveInt(life, 'maxQueuedBytes', opts.maxQueuedBytes, DEFAULT_QUEUED_BYTES);
    this.maxWriteBytes = positiveInt(life, 'maxPendingWriteBytes', opts.maxPendingWriteBytes, DEFAULT_WRITE_BYTES);
    this.closeGraceMs = nonNegative(life, 'closeGraceMs', opts.closeGraceMs, DEFAULT_CLOSE_GRACE_MS);
    this.host = this.connectionHost(maxLineBytes);
  }

  /** Listening and accepting connections. */
  get ready(): boolean {
    return this.accepting;
  }

  /** Open client connections (rejected over-limit connections not counted). */
  connections(): number {
    return this.openCount;
  }

  /** Lines received and not yet committed, over all connections. */
  pendingLines(): number {
    return this.queuedLines;
  }

  async start(): Promise<void> {
    this.life.start();
    const { server, identity } = await listenOn(this.opts.path, this.opts.mode, this.life, (s) => this.onConnection(s));
    this.server = server;
    this.serverOpen = true;
    this.socketIdentity = identity;
    if (this.life.closed) {
      await this.closeServer();
      return;
    }
    this.accepting = true;
  }

  /** Backpressure: stop reading every connection (new ones too) and start no sink call. */
  pause(): void {
    if (this.life.pause()) this.updateAllReading();
  }

  resume(): void {
    if (!this.life.resume()) return;
    this.updateAllReading();
    this.kick();
  }

  /**
   * Stops accepting and reading, commits and answers every complete line
   * already received (even while paused: these bytes cannot be read again),
   * then makes no more sink calls.
   */
  async drain(deadline: Deadline): Promise<void> {
    const drained = await this.life.drain(deadline, async () => {
      this.accepting = false;
      await this.closeServer();
      this.updateAllReading();
      this.kick();
      await this.idle();
    });
    if (drained && this.queuedLines > 0) this.life.notice(`drain ended with ${this.queuedLines} received lines not committed (not acknowledged)`);
  }

  /** Closes the server and all connections and removes the socket file. Lines not yet committed are not acknowledged. */
  async close(): Promise<void> {
    if (!this.life.close()) return;
    this.accepting = false;
    clearTimeout(this.retryTimer);
    await this.closeServer();
    // A sink call in flight finishes and its lines are answered before sockets go.
    await this.loop;
    const lost = this.queuedLines;
    const closing: Promise<void>[] = [];
    for (const conn of this.conns.values()) {
      if (!conn.gone) {
        closing.push(
          endSocket(
            conn.socket,
            conn.endSent ? undefined : errorLine(undefined, 'source_closed', 'the source is closing; lines without an ack were not stored'),
            this.closeGraceMs,
          ),
        );
      }
    }
    for (const s of this.rejected) closing.push(endSocket(s, undefined, this.closeGraceMs));
    await Promise.all(closing);
    this.conns.clear();
    this.waiting.clear();
    this.queuedLines = 0;
    this.queuedBytes = 0;
    if (lost > 0) this.life.notice(`closed with ${lost} received lines not committed (not acknowledged)`);
    if (this.socketIdentity) await unlinkOwnSocket(this.opts.path, this.socketIdentity, this.life);
    this.resolveIdle();
  }

  // ---- connections ----------------------------------------------------------

  private connectionHost(maxLineBytes: number): ConnectionHost {
    const life = this.life;
    return {
      maxLineBytes,
      maxBatchLines: this.maxBatchLines,
      maxWriteBytes: this.maxWriteBytes,
      reading: () => !life.paused && !life.stopping && !life.closed && !this.overQueued,
      closed: () => life.closed,
      queued: (conn, bytes) => {
        this.queuedBytes += bytes;
        this.queuedLines++;
        this.waiting.add(conn);
        if (!this.overQueued && this.queuedBytes >= this.maxQueuedBytes) {
          this.overQueued = true;
          this.updateAllReading();
        }
      },
      kick: () => this.kick(),
      disconnected: () => {
        this.openCount--;
      },
      forget: (conn) => {
        this.conns.delete(conn.id);
      },
      report: (code, message) => life.report(code, message),
    };
  }

  private onConnection(socket: Socket): void {
    socket.on('error', (err) => this.life.notice(`connection error (${errCode(err) ?? 'error'})`));
    if (!this.accepting) {
      socket.destroy();
      return;
    }
    const max = this.opts.maxConnections;
    if (this.openCount >= max) {
      this.rejected.add(socket);
      socket.once('close', () => this.rejected.delete(socket));
      this.life.notice(`connection refused: ${this.openCount} open, the limit is ${max}`);
      void endSocket(socket, errorLine(undefined, 'too_many_connections', `the source accepts at most ${max} connections`), this.closeGraceMs);
      return;
    }
    this.openCount++;
    const conn = new Connection(`${this.tag}-${++this.nextConn}`, socket, this.host);
    this.conns.set(conn.id, conn);
  }

  private updateAllReading(): void {
    for (const conn of this.conns.values()) conn.updateReading();
  }

  // ---- commit loop ----------------------------------------------------------

  private canRun(): boolean {
    const life = this.life;
    return !life.closed && !life.stopped && (!life.paused || life.stopping) && this.retryTimer === undefined && this.waiting.size > 0;
  }

  private kick(): void {
    if (this.loop || !this.canRun()) return;
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      if (this.canRun()) this.kick();
      else if (this.waiting.size === 0) this.resolveIdle();
    });
  }

  private async run(): Promise<void> {
    while (this.canRun()) {
      const conn = this.waiting.values().next().value as Connection;
      const lines = conn.queue.slice(0, this.maxBatchLines);
      let outcomes: LineOutcome[];
      try {
        const r = this.opts.sink({
          source: this.opts.id,
          connection: conn.id,
          path: this.opts.path,
          fileKey: `socket:${conn.id}`,
          lines,
        });
        outcomes = isThenable(r) ? await r : r;
      } catch (err) {
        this.life.report(
          'socket_sink_failed',
          `committing ${lines.length} lines of connection ${conn.id} failed (${errCode(err) ?? errName(err)}); retrying in ${this.retryDelayMs} ms`,
          err,
        );
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.retryDelayMs);
        return;
      }
      // Committed: from here on nothing may put these lines back in the queue.
      let bytes = 0;
      for (const l of lines) bytes += l.length;
      conn.committed(lines.length, bytes);
      this.queuedBytes -= bytes;
      this.queuedLines -= lines.length;
      this.waiting.delete(conn);
      if (conn.queue.length > 0) this.waiting.add(conn); // to the back: round-robin
      conn.answer(lines, outcomes);
      if (this.overQueued && this.queuedBytes < this.maxQueuedBytes) {
        this.overQueued = false;
        this.updateAllReading();
      } else {
        conn.updateReading();
      }
      conn.finish();
      // Let sockets be read between batches, so lines that arrive meanwhile join the next one.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private idle(): Promise<void> {
    if (!this.loop && (this.waiting.size === 0 || this.life.closed)) return Promise.resolve();
    return new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async closeServer(): Promise<void> {
    const server = this.server;
    if (!server || !this.serverOpen) return;
    this.serverOpen = false;
    await closeListener(server);
  }
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
