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
 * because the client does not read them. The kernel buffers then fill and the
 * client's writes block, which is the backpressure a fail-closed client wants.
 *
 * All sink calls come from one loop, one at a time, so records get their seq
 * in the order the loop picks batches; connections are served round-robin.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, unlink } from 'node:fs/promises';
import net, { type Server, type Socket } from 'node:net';
import { SealtrailError } from '../../core/errors.js';
import type { IngestLine, LineOutcome } from '../ingest.js';
import { NdjsonLines, type StreamLine } from './ndjson-lines.js';

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

export interface SocketSourceOptions {
  id: string;
  path: string;
  mode: number;
  maxLineBytes: number;
  maxConnections: number;
  /**
   * Durably commits the lines (in order) and returns one outcome per line. May
   * throw (e.g. disk full): then nothing was committed and the lines are offered
   * again after retryDelayMs, in the same order, and are not answered meanwhile.
   */
  sink: (batch: SocketBatch) => LineOutcome[] | Promise<LineOutcome[]>;
  /** Never carries line bytes: codes, counts, line numbers only. */
  onError?: (err: Error) => void;
  onNotice?: (message: string) => void;
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
export class SocketSourceError extends SealtrailError {}

interface Conn {
  id: string;
  socket: Socket;
  splitter: NdjsonLines;
  /** complete, non-blank lines received and not yet committed, in order */
  queue: IngestLine[];
  queuedBytes: number;
  /** the peer sent FIN: nothing more will arrive, responses still can be written */
  readEnded: boolean;
  /** the socket is closed: nothing can be written any more */
  gone: boolean;
  endSent: boolean;
}

const DEFAULT_RETRY_MS = 1000;
const DEFAULT_BATCH_LINES = 500;
const DEFAULT_QUEUED_BYTES = 16 * 1024 * 1024;
const DEFAULT_WRITE_BYTES = 256 * 1024;
const DEFAULT_CLOSE_GRACE_MS = 1000;
/** one connection's uncommitted bytes before it stops being read */
const CONN_QUEUED_BYTES = 1024 * 1024;

export class SocketSource {
  private readonly opts: SocketSourceOptions;
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
  private readonly conns = new Map<string, Conn>();
  /** connections with queued lines, in service order (Set keeps insertion order) */
  private readonly waiting = new Set<Conn>();
  private readonly rejected = new Set<Socket>();
  private openCount = 0;
  private queuedBytes = 0;
  private queuedLines = 0;
  private overQueued = false;

  private started = false;
  private accepting = false;
  private paused = false;
  private draining = false;
  /** a drain finished or ran out of time: no more reads, no more sink calls */
  private stopped = false;
  private closed = false;

  private loop: Promise<void> | undefined;
  /**
   * Set while a failed sink call waits for its retry; the timer callback alone clears it.
   * The gate is the timer, never Date.now(): libuv fires timers on its monotonic clock,
   * which can read a millisecond ahead of Date.now() (or the wall clock can step back),
   * and a retry turned away by a clock check would never be scheduled again.
   */
  private retryTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];
  private closedResolve!: () => void;
  private readonly closedSignal = new Promise<void>((r) => (this.closedResolve = r));

  constructor(opts: SocketSourceOptions) {
    if (!opts.id) throw new SocketSourceError('source_config_invalid', 'socket source needs an id');
    if (!opts.path) throw new SocketSourceError('source_config_invalid', `socket source ${opts.id}: path is empty`);
    if (!Number.isInteger(opts.mode) || opts.mode < 0 || opts.mode > 0o777) {
      throw new SocketSourceError('source_config_invalid', `socket source ${opts.id}: mode must be a permission mode between 0 and 0o777`);
    }
    positiveInt(opts.id, 'maxLineBytes', opts.maxLineBytes, 0);
    positiveInt(opts.id, 'maxConnections', opts.maxConnections, 0);
    this.opts = opts;
    this.retryDelayMs = nonNegative(opts.id, 'retryDelayMs', opts.retryDelayMs, DEFAULT_RETRY_MS);
    this.maxBatchLines = positiveInt(opts.id, 'maxBatchLines', opts.maxBatchLines, DEFAULT_BATCH_LINES);
    this.maxQueuedBytes = positiveInt(opts.id, 'maxQueuedBytes', opts.maxQueuedBytes, DEFAULT_QUEUED_BYTES);
    this.maxWriteBytes = positiveInt(opts.id, 'maxPendingWriteBytes', opts.maxPendingWriteBytes, DEFAULT_WRITE_BYTES);
    this.closeGraceMs = nonNegative(opts.id, 'closeGraceMs', opts.closeGraceMs, DEFAULT_CLOSE_GRACE_MS);
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
    if (this.started) throw new SocketSourceError('source_state', `${this.name}: already started`);
    this.started = true;
    const { path } = this.opts;
    await this.removeStale(path);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.onConnection(s));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      const code = errCode(err);
      if (code === 'EADDRINUSE') {
        throw new SocketSourceError('socket_in_use', `${this.name}: ${path} is already in use`, { cause: err });
      }
      throw new SocketSourceError('socket_listen_failed', `${this.name}: cannot listen on ${path} (${code ?? 'error'})`, { cause: err });
    }
    this.serverOpen = true;
    server.on('error', (err) => this.report('socket_server_error', `server error (${errCode(err) ?? 'error'})`, err));
    try {
      // Until this chmod the file has the umask's mode; connections arriving meanwhile are closed at once.
      await chmod(path, this.opts.mode);
      const st = await lstat(path);
      this.socketIdentity = `${st.dev}:${st.ino}`;
    } catch (err) {
      await this.closeServer();
      throw new SocketSourceError('socket_chmod_failed', `${this.name}: cannot set the mode of ${path} (${errCode(err) ?? 'error'})`, {
        cause: err,
      });
    }
    if (this.closed) {
      await this.closeServer();
      return;
    }
    this.accepting = true;
  }

  /** Backpressure: stop reading every connection (new ones too) and start no sink call. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.updateAllReading();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.updateAllReading();
    this.kick();
  }

  /**
   * Stops accepting and reading, commits and answers every complete line
   * already received (even while paused: these bytes cannot be read again),
   * then makes no more sink calls. `deadlineMs` is a duration in ms, or an
   * absolute Date.now() timestamp if larger than 1e12.
   */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.started || this.closed || this.stopped) return;
    const deadline = deadlineMs > 1e12 ? deadlineMs : Date.now() + deadlineMs;
    this.draining = true;
    this.accepting = false;
    await this.closeServer();
    this.updateAllReading();
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    await Promise.race([this.idle(), late, this.closedSignal]);
    clearTimeout(timer);
    this.stopped = true;
    if (this.queuedLines > 0) this.notice(`drain ended with ${this.queuedLines} received lines not committed (not acknowledged)`);
  }

  /** Closes the server and all connections and removes the socket file. Lines not yet committed are not acknowledged. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.accepting = false;
    this.closedResolve();
    clearTimeout(this.retryTimer);
    await this.closeServer();
    // A sink call in flight finishes and its lines are answered before sockets go.
    await this.loop;
    const lost = this.queuedLines;
    const closing: Promise<void>[] = [];
    for (const conn of this.conns.values()) {
      if (!conn.gone) {
        closing.push(
          this.endSocket(
            conn.socket,
            conn.endSent ? undefined : errorLine(undefined, 'source_closed', 'the source is closing; lines without an ack were not stored'),
          ),
        );
      }
    }
    for (const s of this.rejected) closing.push(this.endSocket(s, undefined));
    await Promise.all(closing);
    this.conns.clear();
    this.waiting.clear();
    this.queuedLines = 0;
    this.queuedBytes = 0;
    if (lost > 0) this.notice(`closed with ${lost} received lines not committed (not acknowledged)`);
    await this.unlinkOwnSocket();
    this.resolveIdle();
  }

  // ---- connections ----------------------------------------------------------

  private onConnection(socket: Socket): void {
    socket.on('error', (err) => this.notice(`connection error (${errCode(err) ?? 'error'})`));
    if (!this.accepting) {
      socket.destroy();
      return;
    }
    if (this.openCount >= this.opts.maxConnections) {
      this.rejected.add(socket);
      socket.once('close', () => this.rejected.delete(socket));
      this.notice(`connection refused: ${this.openCount} open, the limit is ${this.opts.maxConnections}`);
      void this.endSocket(
        socket,
        errorLine(undefined, 'too_many_connections', `the source accepts at most ${this.opts.maxConnections} connections`),
      );
      return;
    }
    const conn: Conn = {
      id: `${this.tag}-${++this.nextConn}`,
      socket,
      splitter: new NdjsonLines(this.opts.maxLineBytes),
      queue: [],
      queuedBytes: 0,
      readEnded: false,
      gone: false,
      endSent: false,
    };
    this.openCount++;
    this.conns.set(conn.id, conn);
    const lines: StreamLine[] = [];
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      lines.length = 0;
      conn.splitter.push(chunk, lines);
      for (const l of lines) this.enqueue(conn, l);
      this.updateReading(conn);
      this.kick();
    });
    socket.on('end', () => {
      conn.readEnded = true;
      this.endOfInput(conn);
    });
    socket.on('drain', () => this.updateReading(conn));
    socket.on('close', () => {
      conn.gone = true;
      this.openCount--;
      // No FIN first: the peer died or reset. Its unfinished line is all we will get.
      if (!conn.readEnded && !this.closed) this.endOfInput(conn);
      this.finish(conn);
    });
    this.updateReading(conn);
  }

  private endOfInput(conn: Conn): void {
    if (this.closed) return;
    const last = conn.splitter.end();
    if (last) this.enqueue(conn, last);
    this.kick();
    this.finish(conn);
  }

  private enqueue(conn: Conn, l: StreamLine): void {
    // Blank lines get no response and are not stored; they still count in the numbering.
    if (l.text !== undefined && l.text.trim().length === 0) return;
    const line: IngestLine = { offset: l.line, length: l.length };
    if (l.error) line.error = l.error;
    else line.text = l.text!;
    conn.queue.push(line);
    conn.queuedBytes += l.length;
    this.queuedBytes += l.length;
    this.queuedLines++;
    this.waiting.add(conn);
    if (!this.overQueued && this.queuedBytes >= this.maxQueuedBytes) {
      this.overQueued = true;
      this.updateAllReading();
    }
  }

  /** Ends our side once everything the peer sent is answered, and forgets a closed, empty connection. */
  private finish(conn: Conn): void {
    if (conn.queue.length > 0) return;
    if (conn.gone) {
      this.conns.delete(conn.id);
      return;
    }
    if (conn.readEnded && !conn.endSent) {
      conn.endSent = true;
      conn.socket.end();
    }
  }

  private updateAllReading(): void {
    for (const conn of this.conns.values()) this.updateReading(conn);
  }

  private updateReading(conn: Conn): void {
    if (conn.gone || conn.readEnded) return;
    const s = conn.socket;
    const read =
      !this.paused &&
      !this.draining &&
      !this.closed &&
      !this.overQueued &&
      conn.queue.length < this.maxBatchLines &&
      conn.queuedBytes < CONN_QUEUED_BYTES &&
      s.writableLength <= this.maxWriteBytes;
    if (read) {
      if (s.isPaused()) s.resume();
    } else if (!s.isPaused()) {
      s.pause();
    }
  }

  /** end() with a last line, then destroy once flushed or after the grace period. */
  private endSocket(socket: Socket, last: string | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      if (socket.destroyed) {
        resolve();
        return;
      }
      const timer = setTimeout(() => socket.destroy(), this.closeGraceMs);
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

  // ---- commit loop ----------------------------------------------------------

  private canRun(): boolean {
    return (
      !this.closed && !this.stopped && (!this.paused || this.draining) && this.retryTimer === undefined && this.waiting.size > 0
    );
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
      const conn = this.waiting.values().next().value as Conn;
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
        this.report(
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
      conn.queue.splice(0, lines.length);
      conn.queuedBytes -= bytes;
      this.queuedBytes -= bytes;
      this.queuedLines -= lines.length;
      this.waiting.delete(conn);
      if (conn.queue.length > 0) this.waiting.add(conn); // to the back: round-robin
      this.respond(conn, lines, outcomes);
      if (this.overQueued && this.queuedBytes < this.maxQueuedBytes) {
        this.overQueued = false;
        this.updateAllReading();
      } else {
        this.updateReading(conn);
      }
      this.finish(conn);
      // Let sockets be read between batches, so lines that arrive meanwhile join the next one.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  private respond(conn: Conn, lines: readonly IngestLine[], outcomes: readonly LineOutcome[]): void {
    if (outcomes.length !== lines.length) {
      this.report('socket_sink_outcomes', `the sink returned ${outcomes.length} outcomes for ${lines.length} lines of connection ${conn.id}`);
    }
    if (conn.gone || conn.socket.writableEnded) return;
    let out = '';
    for (let i = 0; i < lines.length; i++) {
      const n = lines[i]!.offset;
      const o = outcomes[i];
      if (o === undefined) {
        // The commit happened, but what became of this line is unknown: never claim it was stored.
        out += errorLine(n, 'outcome_missing', `the outcome of line ${n} is unknown`);
      } else if ('seq' in o) {
        out += `{"ack":${n},"seq":${o.seq}}\n`;
      } else if ('error' in o) {
        out += errorLine(n, o.error.code, o.error.message);
      }
      // { blank: true }: no response, as for blank lines filtered before the sink.
    }
    // The callback re-checks reading once this is flushed: 'drain' alone is not enough,
    // it only fires after write() returned false, i.e. above the socket's own high-water mark.
    if (out) conn.socket.write(out, () => this.updateReading(conn));
  }

  private idle(): Promise<void> {
    if (!this.loop && (this.waiting.size === 0 || this.closed)) return Promise.resolve();
    return new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private resolveIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  // ---- socket file ----------------------------------------------------------

  /** Removes a socket file nobody listens on; refuses anything else. */
  private async removeStale(path: string): Promise<void> {
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return;
      throw new SocketSourceError('socket_path_invalid', `${this.name}: cannot inspect ${path} (${errCode(err) ?? 'error'})`, { cause: err });
    }
    if (!st.isSocket()) {
      throw new SocketSourceError('socket_path_not_socket', `${this.name}: ${path} exists and is not a socket; refusing to replace it`);
    }
    if (await isListening(path)) {
      throw new SocketSourceError('socket_in_use', `${this.name}: another process is listening on ${path}`);
    }
    try {
      await unlink(path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') {
        throw new SocketSourceError('socket_path_invalid', `${this.name}: cannot remove the stale socket ${path} (${errCode(err) ?? 'error'})`, {
          cause: err,
        });
      }
    }
    this.notice(`removed a stale socket file at ${path}`);
  }

  private async closeServer(): Promise<void> {
    const server = this.server;
    if (!server || !this.serverOpen) return;
    this.serverOpen = false;
    // server.close() resolves only when every connection is gone; the listener itself closes at once.
    server.close();
    await new Promise<void>((r) => setImmediate(r));
  }

  private async unlinkOwnSocket(): Promise<void> {
    if (!this.socketIdentity) return;
    const { path } = this.opts;
    try {
      // libuv normally removes the file when the listener closes; this covers the rest.
      const st = await lstat(path);
      if (st.isSocket() && `${st.dev}:${st.ino}` === this.socketIdentity) await unlink(path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.report('socket_unlink_failed', `cannot remove ${path} (${errCode(err) ?? 'error'})`, err);
    }
  }

  // ---- reporting ------------------------------------------------------------

  private get name(): string {
    return `socket source ${this.opts.id}`;
  }

  private report(code: string, message: string, cause?: unknown): void {
    const err = new SocketSourceError(code, `${this.name}: ${message}`, cause === undefined ? undefined : { cause });
    try {
      this.opts.onError?.(err);
    } catch {
      // a throwing logger must not stop the source
    }
  }

  private notice(message: string): void {
    try {
      this.opts.onNotice?.(`${this.name}: ${message}`);
    } catch {
      // a throwing logger must not stop the source
    }
  }
}

function errorLine(line: number | undefined, code: string, message: string): string {
  return `${JSON.stringify(line === undefined ? { error: { code, message } } : { line, error: { code, message } })}\n`;
}

/** True when something accepts connections on `path`. */
function isListening(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      probe.destroy();
      const code = errCode(err);
      if (code === 'ECONNREFUSED' || code === 'ENOENT') resolve(false);
      // a full accept backlog: someone is listening
      else if (code === 'EAGAIN') resolve(true);
      else reject(new SocketSourceError('socket_path_invalid', `cannot probe the socket at ${path} (${code ?? 'error'})`, { cause: err }));
    });
  });
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

function positiveInt(id: string, name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) {
    throw new SocketSourceError('source_config_invalid', `socket source ${id}: ${name} must be a positive integer`);
  }
  return v;
}

function nonNegative(id: string, name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) {
    throw new SocketSourceError('source_config_invalid', `socket source ${id}: ${name} must be a non-negative number`);
  }
  return v;
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function errName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
