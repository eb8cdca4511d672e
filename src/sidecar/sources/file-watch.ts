/**
 * Change notification for the file source, without re-reading a directory
 * on every write.
 *
 * Two kinds of kernel watches (fs.watch: inotify on Linux):
 * - one per directory the globs can match files in (the bases and, down to
 *   the globs' depth, their subdirectories). Its name events (a file
 *   created, removed or renamed) find new files and notice rotations; its
 *   write events for names the globs match wake the reader. Neither reads
 *   the directory or stats a path: one event, one callback.
 * - one per followed file reached through a symlink, on the file itself
 *   (the directory holding the link hears nothing of writes to its target).
 *
 * A file renamed to a name the globs do not match, or out of the watched
 * directories, is read on the stat poll until it is released.
 *
 * Contract: notifications only hint. Nothing here decides what is read or
 * committed; a watch that cannot be set (no inotify, the limit reached, a
 * filesystem without notifications) or an event the kernel dropped only
 * delays a file until the file source's stat poll and directory rescan
 * (file-discovery.ts) see it, never loses it.
 */
import { lstatSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { errCode } from './source.js';

export interface FileWatchHooks {
  /** a name changed in a watched directory (full path), or, undefined, in one the kernel did not name */
  onName(path: string | undefined): void;
  /** a file the globs match, or a followed file reached through a symlink, was written to */
  onAppend(): void;
  /** a followed file (by key) was renamed or deleted */
  onMoved(key: string): void;
  /** a watch could not be set; reported once per path */
  onError(message: string, err: unknown): void;
}

/** Names per directory whose glob verdict is remembered (per-write events repeat the same few). */
const MATCH_CACHE_MAX = 1024;

interface DirWatch {
  watcher: FSWatcher;
  /** `dev:ino` of the directory when watched: a directory re-created under the same name needs a new watch */
  id: string;
}

export class FileWatches {
  private readonly hooks: FileWatchHooks;
  private readonly matches: (path: string) => boolean;
  private readonly dirs = new Map<string, DirWatch>();
  private readonly files = new Map<string, FSWatcher>();
  /** paths a watch failed on, so a limit reached is one log line, not one per rescan */
  private readonly failed = new Set<string>();
  private closed = false;

  /** `matches`: whether the globs select a path */
  constructor(hooks: FileWatchHooks, matches: (path: string) => boolean) {
    this.hooks = hooks;
    this.matches = matches;
  }

  /**
   * Watches exactly `dirs` (path to `dev:ino`, as a rescan found them): new
   * ones are added, vanished or replaced ones dropped or watched anew.
   */
  syncDirs(dirs: ReadonlyMap<string, string>): void {
    if (this.closed) return;
    for (const [dir, w] of this.dirs) {
      if (dirs.get(dir) === w.id) continue;
      w.watcher.close();
      this.dirs.delete(dir);
    }
    for (const [dir, id] of dirs) {
      if (this.dirs.has(dir)) continue;
      // glob verdict by name in this directory: a write event costs a lookup, not a path join and a match
      const selected = new Map<string, boolean>();
      const watcher = this.open(
        dir,
        (event, name) => {
          if (event === 'rename') this.hooks.onName(name ? path.join(dir, name.toString()) : undefined);
          else if (name && this.isSelected(dir, selected, name.toString())) this.hooks.onAppend();
        },
        (w) => {
          if (this.dirs.get(dir)?.watcher === w) this.dirs.delete(dir);
        },
      );
      if (watcher) this.dirs.set(dir, { watcher, id });
    }
  }

  /** Watches the followed file `key`, opened at `file`, if `file` is a symlink (its directory's watch covers any other). */
  watchFile(key: string, file: string): void {
    if (this.closed || this.files.has(key)) return;
    try {
      if (!lstatSync(file).isSymbolicLink()) return;
    } catch {
      return; // gone already: the poll finishes it
    }
    // A link re-pointed between the open and this call would give another
    // inode's events: the stat poll still reads our file, only later.
    const watcher = this.open(
      file,
      (event) => {
        if (event === 'rename') this.hooks.onMoved(key);
        else this.hooks.onAppend();
      },
      (w) => {
        if (this.files.get(key) === w) this.files.delete(key);
      },
    );
    if (watcher) this.files.set(key, watcher);
  }

  unwatchFile(key: string): void {
    this.files.get(key)?.close();
    this.files.delete(key);
  }

  close(): void {
    this.closed = true;
    for (const w of this.dirs.values()) w.watcher.close();
    for (const w of this.files.values()) w.close();
    this.dirs.clear();
    this.files.clear();
  }

  /** Whether the globs select `name` in `dir`, remembered per directory. */
  private isSelected(dir: string, selected: Map<string, boolean>, name: string): boolean {
    let m = selected.get(name);
    if (m === undefined) {
      if (selected.size >= MATCH_CACHE_MAX) selected.clear();
      m = this.matches(path.join(dir, name));
      selected.set(name, m);
    }
    return m;
  }

  /** `gone`: the watch ended by itself (an error), so it can be set again later. */
  private open(p: string, listener: (event: string, name: string | Buffer | null) => void, gone: (w: FSWatcher) => void): FSWatcher | undefined {
    let watcher: FSWatcher;
    try {
      // Not persistent: the file source's own timers and handles keep the process up.
      watcher = watch(p, { persistent: false }, listener);
    } catch (err) {
      // Gone before we could watch it: the next rescan or poll says what became of it.
      if (errCode(err) !== 'ENOENT' && !this.failed.has(p)) {
        this.failed.add(p);
        this.hooks.onError(`cannot watch ${p}; it is polled instead`, err);
      }
      return undefined;
    }
    this.failed.delete(p);
    // e.g. the watched directory was removed: the rescan watches it again if it returns.
    watcher.on('error', () => {
      watcher.close();
      gone(watcher);
    });
    return watcher;
  }
}
