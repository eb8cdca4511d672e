/**
 * Discovery and watching for the file source: which files match its globs,
 * which file a path names now, and where a newly found file is read from.
 *
 * Contracts (the file source's invariants that live here):
 * - a file is followed under its `dev:ino`, never its path; a path that
 *   names another inode now detaches the old tail (it is finished from its
 *   open fd) and the new file is found on the next pass;
 * - a stored position is used only if the file still holds the bytes it was
 *   computed over (holdsPosition); otherwise the file is read from 0, or, if
 *   it is a copy of a file we read, from where that reading ended
 *   (file-copies.ts);
 * - watch events (file-watch.ts) only queue paths, ask for a check of the
 *   followed files and wake the read loop; no event re-reads a directory. A
 *   stat poll of the followed files (every poll interval) and a full rescan
 *   of the directories (every rescan interval) are the safety net, so a
 *   missed event delays a file, never loses it.
 *
 * Only the file source's loop calls in here (start, pass), so the tails it
 * shares with the loop need no locking.
 */
import { statSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileCopies } from './file-copies.js';
import { GlobSet } from './file-glob.js';
import { FINGERPRINT_BYTES, fileKeyOf, holdsPosition, isStrongPosition, lastLineEnd, readHead } from './file-identity.js';
import { LineSplitter } from './file-lines.js';
import { detach, markTruncated, noteSize, positionOnly, type Tail, type Tails } from './file-tail.js';
import { FileWatches } from './file-watch.js';
import { errCode, type SourceLifecycle } from './source.js';
import type { PositionStore } from './types.js';

export interface FileDiscoveryOptions {
  id: string;
  include: string[];
  exclude: string[];
  /** directory relative globs are resolved against */
  cwd: string;
  maxLineBytes: number;
  startAt: 'beginning' | 'end';
  positions: PositionStore;
  pollIntervalMs: number;
  rescanIntervalMs: number;
  life: SourceLifecycle;
  /** the files followed, shared with the read loop */
  tails: Tails;
  copies: FileCopies;
  /** wakes the read loop: a path was queued, a followed file moved */
  wake: () => void;
  /** a followed file was written to: the read loop groups these (file-source.ts) */
  appended: () => void;
}

export class FileDiscovery {
  private readonly opts: FileDiscoveryOptions;
  private readonly globs: GlobSet;
  private readonly life: SourceLifecycle;
  private readonly tails: Tails;
  private readonly pendingPaths = new Set<string>();
  private readonly watches: FileWatches;
  private lastPoll = 0;
  private lastRescan = 0;
  /** check the followed files on the next pass (a name changed, a followed file moved) */
  private checkSoon = false;
  /** when the next full rescan is due; a name event we cannot place brings it forward */
  private rescanAt = 0;

  constructor(opts: FileDiscoveryOptions) {
    this.opts = opts;
    this.life = opts.life;
    this.tails = opts.tails;
    this.globs = new GlobSet(opts.include, opts.exclude, opts.cwd);
    this.watches = new FileWatches({
      onName: (p) => this.onName(p),
      onAppend: () => opts.appended(),
      onMoved: () => {
        this.checkSoon = true;
        opts.wake();
      },
      onError: (message, err) => this.life.report('source_watch_failed', message, err),
    }, (p) => this.globs.matches(p));
  }

  /** Watches the bases, then opens every matching file, in an order that lets copies be recognised. */
  async start(): Promise<void> {
    // The bases are watched before this walk, so a file created meanwhile is seen by one or both.
    this.watches.syncDirs(await dirIds(this.globs.bases().map((b) => b.dir)));
    if (this.life.closed) return;
    const others: string[] = [];
    const known: string[] = [];
    const fresh: string[] = [];
    const dirs: string[] = [];
    for (const p of await this.scan(others, dirs)) (this.hasStoredPosition(p) ? known : fresh).push(p);
    this.watches.syncDirs(await dirIds(dirs));
    // Files we read before first: a copy of one (copytruncate while we were
    // stopped) is recognised by the original's position, which they reveal.
    for (const p of known) {
      if (this.life.closed) return;
      await this.checkPath(p, true);
    }
    for (const p of others) {
      if (this.life.closed) return;
      await this.recoverRotated(p);
    }
    for (const p of fresh) {
      if (this.life.closed) return;
      await this.checkPath(p, true);
    }
    const now = Date.now();
    this.lastPoll = now;
    this.lastRescan = now;
    this.rescanAt = now + this.opts.rescanIntervalMs;
  }

  /** The next pass checks the followed files and rescans at once (a drain, an unknown name event). */
  requestPoll(): void {
    this.checkSoon = true;
    this.rescanAt = 0;
  }

  /** Queued paths; renames, deletions and truncations every poll interval; a full rescan every rescan interval. */
  async pass(): Promise<void> {
    await this.checkPendingPaths();
    const now = Date.now();
    if (this.checkSoon || now - this.lastPoll >= this.opts.pollIntervalMs) {
      this.checkSoon = false;
      this.lastPoll = now;
      await this.checkTails();
    }
    if (now >= this.rescanAt) {
      this.lastRescan = now;
      this.rescanAt = now + this.opts.rescanIntervalMs;
      const dirs: string[] = [];
      for (const p of await this.scan(undefined, dirs)) await this.checkPath(p, false);
      this.watches.syncDirs(await dirIds(dirs));
    }
    // Paths freed by a rotation seen in checkTails are in pendingPaths now.
    await this.checkPendingPaths();
  }

  /** Starts following `tail` (its change notifications too). */
  follow(tail: Tail): void {
    this.tails.set(tail.key, tail);
    this.watches.watchFile(tail.key, tail.path);
  }

  /** Stops following `tail`: the read loop released it. */
  forget(tail: Tail): void {
    if (this.tails.get(tail.key) === tail) this.tails.delete(tail.key);
    this.watches.unwatchFile(tail.key);
  }

  async close(): Promise<void> {
    this.watches.close();
  }

  /**
   * A name was created, removed or renamed in a watched directory. A
   * matching name is looked at on the next pass, and the followed files are
   * checked for one that lost it; any other (a new directory, a rotated
   * name the globs do not match) brings the next rescan forward, at most
   * one poll interval after the last, so a busy directory is not re-read
   * for every name it gains.
   */
  private onName(p: string | undefined): void {
    this.checkSoon = true;
    if (p === undefined) {
      this.rescanAt = 0;
    } else if (this.globs.matches(p)) {
      this.pendingPaths.add(p);
    } else {
      this.rescanAt = Math.min(this.rescanAt, this.lastRescan + this.opts.pollIntervalMs);
      return;
    }
    this.opts.wake();
  }

  private hasStoredPosition(p: string): boolean {
    try {
      return this.opts.positions.get(this.opts.id, fileKeyOf(statSync(p))) !== undefined;
    } catch {
      return false;
    }
  }

  /** Matching files under the bases; non-matching ones go to `others`, the directories read to `dirs`, when given. */
  private async scan(others?: string[], dirs?: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const { dir, depth } of this.globs.bases()) await this.walk(dir, depth ?? Infinity, out, others, dirs);
    return out;
  }

  private async walk(dir: string, levels: number, out: string[], others?: string[], dirs?: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // a base that does not exist (yet) is not an error
    }
    dirs?.push(dir);
    for (const e of entries) {
      const full = path.join(dir, e.name);
      // Symlinked directories are not followed: that is how cycles are avoided.
      if (e.isDirectory()) {
        if (levels > 0) await this.walk(full, levels - 1, out, others, dirs);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if (this.globs.matches(full)) out.push(full);
        else others?.push(full);
      }
    }
  }

  private async checkPendingPaths(): Promise<void> {
    if (!this.pendingPaths.size) return;
    const paths = [...this.pendingPaths];
    this.pendingPaths.clear();
    for (const p of paths) await this.checkPath(p, false);
  }

  /** Notices renames, deletions and truncations of the files we follow. */
  private async checkTails(): Promise<void> {
    for (const tail of [...this.tails.values()]) {
      if (this.life.closed) return;
      try {
        if (!tail.detached) {
          try {
            const st = await stat(tail.path);
            if (fileKeyOf(st) !== tail.key) {
              detach(tail);
              this.pendingPaths.add(tail.path);
            }
          } catch (err) {
            if (errCode(err) !== 'ENOENT') throw err;
            detach(tail);
          }
        }
        const fst = await tail.fh.stat();
        noteSize(tail, fst.size);
        // A rewrite to a longer size is caught by the head check in fill().
        if (!tail.truncated && fst.size < tail.splitter.position) markTruncated(tail, this.life);
      } catch (err) {
        this.life.report('source_read_failed', `${tail.path} (${tail.key}): stat failed`, err);
      }
    }
  }

  /** Opens `p` if it is a matching file we do not follow yet; re-associates a known inode with `p`. */
  private async checkPath(p: string, initial: boolean): Promise<void> {
    if (this.life.closed || !this.globs.matches(p)) return;
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
      if (errCode(err) !== 'ENOENT') this.life.report('source_open_failed', `cannot open ${p}`, err);
      return;
    }
    try {
      // The fd, not the earlier stat, is the truth: the path may have changed in between.
      const fst = await fh.stat();
      const key = fileKeyOf(fst);
      const again = this.tails.get(key);
      if (again || this.life.closed) {
        await fh.close();
        if (again) this.attach(again, p);
        return;
      }
      const tail = await this.newTail(key, p, fh, fst.size, initial);
      if (this.life.closed) {
        await fh.close();
        return;
      }
      for (const t of this.tails.values()) if (t.path === p) detach(t);
      this.follow(tail);
    } catch (err) {
      await fh.close().catch(() => undefined);
      if (initial) throw err;
      // e.g. the position store failed: try again on a later pass rather than guess an offset
      this.pendingPaths.add(p);
      this.life.report('source_open_failed', `cannot start following ${p}`, err);
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
      if (tail.committed !== stored.offset || this.life.closed) return;
      fh = undefined;
      this.follow(tail);
      detach(tail);
      this.life.notice(`${p} (${key}): renamed away while stopped, reading it to the end from ${stored.offset}`);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.life.report('source_open_failed', `cannot check ${p} for a rotated file`, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** A tail for a file found now: at its stored position, at a copy's start, at the end (start_at end), or at 0. */
  private async newTail(key: string, p: string, fh: FileHandle, size: number, initial: boolean): Promise<Tail> {
    const { id, copies } = this.opts;
    const stored = this.opts.positions.get(id, key);
    let offset = 0;
    let decided = false;
    if (stored) {
      if (stored.offset > size) {
        this.life.notice(`${p}: shorter (${size}) than its stored position ${stored.offset}, reading from 0`);
        copies.end({ key, gen: -1, path: stored.path, marks: isStrongPosition(stored) ? [stored] : [], at: Date.now() });
      } else if (await holdsPosition(fh, stored)) {
        offset = stored.offset;
        decided = true;
      } else {
        this.life.notice(`${p}: content differs from the stored position's fingerprint (inode reused or file rewritten), reading from 0`);
        copies.end({ key, gen: -1, path: stored.path, marks: isStrongPosition(stored) ? [stored] : [], at: Date.now() });
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
      tail.pending = await positionOnly(id, tail, offset);
    } else if (!decided) {
      const start = await copies.startOf(p, fh, size, this.tails);
      if (start && 'hold' in start) {
        tail.hold = start.hold;
        this.life.notice(`${p} (${key}): starts like ${start.like}; not read while it may be a copy of it`);
      } else if (start) {
        await copies.startAt(tail, start.offset, start.of);
      }
    }
    return tail;
  }

  private attach(tail: Tail, p: string): void {
    // About to be released: it will be found again by a rescan and resume from its stored position.
    if (tail.release) return;
    if (tail.path !== p) {
      for (const t of this.tails.values()) if (t !== tail && t.path === p) detach(t);
      tail.path = p;
    }
    tail.detached = false;
  }
}

/** `dev:ino` of each directory that exists now (what a directory watch is tied to). */
async function dirIds(dirs: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const d of dirs) {
    try {
      const st = await stat(d);
      if (st.isDirectory()) out.set(d, fileKeyOf(st));
    } catch {
      // gone meanwhile: the next rescan says whether it came back
    }
  }
  return out;
}
