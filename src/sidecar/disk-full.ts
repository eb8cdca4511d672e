/**
 * Disk-full state of the local buffer. A commit that fails for lack of space
 * (SQLITE_FULL, ENOSPC) rolls back whole: SQLite never leaves a half-written
 * transaction, and the sources keep the lines and positions they could not
 * commit and offer them again. This module only decides what the operator
 * sees: one clear log line when writes start failing, one when they work
 * again, and a gauge to alert on, instead of an error line per retry.
 */

/**
 * SQLite reports ENOSPC as SQLITE_FULL; a few paths surface the errno itself;
 * `buffer_disk_low` is the buffer refusing new records while it keeps the
 * space it needs to checkpoint and record acknowledgements (AuditBuffer).
 */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'buffer_disk_low';
}

export interface DiskFullHooks {
  /** first failure after a success */
  onFull(err: Error): void;
  /** first success after a failure; `failedFor` in ms */
  onRecovered(failedFor: number, failures: number): void;
}

export class DiskFullState {
  private since: number | undefined;
  private failures = 0;
  private readonly hooks: DiskFullHooks;

  constructor(hooks: DiskFullHooks) {
    this.hooks = hooks;
  }

  get full(): boolean {
    return this.since !== undefined;
  }

  /** Returns whether `err` was a disk-full error (and so is handled here). */
  failed(err: unknown): boolean {
    if (!isDiskFull(err)) return false;
    this.failures++;
    if (this.since === undefined) {
      this.since = Date.now();
      this.hooks.onFull(err as Error);
    }
    return true;
  }

  succeeded(): void {
    if (this.since === undefined) return;
    const failedFor = Date.now() - this.since;
    const failures = this.failures;
    this.since = undefined;
    this.failures = 0;
    this.hooks.onRecovered(failedFor, failures);
  }
}
