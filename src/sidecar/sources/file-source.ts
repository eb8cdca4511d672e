/**
 * File tail source: follows JSONL trace files and hands their complete lines
 * to a sink, in chunks, together with the position to commit alongside them.
 *
 * Invariant 2 (nothing lost, nothing duplicated) rests on four rules:
 * - files are named by `dev:ino`, never by path, and read through an fd that
 *   stays open across renames and deletion, so a rotated file is finished
 *   from the very inode it was being read from (file-discovery.ts);
 * - the in-memory offset moves only after the sink resolved, i.e. after the
 *   caller committed the same position with the records (here: deliver);
 * - a stored position is trusted only if the file still holds the bytes it
 *   was computed over (fingerprint of the head and of the 256 bytes before
 *   the position, length not shorter), so a recycled inode is read from 0
 *   even when the new file starts with the same header (file-identity.ts);
 * - a new file whose name extends the name of a file we read (app.jsonl.1
 *   next to app.jsonl) and that holds that file's committed positions is a
 *   copy of it (copytruncate): it is read from where the original's reading
 *   ended, not again from 0 (file-copies.ts).
 *
 * All file state is touched by a single async loop (this module), which is
 * also the only caller of the sink and of discovery; watcher callbacks
 * merely queue paths and wake it.
 *
 * Appends are grouped (file-wake.ts): lines written within GROUP_WINDOW_MS
 * of the first write after the loop went idle are read into one chunk, so
 * one commit, per file; a chunk that fills to its limits is followed at
 * once by the next, so only small wake-ups wait. The window delays a line
 * by at most GROUP_WINDOW_MS; what is committed, and that a position moves
 * only after its commit, is unchanged.
 */
import type { SourceCode } from '../../core/error-codes.js';
import { SealtrailError } from '../../core/errors.js';
import { FileCopies } from './file-copies.js';
import { FileDiscovery } from './file-discovery.js';
import { FINGERPRINT_BYTES, WINDOW_BYTES, isStrongPosition, readHead, readWindow } from './file-identity.js';
import { chunkOf, extendHead, markTruncated, noteSize, type Tail, type Tails } from './file-tail.js';
import { LoopWake } from './file-wake.js';
import { SourceLifecycle, positiveInt, type Deadline, type Source, type SourceReporting } from './source.js';
import type { LineChunk, PositionStore, SourceLine } from './types.js';

// The file source's own vocabulary, where its callers (and tests) look for it.
export { GROUP_WINDOW_MS } from './file-wake.js';
export type { FileKey, LineChunk, PositionStore, SourceLine, SourceLineErrorCode, StoredPosition } from './types.js';

export interface FileSourceOptions extends SourceReporting {
  id: string;
  include: string[];
  exclude?: string[];
  maxLineBytes: number;
  startAt: 'beginning' | 'end';
  positions: PositionStore;
  /**
   * Called one at a time. The source advances its offset only after it
   * resolves; if it rejects, the same chunk is retried after `retryDelayMs`.
   */
  sink: (chunk: LineChunk) => Promise<void>;
  /** default 100 (DEFAULT_MAX_CHUNK_LINES) */
  maxChunkLines?: number;
  /** default 4 MiB */
  maxChunkBytes?: number;
  /** default 250: stat-poll safety net besides change notifications */
  pollIntervalMs?: number;
  /** How long a renamed-away or deleted file must stay unchanged at EOF before it is released. Default 5000. */
  rotateWaitMs?: number;
  /** Delay before a rejected chunk is offered again. Default 1000. */
  retryDelayMs?: number;
  /** Full directory walk interval (new-file safety net besides the directory watches). Default 1000. */
  rescanIntervalMs?: number;
  /** Read block size. Default 64 KiB. */
  readBlockBytes?: number;
  /** Directory relative globs are resolved against. Default process.cwd(). */
  cwd?: string;
}

/** Errors reported through `onError` or thrown by the constructor. */
export class FileSourceError extends SealtrailError<SourceCode> {}

interface DrainState {
  /** size of each followed file when the drain began: what it must deliver */
  targets: Map<string, number> | undefined;
  done: Promise<void>;
  resolve: () => void;
}

/**
 * A chunk is ingested in one synchronous pass, so its lines' records stay
 * alive until its commit and outlive the young generation's collections:
 * reading a backlog in chunks of 500 grew the heap to ~110 MiB, in chunks
 * of 100 to ~70 MiB, for about 2% more CPU (one more commit every 100
 * lines). Paced input never fills a chunk: the group window ends it first.
 */
const DEFAULT_MAX_CHUNK_LINES = 100;
const DEFAULT_MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const DEFAULT_POLL_MS = 250;
/** committed positions kept per file for copy recognition */
const MAX_MARKS = 64;

export class FileSource implements Source {
  readonly id: string;
  private readonly opts: FileSourceOptions;
  private readonly life: SourceLifecycle;
  private readonly maxChunkLines: number;
  private readonly maxChunkBytes: number;
  private readonly pollIntervalMs: number;
  private readonly rotateWaitMs: number;
  private readonly retryDelayMs: number;
  private readonly block: Buffer;

  private readonly tails: Tails = new Map<string, Tail>();
  private readonly copies: FileCopies;
  private readonly discovery: FileDiscovery;
  private loop: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;

  private isReady = false;
  private drainState: DrainState | undefined;
  private retryAt = 0;
  private rr = 0;
  private readonly wakes = new LoopWake();

  constructor(opts: FileSourceOptions) {
    if (!opts.id) throw new FileSourceError('source_config_invalid', 'file source needs an id');
    const life = new SourceLifecycle(`file source ${opts.id}`, opts, (code, message, o) => new FileSourceError(code, message, o));
    if (!opts.include?.length) throw life.optionError('include must list at least one glob');
    if (opts.startAt !== 'beginning' && opts.startAt !== 'end') throw life.optionError("startAt must be 'beginning' or 'end'");
    this.id = opts.id;
    this.opts = opts;
    this.life = life;
    positiveInt(life, 'maxLineBytes', opts.maxLineBytes, 0);
    this.maxChunkLines = positiveInt(life, 'maxChunkLines', opts.maxChunkLines, DEFAULT_MAX_CHUNK_LINES);
    this.maxChunkBytes = positiveInt(life, 'maxChunkBytes', opts.maxChunkBytes, DEFAULT_MAX_CHUNK_BYTES);
    this.pollIntervalMs = positiveInt(life, 'pollIntervalMs', opts.pollIntervalMs, DEFAULT_POLL_MS);
    this.rotateWaitMs = opts.rotateWaitMs ?? 5000;
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
    this.block = Buffer.alloc(positiveInt(life, 'readBlockBytes', opts.readBlockBytes, 64 * 1024));
    this.copies = new FileCopies({ source: opts.id, life, rotateWaitMs: this.rotateWaitMs, release: (t) => this.releaseTail(t) });
    this.discovery = new FileDiscovery({
      id: opts.id,
      include: opts.include,
      exclude: opts.exclude ?? [],
      cwd: opts.cwd ?? process.cwd(),
      maxLineBytes: opts.maxLineBytes,
      startAt: opts.startAt,
      positions: opts.positions,
      pollIntervalMs: this.pollIntervalMs,
      rescanIntervalMs: opts.rescanIntervalMs ?? 1000,
      life,
      tails: this.tails,
      copies: this.copies,
      wake: () => this.wakes.now(),
      appended: () => this.wakes.appended(),
    });
  }

  /** True once started and all initial files are open. */
  get ready(): boolean {
    return this.isReady;
  }

  async start(): Promise<void> {
    this.life.start();
    this.startPromise = this.doStart();
    return this.startPromise;
  }

  /** Backpressure: while paused no sink call starts (one already running finishes). */
  pause(): void {
    this.life.pause();
  }

  resume(): void {
    this.life.resume();
    this.wakes.now();
  }

  /**
   * Delivers every complete line available now, then stops reading for good.
   * Resolves when done or at the deadline, whichever is first.
   */
  async drain(deadline: Deadline): Promise<void> {
    if (!this.life.started || this.life.closed || this.life.stopped) return;
    await this.startPromise?.catch(() => undefined);
    await this.life.drain(deadline, () => {
      if (!this.drainState) {
        let resolve!: () => void;
        const done = new Promise<void>((r) => (resolve = r));
        this.drainState = { targets: undefined, done, resolve };
        this.discovery.requestPoll();
        this.wakes.now();
      }
      return this.drainState.done;
    });
  }

  async close(): Promise<void> {
    if (!this.life.close()) return;
    this.wakes.close();
    this.drainState?.resolve();
    await this.startPromise?.catch(() => undefined);
    await this.discovery.close();
    await this.loop;
    for (const tail of this.tails.values()) await tail.fh.close().catch(() => undefined);
    this.tails.clear();
    this.isReady = false;
  }

  /** Per-file progress, for lag metrics. */
  files(): Array<{ key: string; path: string; size: number; offset: number }> {
    return [...this.tails.values()].map((t) => ({ key: t.key, path: t.path, size: t.size, offset: t.hold ? t.size : t.committed }));
  }

  private async doStart(): Promise<void> {
    await this.discovery.start();
    if (this.life.closed) return;
    this.isReady = true;
    this.loop = this.run();
  }

  // ---- the loop -------------------------------------------------------------

  private async run(): Promise<void> {
    const life = this.life;
    while (!life.closed) {
      this.wakes.clear();
      if (life.stopped) {
        await this.wakes.wait(this.pollIntervalMs);
        continue;
      }
      try {
        await this.housekeeping();
      } catch (err) {
        life.report('source_discovery_failed', 'discovery pass failed', err);
      }
      if (life.closed) break;
      this.checkDrain();
      if (life.stopped || life.paused) {
        await this.wakes.wait(this.pollIntervalMs);
        continue;
      }
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        await this.wakes.wait(Math.min(wait, this.pollIntervalMs));
        continue;
      }
      // Whether some file has work now (more lines than a chunk took, a
      // truncation, a release): otherwise the loop waits for a wake, so lines
      // appended during this round's commits are grouped, not read one by one.
      let more = false;
      const list = [...this.tails.values()];
      // One turn per file per round, each bounded by the chunk limits: round-robin fairness.
      for (let i = 0; i < list.length; i++) {
        if (life.closed || life.paused || life.stopped || Date.now() < this.retryAt) break;
        const tail = list[(this.rr + i) % list.length]!;
        if (this.tails.get(tail.key) !== tail || this.drainFinished(tail)) continue;
        try {
          if (await this.turn(tail)) more = true;
        } catch (err) {
          if (life.closed) break;
          life.report('source_read_failed', `${tail.path} (${tail.key}): read failed at offset ${tail.splitter.position}`, err);
        }
      }
      this.rr = list.length ? (this.rr + 1) % list.length : 0;
      this.checkDrain();
      if (!more) await this.wakes.wait(this.pollIntervalMs);
    }
  }

  private async housekeeping(): Promise<void> {
    await this.discovery.pass();
    if (this.drainState && !this.drainState.targets) {
      this.drainState.targets = new Map([...this.tails.values()].map((t) => [t.key, t.size]));
    }
  }

  /** One bounded step for one file. Returns whether it has more to do right away. */
  private async turn(tail: Tail): Promise<boolean> {
    if (tail.hold) return this.copies.resolveHold(tail, this.tails);
    if (!tail.pending) {
      if (tail.truncated) {
        const rest = tail.splitter.takeUnterminated();
        if (rest) {
          // its bytes are gone: a position no later content can match
          tail.pending = chunkOf(this.id, tail, [rest], 'gone');
        } else {
          this.restartAtZero(tail);
          return true;
        }
      } else if (tail.release) {
        await this.releaseTail(tail);
        return true;
      } else {
        await this.fill(tail);
        if (!tail.pending) {
          if (!(tail.detached && tail.atEof && this.mayRelease(tail))) return tail.truncated || !tail.atEof;
          const rest = tail.splitter.takeUnterminated();
          tail.release = true;
          if (!rest) {
            await this.releaseTail(tail);
            return true;
          }
          const end = rest.offset + rest.length;
          tail.pending = chunkOf(this.id, tail, [rest], end > FINGERPRINT_BYTES ? await readWindow(tail.fh, end) : 'gone');
        }
      }
    }
    return (await this.deliver(tail)) && (tail.truncated || tail.release || !tail.atEof);
  }

  private mayRelease(tail: Tail): boolean {
    // On drain there is no later: whatever the writer still adds to a file we
    // can no longer find by name would be lost either way.
    return this.drainState !== undefined || Date.now() - tail.quietSince >= this.rotateWaitMs;
  }

  /** Reads from the splitter's position up to the chunk limits; leaves a chunk in `tail.pending`. */
  private async fill(tail: Tail): Promise<boolean> {
    const st = await tail.fh.stat();
    noteSize(tail, st.size);
    const from = tail.splitter.position;
    if (st.size < from) {
      markTruncated(tail, this.life);
      return true;
    }
    if (st.size === from) {
      tail.atEof = true;
      return false;
    }
    tail.atEof = false;
    const lines: SourceLine[] = [];
    let bytes = 0;
    let full = false;
    let budget = this.maxChunkBytes;
    const emit = (line: SourceLine): boolean => {
      lines.push(line);
      bytes += line.length;
      full = lines.length >= this.maxChunkLines || bytes >= this.maxChunkBytes;
      return !full;
    };
    const before = tail.splitter.snapshot();
    const headBefore = tail.head;
    // The read budget bounds a turn that only skips an over-long line.
    while (!full && budget > 0) {
      const at = tail.splitter.position;
      const { bytesRead } = await tail.fh.read(this.block, 0, this.block.length, at);
      if (bytesRead === 0) {
        tail.atEof = true;
        break;
      }
      const data = this.block.subarray(0, bytesRead);
      extendHead(tail, data, at);
      const used = tail.splitter.feed(data, emit);
      budget -= used;
      if (bytesRead < this.block.length && used === bytesRead) {
        tail.atEof = true;
        break;
      }
    }
    const last = lines[lines.length - 1];
    const end = last ? last.offset + last.length : 0;
    // Read before the head check below, which vouches for it as for the lines.
    const window = end > FINGERPRINT_BYTES ? await readWindow(tail.fh, end) : undefined;
    // Checked after reading: if the head still holds what it held before, the
    // file was not truncated before our reads, so what we read continues it.
    if (
      (headBefore.length > 0 && !(await readHead(tail.fh, headBefore.length)).equals(headBefore)) ||
      (window !== undefined && window.length < WINDOW_BYTES)
    ) {
      tail.splitter.restore(before);
      tail.head = headBefore;
      markTruncated(tail, this.life);
      return true;
    }
    if (tail.splitter.position > tail.size) noteSize(tail, tail.splitter.position);
    if (lines.length) tail.pending = chunkOf(this.id, tail, lines, window ?? 'gone');
    return true;
  }

  private async deliver(tail: Tail): Promise<boolean> {
    const chunk = tail.pending;
    if (!chunk || this.life.paused || this.life.stopped || this.life.closed) return false;
    try {
      await this.opts.sink(chunk);
    } catch (err) {
      this.retryAt = Date.now() + this.retryDelayMs;
      const at = chunk.lines[0]?.offset ?? chunk.position.offset;
      this.life.report(
        'source_sink_failed',
        `${chunk.file.path} (${chunk.file.key}): sink refused ${chunk.lines.length} lines at offset ${at}; will retry`,
        err,
      );
      return false;
    }
    tail.pending = undefined;
    tail.committed = chunk.position.offset;
    if (isStrongPosition(chunk.position)) {
      tail.marks.push(chunk.position);
      // Thin the older half, so the marks still reach back after long reads.
      if (tail.marks.length > MAX_MARKS) tail.marks = tail.marks.filter((_, i) => i >= MAX_MARKS / 2 || i % 2 === 0);
    }
    return true;
  }

  private restartAtZero(tail: Tail): void {
    this.copies.end({ key: tail.key, gen: tail.gen, path: tail.path, marks: tail.marks, at: Date.now() });
    tail.gen++;
    tail.marks = [];
    tail.splitter.reset(0);
    tail.committed = 0;
    tail.head = Buffer.alloc(0);
    tail.truncated = false;
    tail.atEof = false;
  }

  private async releaseTail(tail: Tail): Promise<void> {
    this.discovery.forget(tail);
    this.copies.end({ key: tail.key, gen: tail.gen, path: tail.path, marks: tail.marks, at: Date.now() });
    this.life.notice(`${tail.path} (${tail.key}): rotated away or deleted, read to the end and released`);
    await tail.fh.close().catch((err: unknown) => this.life.report('source_read_failed', `closing ${tail.path} failed`, err));
  }

  // ---- drain ----------------------------------------------------------------

  private drainFinished(tail: Tail): boolean {
    const targets = this.drainState?.targets;
    if (!targets) return false;
    if (tail.hold) {
      // Nothing to read while its original is live; once that ended, the hold is decided first.
      const g = this.tails.get(tail.hold.of);
      return g !== undefined && g.gen === tail.hold.gen && !g.truncated;
    }
    if (tail.pending || tail.truncated || tail.release || tail.detached) return false;
    return tail.atEof || tail.committed >= (targets.get(tail.key) ?? 0);
  }

  private checkDrain(): void {
    const state = this.drainState;
    if (!state?.targets || this.life.stopped) return;
    for (const tail of this.tails.values()) if (!this.drainFinished(tail)) return;
    this.life.stop();
    state.resolve();
  }
}
