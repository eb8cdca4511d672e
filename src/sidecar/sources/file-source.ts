/**
 * File tail source: follows JSONL trace files and hands their complete lines
 * to a sink, in chunks, together with the position to commit alongside them.
 *
 * Invariant 2 (nothing lost, nothing duplicated) rests on three rules here:
 * - files are named by `dev:ino`, never by path, and read through an fd that
 *   stays open across renames and deletion, so a rotated file is finished
 *   from the very inode it was being read from;
 * - the in-memory offset moves only after the sink resolved, i.e. after the
 *   caller committed the same position with the records;
 * - a stored position is trusted only if the file still holds the bytes it
 *   was computed over (fingerprint of the head and of the 256 bytes before
 *   the position, length not shorter), so a recycled inode is read from 0
 *   even when the new file starts with the same header;
 * - a new file whose name extends the name of a file we read (app.jsonl.1
 *   next to app.jsonl) and that holds that file's committed positions is a
 *   copy of it (copytruncate): it is read from where the original's reading
 *   ended, not again from 0. See `copyStart`.
 *
 * All file state is touched by a single async loop, which is also the only
 * caller of the sink; watcher callbacks merely queue paths and wake it.
 */
import { statSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { SealtrailError } from '../../core/errors.js';
import { GlobSet } from './file-glob.js';
import {
  FINGERPRINT_BYTES,
  WINDOW_BYTES,
  fileKeyOf,
  fingerprint,
  holdsPosition,
  isStrongPosition,
  firstLineEnd,
  lastLineEnd,
  positionFingerprint,
  readHead,
  readWindow,
  relatedName,
} from './file-identity.js';
import { LineSplitter } from './file-lines.js';

export interface FileKey {
  /** `${dev}:${ino}` */
  key: string;
  path: string;
}

export interface StoredPosition {
  key: string;
  path: string;
  offset: number;
  /**
   * hex SHA-256 of the file's first min(offset, 256) bytes at the time of
   * commit; past 256, ":" and the hex SHA-256 of the 256 bytes before `offset`
   * (see positionFingerprint). Opaque to the caller.
   */
  fingerprint: string;
}

/** Backed by SQLite by the caller; synchronous. */
export interface PositionStore {
  get(source: string, key: string): StoredPosition | undefined;
}

export type SourceLineErrorCode = 'line_too_long' | 'invalid_utf8' | 'unterminated';

export interface SourceLine {
  offset: number;
  /** bytes including the newline */
  length: number;
  /** the line without its "\n" (and without a trailing "\r"), decoded UTF-8; absent when `error` is set */
  text?: string;
  error?: { code: SourceLineErrorCode; message: string };
}

export interface LineChunk {
  /** source id */
  source: string;
  file: FileKey;
  /**
   * consecutive, in file order, starting at the file's committed offset.
   * Empty when only the position moves: a copy of a file already read
   * (copytruncate) starts where the original's reading ended, and
   * `startAt: 'end'` skips what a file held at the first start.
   */
  lines: SourceLine[];
  /** what to commit together with these lines (offset = end of last line) */
  position: StoredPosition;
}

export interface FileSourceOptions {
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
  /** default 500 */
  maxChunkLines?: number;
  /** default 4 MiB */
  maxChunkBytes?: number;
  /** default 250: stat-poll safety net besides watcher events */
  pollIntervalMs?: number;
  onError?: (err: Error) => void;
  /** Non-error happenings worth a log line (position rejected, file truncated, file released). */
  onNotice?: (message: string) => void;
  /** How long a renamed-away or deleted file must stay unchanged at EOF before it is released. Default 5000. */
  rotateWaitMs?: number;
  /** Delay before a rejected chunk is offered again. Default 1000. */
  retryDelayMs?: number;
  /** Full directory walk interval (new-file safety net besides chokidar). Default 1000. */
  rescanIntervalMs?: number;
  /** Read block size. Default 64 KiB. */
  readBlockBytes?: number;
  /** Directory relative globs are resolved against. Default process.cwd(). */
  cwd?: string;
}

/** Errors reported through `onError` or thrown by the constructor. */
export class FileSourceError extends SealtrailError {}

interface Tail {
  key: string;
  path: string;
  fh: FileHandle;
  splitter: LineSplitter;
  /** the file's first min(read position, 256) bytes as we read them */
  head: Buffer;
  /** offset after the last line the sink accepted */
  committed: number;
  /** last size seen by fstat */
  size: number;
  /** built chunk awaiting (re)delivery; never rebuilt, so a retry offers the same lines */
  pending: LineChunk | undefined;
  /** the path no longer names this file (renamed away or deleted) */
  detached: boolean;
  /** last time the size changed, or the detach time */
  quietSince: number;
  /** bytes we already read changed: finish what we hold, then restart at 0 */
  truncated: boolean;
  /** close once `pending` is delivered */
  release: boolean;
  /** the last read attempt found no bytes beyond what was consumed */
  atEof: boolean;
  /** identity generation on this inode: a truncation starts a new one */
  gen: number;
  /** committed positions with strong fingerprints, oldest first: what a copy of this file is recognised by */
  marks: StoredPosition[];
  /** not read for now: it starts like a file we follow and may be a copy of it */
  hold: Hold | undefined;
}

/** A new file held back because it may be a copy of the file `of` (generation `gen`). */
interface Hold {
  of: string;
  gen: number;
  /** bytes of this file compared equal to the original's so far */
  verified: number;
  /** size at the last look, and since when it has not changed */
  size: number;
  quietSince: number;
}

/** A file identity whose reading ended (truncated, released, or changed while we were stopped). */
interface Ended {
  key: string;
  gen: number;
  path: string;
  marks: StoredPosition[];
  at: number;
}

interface DrainState {
  targets: Map<string, number> | undefined;
  done: Promise<void>;
  resolve: () => void;
}

const DEFAULT_MAX_CHUNK_LINES = 500;
const DEFAULT_MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const DEFAULT_POLL_MS = 250;
const WATCHER_READY_TIMEOUT_MS = 10_000;
/** committed positions kept per file for copy recognition */
const MAX_MARKS = 64;
const MAX_ENDED = 256;
const ENDED_KEEP_MS = 60_000;

function positiveInt(id: string, name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) {
    throw new FileSourceError('source_config_invalid', `file source ${id}: ${name} must be a positive integer`);
  }
  return v;
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export class FileSource {
  private readonly opts: FileSourceOptions;
  private readonly globs: GlobSet;
  private readonly maxChunkLines: number;
  private readonly maxChunkBytes: number;
  private readonly pollIntervalMs: number;
  private readonly rotateWaitMs: number;
  private readonly retryDelayMs: number;
  private readonly rescanIntervalMs: number;
  private readonly block: Buffer;

  private readonly tails = new Map<string, Tail>();
  private readonly pendingPaths = new Set<string>();
  /** recently ended identities, oldest first: a copy of one of them may still turn up */
  private ended: Ended[] = [];
  private watcher: FSWatcher | undefined;
  private loop: Promise<void> | undefined;
  private startPromise: Promise<void> | undefined;

  private started = false;
  private closed = false;
  private paused = false;
  /** set when a drain finished (or ran out of time): no more reads, no more sink calls */
  private stopped = false;
  private isReady = false;
  private drainState: DrainState | undefined;
  private retryAt = 0;
  private lastPoll = 0;
  private lastRescan = 0;
  private forcePoll = false;
  private rr = 0;

  private wakeFlag = false;
  private wakeResolve: (() => void) | undefined;
  private closedResolve!: () => void;
  private readonly closedSignal = new Promise<void>((r) => (this.closedResolve = r));

  constructor(opts: FileSourceOptions) {
    if (!opts.id) throw new FileSourceError('source_config_invalid', 'file source needs an id');
    if (!opts.include?.length) {
      throw new FileSourceError('source_config_invalid', `file source ${opts.id}: include must list at least one glob`);
    }
    if (opts.startAt !== 'beginning' && opts.startAt !== 'end') {
      throw new FileSourceError('source_config_invalid', `file source ${opts.id}: startAt must be 'beginning' or 'end'`);
    }
    this.opts = opts;
    positiveInt(opts.id, 'maxLineBytes', opts.maxLineBytes, 0);
    this.maxChunkLines = positiveInt(opts.id, 'maxChunkLines', opts.maxChunkLines, DEFAULT_MAX_CHUNK_LINES);
    this.maxChunkBytes = positiveInt(opts.id, 'maxChunkBytes', opts.maxChunkBytes, DEFAULT_MAX_CHUNK_BYTES);
    this.pollIntervalMs = positiveInt(opts.id, 'pollIntervalMs', opts.pollIntervalMs, DEFAULT_POLL_MS);
    this.rotateWaitMs = opts.rotateWaitMs ?? 5000;
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
    this.rescanIntervalMs = opts.rescanIntervalMs ?? 1000;
    this.block = Buffer.alloc(positiveInt(opts.id, 'readBlockBytes', opts.readBlockBytes, 64 * 1024));
    this.globs = new GlobSet(opts.include, opts.exclude ?? [], opts.cwd ?? process.cwd());
  }

  /** True once started and all initial files are open. */
  get ready(): boolean {
    return this.isReady;
  }

  async start(): Promise<void> {
    if (this.started) throw new FileSourceError('source_state', `file source ${this.opts.id}: already started`);
    this.started = true;
    this.startPromise = this.doStart();
    return this.startPromise;
  }

  /** Backpressure: while paused no sink call starts (one already running finishes). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  /**
   * Delivers every complete line available now, then stops reading for good.
   * `deadlineMs` is a duration in ms, or an absolute Date.now() timestamp if
   * larger than 1e12. Resolves when done or at the deadline, whichever is first.
   */
  async drain(deadlineMs: number): Promise<void> {
    if (!this.started || this.closed || this.stopped) return;
    await this.startPromise?.catch(() => undefined);
    const deadline = deadlineMs > 1e12 ? deadlineMs : Date.now() + deadlineMs;
    if (!this.drainState) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      this.drainState = { targets: undefined, done, resolve };
      this.forcePoll = true;
      this.wake();
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    await Promise.race([this.drainState.done, late, this.closedSignal]);
    clearTimeout(timer);
    this.stopped = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closedResolve();
    this.wake();
    this.drainState?.resolve();
    await this.startPromise?.catch(() => undefined);
    await this.watcher?.close().catch((err: unknown) => this.report('source_watch_failed', 'closing the watcher failed', err));
    await this.loop;
    for (const tail of this.tails.values()) await tail.fh.close().catch(() => undefined);
    this.tails.clear();
    this.isReady = false;
  }

  /** Per-file progress, for lag metrics. */
  files(): Array<{ key: string; path: string; size: number; offset: number }> {
    return [...this.tails.values()].map((t) => ({ key: t.key, path: t.path, size: t.size, offset: t.hold ? t.size : t.committed }));
  }

  // ---- startup and discovery ------------------------------------------------

  private async doStart(): Promise<void> {
    await this.startWatcher();
    if (this.closed) return;
    // The watcher runs before this walk, so a file created meanwhile is seen by one or both.
    const others: string[] = [];
    const known: string[] = [];
    const fresh: string[] = [];
    for (const p of await this.scan(others)) (this.hasStoredPosition(p) ? known : fresh).push(p);
    // Files we read before first: a copy of one (copytruncate while we were
    // stopped) is recognised by the original's position, which they reveal.
    for (const p of known) {
      if (this.closed) return;
      await this.checkPath(p, true);
    }
    for (const p of others) {
      if (this.closed) return;
      await this.recoverRotated(p);
    }
    for (const p of fresh) {
      if (this.closed) return;
      await this.checkPath(p, true);
    }
    const now = Date.now();
    this.lastPoll = now;
    this.lastRescan = now;
    if (this.closed) return;
    this.isReady = true;
    this.loop = this.run();
  }

  private async startWatcher(): Promise<void> {
    const bases = this.globs.bases();
    const depth = bases.some((b) => b.depth === undefined) ? undefined : Math.max(...bases.map((b) => b.depth ?? 0));
    try {
      const watcher = watch(
        bases.map((b) => b.dir),
        {
          ignoreInitial: true,
          persistent: true,
          ...(depth === undefined ? {} : { depth }),
          // Only directories (to descend) and matching files are worth an fs.watch handle.
          ignored: (p: string, st?: { isFile(): boolean }) => st?.isFile() === true && !this.globs.matches(p),
        },
      );
      this.watcher = watcher;
      const onPath = (p: string): void => {
        this.pendingPaths.add(p);
        this.wake();
      };
      watcher.on('add', onPath);
      watcher.on('change', onPath);
      // Which tail lost its name is found by the identity check, not from the event.
      watcher.on('unlink', () => {
        this.forcePoll = true;
        this.wake();
      });
      watcher.on('error', (err: unknown) => this.report('source_watch_failed', 'file watcher error', err));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => watcher.once('ready', () => r())),
        new Promise<void>((r) => (timer = setTimeout(r, WATCHER_READY_TIMEOUT_MS))),
        this.closedSignal,
      ]);
      clearTimeout(timer);
    } catch (err) {
      // The stat poll and directory rescan still find files, only later.
      this.report('source_watch_failed', `cannot watch ${bases.map((b) => b.dir).join(', ')}`, err);
    }
  }

  private hasStoredPosition(p: string): boolean {
    try {
      return this.opts.positions.get(this.opts.id, fileKeyOf(statSync(p))) !== undefined;
    } catch {
      return false;
    }
  }

  /** Matching files under the bases; non-matching ones go to `others` when given. */
  private async scan(others?: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const { dir, depth } of this.globs.bases()) await this.walk(dir, depth ?? Infinity, out, others);
    return out;
  }

  private async walk(dir: string, levels: number, out: string[], others?: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // a base that does not exist (yet) is not an error
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      // Symlinked directories are not followed: that is how cycles are avoided.
      if (e.isDirectory()) {
        if (levels > 0) await this.walk(full, levels - 1, out, others);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if (this.globs.matches(full)) out.push(full);
        else others?.push(full);
      }
    }
  }

  /** Opens `p` if it is a matching file we do not follow yet; re-associates a known inode with `p`. */
  private async checkPath(p: string, initial: boolean): Promise<void> {
    if (this.closed || !this.globs.matches(p)) return;
    let st;
    try {
      st = await stat(p);
    } catch {
      return;
    }
    if (!st.isFile()) return;
    const known = this.tails.get(fileKeyOf(st));
    if (known) {
      this.attach(known, p);
      return;
    }
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.report('source_open_failed', `cannot open ${p}`, err);
      return;
    }
    try {
      // The fd, not the earlier stat, is the truth: the path may have changed in between.
      const fst = await fh.stat();
      const key = fileKeyOf(fst);
      const again = this.tails.get(key);
      if (again || this.closed) {
        await fh.close();
        if (again) this.attach(again, p);
        return;
      }
      const tail = await this.newTail(key, p, fh, fst.size, initial);
      if (this.closed) {
        await fh.close();
        return;
      }
      for (const t of this.tails.values()) if (t.path === p) this.detach(t);
      this.tails.set(key, tail);
    } catch (err) {
      await fh.close().catch(() => undefined);
      if (initial) throw err;
      // e.g. the position store failed: try again on a later pass rather than guess an offset
      this.pendingPaths.add(p);
      this.report('source_open_failed', `cannot start following ${p}`, err);
    }
  }

  /**
   * At start, a file we were reading may have been renamed to a name the
   * globs do not match (agent.jsonl -> agent.jsonl.1) while we were down.
   * Its inode and fingerprint still identify it: finish it, then let it go.
   */
  private async recoverRotated(p: string): Promise<void> {
    let fh: FileHandle | undefined;
    try {
      const st = await stat(p);
      if (!st.isFile() || this.tails.has(fileKeyOf(st))) return;
      const stored = this.opts.positions.get(this.opts.id, fileKeyOf(st));
      if (!stored || stored.offset >= st.size) return;
      fh = await open(p, 'r');
      const fst = await fh.stat();
      const key = fileKeyOf(fst);
      // A fingerprint mismatch means the inode now holds some other file: not ours.
      if (key !== stored.key || this.tails.has(key) || !(await holdsPosition(fh, stored))) return;
      const tail = await this.newTail(key, p, fh, fst.size, true);
      if (tail.committed !== stored.offset || this.closed) return;
      fh = undefined;
      this.tails.set(key, tail);
      this.detach(tail);
      this.notice(`${p} (${key}): renamed away while stopped, reading it to the end from ${stored.offset}`);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.report('source_open_failed', `cannot check ${p} for a rotated file`, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  private async newTail(key: string, p: string, fh: FileHandle, size: number, initial: boolean): Promise<Tail> {
    const stored = this.opts.positions.get(this.opts.id, key);
    let offset = 0;
    let decided = false;
    if (stored) {
      if (stored.offset > size) {
        this.notice(`${p}: shorter (${size}) than its stored position ${stored.offset}, reading from 0`);
        this.endIdentity({ key, gen: -1, path: stored.path, marks: isStrongPosition(stored) ? [stored] : [], at: Date.now() });
      } else if (await holdsPosition(fh, stored)) {
        offset = stored.offset;
        decided = true;
      } else {
        this.notice(`${p}: content differs from the stored position's fingerprint (inode reused or file rewritten), reading from 0`);
        this.endIdentity({ key, gen: -1, path: stored.path, marks: isStrongPosition(stored) ? [stored] : [], at: Date.now() });
      }
    } else if (initial && this.opts.startAt === 'end') {
      // The last line boundary, so a line being written right now is not cut in half.
      offset = await lastLineEnd(fh, size);
      decided = true;
    }
    const splitter = new LineSplitter(this.opts.maxLineBytes);
    splitter.reset(offset);
    const now = Date.now();
    const tail: Tail = {
      key,
      path: p,
      fh,
      splitter,
      head: await readHead(fh, Math.min(offset, FINGERPRINT_BYTES)),
      committed: offset,
      size,
      pending: undefined,
      detached: false,
      quietSince: now,
      truncated: false,
      release: false,
      atEof: false,
      gen: 0,
      marks: decided && stored && offset === stored.offset && isStrongPosition(stored) ? [stored] : [],
      hold: undefined,
    };
    if (decided && !stored && offset > 0) {
      // start_at end: commit the skip, or a restart before the file grows would read it all.
      tail.pending = await this.positionOnly(tail, offset);
    } else if (!decided) {
      const start = await this.copyStart(p, fh, size);
      if (start && 'hold' in start) {
        tail.hold = start.hold;
        this.notice(`${p} (${key}): starts like ${start.like}; not read while it may be a copy of it`);
      } else if (start) {
        await this.startCopyAt(tail, start.offset, start.of);
      }
    }
    return tail;
  }

  // ---- copies (copytruncate) ------------------------------------------------

  /**
   * Where a file with no usable position of its own starts, if it is a copy
   * of a file we read: logrotate's copytruncate copies app.jsonl to
   * app.jsonl.1 and truncates app.jsonl, and with both names in the globs the
   * copy must not be read again. The copy is a new inode, so it is recognised
   * by content: it must hold one of the original's committed positions (head
   * and the 256 bytes before the offset hash the same), and its name must
   * extend the original's (app.jsonl.1, app.jsonl-20260101, app-1.jsonl).
   * It is then read from that position on: what the original's reader had not
   * reached when it was truncated is read from the copy, once.
   *
   * A copy usually turns up before the truncation is noticed; such a file
   * (its first bytes equal a followed file's) is held unread until the
   * original's identity ends (truncation, deletion: then as above), or until
   * it stops being a byte-for-byte prefix of the original (then it is read
   * from the original's last committed position it still holds, or from 0 if
   * none). Files under 2 x 256 bytes, and positions within the first line,
   * never make a copy: an identical short file or header line is read.
   * Not covered: a copy older than every position the original's reader
   * committed since the last restart is read from 0 (duplicates, never loss).
   */
  private async copyStart(
    p: string,
    fh: FileHandle,
    size: number,
  ): Promise<{ offset: number; of: Ended } | { hold: Hold; like: string } | undefined> {
    if (size === 0) return undefined;
    this.pruneEnded();
    for (let i = this.ended.length - 1; i >= 0; i--) {
      const e = this.ended[i]!;
      if (!relatedName(p, e.path)) continue;
      const at = await this.copyOffset(fh, size, e.marks);
      if (at !== undefined) return { offset: at, of: e };
    }
    const head = await readHead(fh, Math.min(size, FINGERPRINT_BYTES));
    for (const g of this.tails.values()) {
      if (g.hold || g.head.length < head.length || !relatedName(p, g.path)) continue;
      if (!g.head.subarray(0, head.length).equals(head)) continue;
      const now = Date.now();
      return { hold: { of: g.key, gen: g.gen, verified: 0, size, quietSince: now }, like: `${g.path} (${g.key})` };
    }
    return undefined;
  }

  /**
   * The offset a copy of a file with these committed positions resumes at,
   * or undefined if the file is not such a copy.
   */
  private async copyOffset(fh: FileHandle, size: number, marks: readonly StoredPosition[]): Promise<number | undefined> {
    if (!marks.length || size <= FINGERPRINT_BYTES + WINDOW_BYTES) return undefined;
    const headFp = fingerprint(await readHead(fh, FINGERPRINT_BYTES), FINGERPRINT_BYTES);
    // A position must cover more than the first line: one long header line
    // that two files share must never make one a copy of the other.
    const firstLine = await firstLineEnd(fh, size);
    // The copy holds everything the original's reader committed up to the
    // latest position it holds; what follows is read from the copy. Nothing is
    // presumed about bytes past that position: when the reader had gone past
    // the copy's end, the lines between that position and the copy's end are
    // read again (at most one chunk, and only if lines were written between
    // the copy and the truncation), which beats skipping lines the copy may
    // have gained since.
    for (let i = marks.length - 1; i >= 0; i--) {
      const m = marks[i]!;
      if (m.offset > size || m.offset <= firstLine || !isStrongPosition(m)) continue;
      if (await holdsPosition(fh, m, headFp)) return m.offset;
    }
    return undefined;
  }

  /** Starts a copy at `offset`, committing that position on its own (an empty chunk). */
  private async startCopyAt(tail: Tail, offset: number, of: Ended | undefined): Promise<void> {
    tail.hold = undefined;
    tail.splitter.reset(offset);
    tail.committed = offset;
    tail.head = await readHead(tail.fh, Math.min(offset, FINGERPRINT_BYTES));
    tail.atEof = false;
    if (offset === 0) return;
    tail.pending = await this.positionOnly(tail, offset);
    const what = of ? `${of.path} (${of.key})` : 'the file it started like';
    this.notice(`${tail.path} (${tail.key}): a copy of ${what}, which was read up to ${offset}; reading the copy from there`);
  }

  /** A chunk that commits `offset` (a line start the tail's head is read up to) and no lines. */
  private async positionOnly(tail: Tail, offset: number): Promise<LineChunk> {
    const window = offset > FINGERPRINT_BYTES ? await readWindow(tail.fh, offset) : 'gone';
    return {
      source: this.opts.id,
      file: { key: tail.key, path: tail.path },
      lines: [],
      position: { key: tail.key, path: tail.path, offset, fingerprint: positionFingerprint(tail.head, offset, window) },
    };
  }

  /** One turn of a held file: decides whether it is a copy once that can be told. */
  private async resolveHold(tail: Tail): Promise<boolean> {
    const hold = tail.hold!;
    const st = await tail.fh.stat();
    this.noteSize(tail, st.size);
    const now = Date.now();
    if (st.size !== hold.size) {
      hold.size = st.size;
      hold.quietSince = now;
    }
    // shrunk: what was compared is gone, compare again from the start
    if (st.size < hold.verified) hold.verified = 0;
    const g = this.tails.get(hold.of);
    if (!g || g.gen !== hold.gen) {
      // The original's identity ended: resume where its reading ended, if this is its copy.
      const e = this.ended.find((x) => x.key === hold.of && x.gen === hold.gen);
      const at = e ? await this.copyOffset(tail.fh, st.size, e.marks) : undefined;
      if (at === undefined) this.notice(`${tail.path} (${tail.key}): not a copy of the file it started like, reading from 0`);
      await this.startCopyAt(tail, at ?? 0, e);
      return true;
    }
    // About to end (its truncation was seen): decide once it has.
    if (g.truncated) return false;
    if (hold.verified < st.size) {
      const same = await this.samePrefix(tail, g, hold.verified, st.size);
      if (same === 'wait') return false;
      if (same !== true) {
        // It differs from `same` on: a copy that gained lines of its own (read
        // from the original's last committed position it holds), or no copy.
        const at = await this.copyOffset(tail.fh, same, g.marks);
        if (at === undefined) this.notice(`${tail.path} (${tail.key}): differs from ${g.path} (${g.key}), not a copy: reading from 0`);
        await this.startCopyAt(tail, at ?? 0, { key: g.key, gen: g.gen, path: g.path, marks: g.marks, at: now });
        return true;
      }
      hold.verified = st.size;
    }
    if (now - hold.quietSince < this.rotateWaitMs) return false;
    if (hold.verified <= FINGERPRINT_BYTES + WINDOW_BYTES) {
      // Too short to tell a copy from a file that merely starts alike: read it.
      await this.startCopyAt(tail, 0, undefined);
      return true;
    }
    if (tail.detached) {
      // A copy of a file we are reading, gone again: nothing of its own to read.
      await this.releaseTail(tail);
      return true;
    }
    return false;
  }

  /**
   * Whether bytes [from, to) of `copy` equal those of `orig`: true, or the
   * offset of the first byte that differs (or that `orig` lacks); 'wait' when
   * `orig` looks rewritten (its truncation is about to be handled).
   */
  private async samePrefix(copy: Tail, orig: Tail, from: number, to: number): Promise<true | number | 'wait'> {
    const differs = async (at: number): Promise<number | 'wait'> => {
      const st = await orig.fh.stat();
      const intact = st.size >= orig.splitter.position && (await readHead(orig.fh, orig.head.length)).equals(orig.head);
      return intact ? at : 'wait';
    };
    const end = Math.min(to, (await orig.fh.stat()).size);
    const a = Buffer.alloc(Math.max(1, Math.min(64 * 1024, end - from)));
    const b = Buffer.alloc(a.length);
    for (let at = from; at < end; ) {
      const n = Math.min(a.length, end - at);
      const ra = await copy.fh.read(a, 0, n, at);
      const rb = await orig.fh.read(b, 0, n, at);
      const got = Math.min(ra.bytesRead, rb.bytesRead);
      let i = 0;
      while (i < got && a[i] === b[i]) i++;
      if (i < n) return differs(at + i);
      at += n;
    }
    return end < to ? differs(end) : true;
  }

  private endIdentity(e: Ended): void {
    this.pruneEnded();
    this.ended.push(e);
    if (this.ended.length > MAX_ENDED) this.ended.splice(0, this.ended.length - MAX_ENDED);
  }

  private pruneEnded(): void {
    const keep = Date.now() - Math.max(ENDED_KEEP_MS, 10 * this.rotateWaitMs);
    let drop = 0;
    while (drop < this.ended.length && this.ended[drop]!.at < keep) drop++;
    if (drop) this.ended.splice(0, drop);
  }

  private attach(tail: Tail, p: string): void {
    // About to be released: it will be found again by a rescan and resume from its stored position.
    if (tail.release) return;
    if (tail.path !== p) {
      for (const t of this.tails.values()) if (t !== tail && t.path === p) this.detach(t);
      tail.path = p;
    }
    tail.detached = false;
  }

  private detach(tail: Tail): void {
    if (tail.detached) return;
    tail.detached = true;
    tail.quietSince = Date.now();
  }

  // ---- the loop -------------------------------------------------------------

  private wake(): void {
    this.wakeFlag = true;
    this.wakeResolve?.();
  }

  private async waitWake(ms: number): Promise<void> {
    if (this.wakeFlag || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      this.wakeResolve = r;
      timer = setTimeout(r, ms);
    });
    clearTimeout(timer);
    this.wakeResolve = undefined;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.wakeFlag = false;
      if (this.stopped) {
        await this.waitWake(this.pollIntervalMs);
        continue;
      }
      try {
        await this.housekeeping();
      } catch (err) {
        this.report('source_discovery_failed', `file source ${this.opts.id}: discovery pass failed`, err);
      }
      if (this.closed) break;
      this.checkDrain();
      if (this.stopped || this.paused) {
        await this.waitWake(this.pollIntervalMs);
        continue;
      }
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        await this.waitWake(Math.min(wait, this.pollIntervalMs));
        continue;
      }
      let progressed = false;
      const list = [...this.tails.values()];
      // One turn per file per round, each bounded by the chunk limits: round-robin fairness.
      for (let i = 0; i < list.length; i++) {
        if (this.closed || this.paused || this.stopped || Date.now() < this.retryAt) break;
        const tail = list[(this.rr + i) % list.length]!;
        if (this.tails.get(tail.key) !== tail || this.drainFinished(tail)) continue;
        try {
          if (await this.turn(tail)) progressed = true;
        } catch (err) {
          if (this.closed) break;
          this.report('source_read_failed', `${tail.path} (${tail.key}): read failed at offset ${tail.splitter.position}`, err);
        }
      }
      this.rr = list.length ? (this.rr + 1) % list.length : 0;
      this.checkDrain();
      if (!progressed) await this.waitWake(this.pollIntervalMs);
    }
  }

  private async checkPendingPaths(): Promise<void> {
    if (!this.pendingPaths.size) return;
    const paths = [...this.pendingPaths];
    this.pendingPaths.clear();
    for (const p of paths) await this.checkPath(p, false);
  }

  private async housekeeping(): Promise<void> {
    await this.checkPendingPaths();
    const now = Date.now();
    const force = this.forcePoll;
    this.forcePoll = false;
    if (force || now - this.lastPoll >= this.pollIntervalMs) {
      this.lastPoll = now;
      await this.checkTails();
    }
    if (force || now - this.lastRescan >= this.rescanIntervalMs) {
      this.lastRescan = now;
      for (const p of await this.scan()) await this.checkPath(p, false);
      // Paths freed by a rotation seen in checkTails are in pendingPaths now.
      await this.checkPendingPaths();
    }
    if (this.drainState && !this.drainState.targets) {
      this.drainState.targets = new Map([...this.tails.values()].map((t) => [t.key, t.size]));
    }
  }

  /** Notices renames, deletions and truncations of the files we follow. */
  private async checkTails(): Promise<void> {
    for (const tail of [...this.tails.values()]) {
      if (this.closed) return;
      try {
        if (!tail.detached) {
          try {
            const st = await stat(tail.path);
            if (fileKeyOf(st) !== tail.key) {
              this.detach(tail);
              this.pendingPaths.add(tail.path);
            }
          } catch (err) {
            if (errCode(err) !== 'ENOENT') throw err;
            this.detach(tail);
          }
        }
        const fst = await tail.fh.stat();
        this.noteSize(tail, fst.size);
        // A rewrite to a longer size is caught by the head check in fill().
        if (!tail.truncated && fst.size < tail.splitter.position) this.markTruncated(tail);
      } catch (err) {
        this.report('source_read_failed', `${tail.path} (${tail.key}): stat failed`, err);
      }
    }
  }

  private markTruncated(tail: Tail): void {
    tail.truncated = true;
    this.notice(`${tail.path}: truncated or rewritten, reading it again from 0`);
  }

  private noteSize(tail: Tail, size: number): void {
    if (size !== tail.size) {
      tail.size = size;
      tail.quietSince = Date.now();
    }
    // A stale "at EOF" would let a drain skip bytes written since the last read.
    if (size > tail.splitter.position) tail.atEof = false;
  }

  /** One bounded step for one file. Returns whether anything moved. */
  private async turn(tail: Tail): Promise<boolean> {
    if (tail.hold) return this.resolveHold(tail);
    if (!tail.pending) {
      if (tail.truncated) {
        const rest = tail.splitter.takeUnterminated();
        if (rest) {
          // its bytes are gone: a position no later content can match
          tail.pending = this.chunkOf(tail, [rest], 'gone');
        } else {
          this.restartAtZero(tail);
          return true;
        }
      } else if (tail.release) {
        await this.releaseTail(tail);
        return true;
      } else {
        const moved = await this.fill(tail);
        if (!tail.pending) {
          if (!(tail.detached && tail.atEof && this.mayRelease(tail))) return moved;
          const rest = tail.splitter.takeUnterminated();
          tail.release = true;
          if (!rest) {
            await this.releaseTail(tail);
            return true;
          }
          const end = rest.offset + rest.length;
          tail.pending = this.chunkOf(tail, [rest], end > FINGERPRINT_BYTES ? await readWindow(tail.fh, end) : 'gone');
        }
      }
    }
    return this.deliver(tail);
  }

  private mayRelease(tail: Tail): boolean {
    // On drain there is no later: whatever the writer still adds to a file we
    // can no longer find by name would be lost either way.
    return this.drainState !== undefined || Date.now() - tail.quietSince >= this.rotateWaitMs;
  }

  /** Reads from the splitter's position up to the chunk limits; leaves a chunk in `tail.pending`. */
  private async fill(tail: Tail): Promise<boolean> {
    const st = await tail.fh.stat();
    this.noteSize(tail, st.size);
    const from = tail.splitter.position;
    if (st.size < from) {
      this.markTruncated(tail);
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
      this.extendHead(tail, data, at);
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
      this.markTruncated(tail);
      return true;
    }
    if (tail.splitter.position > tail.size) this.noteSize(tail, tail.splitter.position);
    if (lines.length) tail.pending = this.chunkOf(tail, lines, window ?? 'gone');
    return true;
  }

  private extendHead(tail: Tail, data: Buffer, at: number): void {
    const have = tail.head.length;
    if (have >= FINGERPRINT_BYTES || have < at || have >= at + data.length) return;
    const add = data.subarray(have - at, Math.min(data.length, FINGERPRINT_BYTES - at));
    tail.head = Buffer.concat([tail.head, add]);
  }

  /** `window`: the WINDOW_BYTES before the end of the last line (unused when that end is within the head). */
  private chunkOf(tail: Tail, lines: SourceLine[], window: Buffer | 'gone'): LineChunk {
    const last = lines[lines.length - 1]!;
    const end = last.offset + last.length;
    return {
      source: this.opts.id,
      file: { key: tail.key, path: tail.path },
      lines,
      position: { key: tail.key, path: tail.path, offset: end, fingerprint: positionFingerprint(tail.head, end, window) },
    };
  }

  private async deliver(tail: Tail): Promise<boolean> {
    const chunk = tail.pending;
    if (!chunk || this.paused || this.stopped || this.closed) return false;
    try {
      await this.opts.sink(chunk);
    } catch (err) {
      this.retryAt = Date.now() + this.retryDelayMs;
      const at = chunk.lines[0]?.offset ?? chunk.position.offset;
      this.report(
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
    this.endIdentity({ key: tail.key, gen: tail.gen, path: tail.path, marks: tail.marks, at: Date.now() });
    tail.gen++;
    tail.marks = [];
    tail.splitter.reset(0);
    tail.committed = 0;
    tail.head = Buffer.alloc(0);
    tail.truncated = false;
    tail.atEof = false;
  }

  private async releaseTail(tail: Tail): Promise<void> {
    this.tails.delete(tail.key);
    this.endIdentity({ key: tail.key, gen: tail.gen, path: tail.path, marks: tail.marks, at: Date.now() });
    this.notice(`${tail.path} (${tail.key}): rotated away or deleted, read to the end and released`);
    await tail.fh.close().catch((err: unknown) => this.report('source_read_failed', `closing ${tail.path} failed`, err));
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
    if (!state?.targets || this.stopped) return;
    for (const tail of this.tails.values()) if (!this.drainFinished(tail)) return;
    this.stopped = true;
    state.resolve();
  }

  // ---- reporting ------------------------------------------------------------

  private report(code: string, message: string, cause?: unknown): void {
    const err = new FileSourceError(code, `file source ${this.opts.id}: ${message}`, { cause });
    try {
      this.opts.onError?.(err);
    } catch {
      // a throwing logger must not stop the tail
    }
  }

  private notice(message: string): void {
    try {
      this.opts.onNotice?.(`file source ${this.opts.id}: ${message}`);
    } catch {
      // a throwing logger must not stop the tail
    }
  }
}
