/**
 * A set of TLS files read together and re-read when any of them changes on
 * disk: the reload step the listeners' TLS (server-tls.ts) and the ship
 * client's (client-tls.ts) share.
 *
 * Contract:
 * - the constructor reads the files through `read` (which checks them and
 *   throws FileError/TlsError naming file and config key).
 * - refresh() stats the files (symlinks followed); when nothing changed it
 *   reads nothing. A changed set that `read` refuses is counted in
 *   `failures` and leaves `current` as it was; because only a good read
 *   moves the fingerprint, the next refresh() tries the files again, so a
 *   pair written in two steps is taken once both halves are there. A good
 *   read whose bytes equal the current ones (a touch, a copy of the same
 *   files) is not a reload.
 * - follow() adds the triggers a listener needs, since it has no "next
 *   connection" to look at the files on: fs.watch on each file and on its
 *   directory (cert-manager and kubelet replace files by swapping a
 *   symlink in the directory, which a watch on the old file never sees),
 *   and a stat poll as a fallback (watches are lost on some filesystems).
 *   Bursts of watch events are coalesced. Nothing it starts keeps the
 *   process alive, and close() stops all of it.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { statFingerprint } from './material.js';

/** What refresh() found. */
export type Refresh<M> = { kind: 'unchanged' } | { kind: 'reloaded'; material: M } | { kind: 'refused'; error: Error };

/** Coalesces a burst of watch events (a secret update touches several names). */
const SETTLE_MS = 100;

export class FollowedFiles<M extends { digest: string }> {
  private readonly paths: readonly string[];
  private readonly read: () => M;
  private fingerprint: string;
  private material: M;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  /** new sets of files taken since start */
  reloads = 0;
  /** changed sets of files refused since start */
  failures = 0;

  constructor(paths: readonly string[], read: () => M) {
    this.paths = paths;
    this.read = read;
    // Stat before reading: a change between the two is seen at the next refresh.
    this.fingerprint = statFingerprint(paths);
    this.material = read();
  }

  get current(): M {
    return this.material;
  }

  /** Re-reads the files if they changed since the last good read (always, with force). */
  refresh(force = false): Refresh<M> {
    const fp = statFingerprint(this.paths);
    if (!force && fp === this.fingerprint) return { kind: 'unchanged' };
    let next: M;
    try {
      next = this.read();
    } catch (err) {
      this.failures++;
      return { kind: 'refused', error: err instanceof Error ? err : new Error(String(err)) };
    }
    this.fingerprint = fp;
    if (next.digest === this.material.digest) return { kind: 'unchanged' };
    this.material = next;
    this.reloads++;
    return { kind: 'reloaded', material: next };
  }

  /** Calls `onChange` after the files (or their directories) change, and every pollMs (0: no poll). */
  follow(onChange: () => void, pollMs: number): void {
    this.close();
    const onEvent = (): void => {
      clearTimeout(this.settle);
      this.settle = setTimeout(onChange, SETTLE_MS);
      this.settle.unref();
    };
    const watched = new Set<string>();
    for (const p of this.paths) {
      for (const target of [p, dirname(p)]) {
        if (watched.has(target)) continue;
        watched.add(target);
        try {
          const w = watch(target, { persistent: false }, onEvent);
          // A watch that dies (its directory removed) leaves the poll in charge.
          w.on('error', () => w.close());
          this.watchers.push(w);
        } catch {
          // unwatchable (permissions, filesystem): the poll covers it
        }
      }
    }
    if (pollMs > 0) {
      this.poll = setInterval(onChange, pollMs);
      this.poll.unref();
    }
  }

  /** Stops following; refresh() still works. Safe to call more than once. */
  close(): void {
    clearInterval(this.poll);
    clearTimeout(this.settle);
    this.poll = undefined;
    this.settle = undefined;
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }
}
