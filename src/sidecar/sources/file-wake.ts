/**
 * How the file source's read loop sleeps and is woken, and how appends are
 * grouped into one read.
 *
 * Appends are grouped (GROUP_WINDOW_MS): the first write to a followed file
 * after the loop went idle opens a window; the loop is woken when it
 * closes, so every line written within it is read into one chunk, and so
 * one commit, per file. Anything else that needs the loop (a new name, a
 * moved file, a drain, resume, close) wakes it at once.
 *
 * Only timing lives here: a late wake delays lines, never loses them, and
 * positions still move only after their commit (file-source.ts).
 */

/**
 * How long the first append after the loop went idle waits for more before
 * it is read: lines written within the window are committed together (one
 * transaction, one fsync, instead of one per write).
 */
export const GROUP_WINDOW_MS = 50;

export class LoopWake {
  private readonly windowMs: number;
  private flag = false;
  private closed = false;
  private resolve: (() => void) | undefined;
  /** armed by the first append of a window; wakes the loop when the window closes */
  private groupTimer: NodeJS.Timeout | undefined;

  constructor(windowMs = GROUP_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** Wakes the loop now. */
  now(): void {
    this.flag = true;
    this.resolve?.();
  }

  /** A followed file grew: wakes the loop when the window the first such append opened closes. */
  appended(): void {
    if (this.groupTimer || this.closed) return;
    this.groupTimer = setTimeout(() => {
      this.groupTimer = undefined;
      this.now();
    }, this.windowMs);
  }

  /** At the top of a round: what woke the loop until now is served by this round. */
  clear(): void {
    this.flag = false;
  }

  /** Sleeps until woken (or woken since the last clear()), closed, or `ms` passed. */
  async wait(ms: number): Promise<void> {
    if (this.flag || this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      this.resolve = r;
      timer = setTimeout(r, ms);
    });
    clearTimeout(timer);
    this.resolve = undefined;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.groupTimer);
    this.now();
  }
}
