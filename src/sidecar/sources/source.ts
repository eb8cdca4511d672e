/**
 * The one contract every source keeps (file, socket, http; later otlp), and
 * the lifecycle they share.
 *
 * Contracts:
 * - start() once; a second start is an error (`source_state`).
 * - pause() is backpressure: no sink call starts while paused (one already
 *   running finishes); resume() undoes it. Neither loses a line.
 * - drain(deadline) takes nothing new and commits what the source holds
 *   (a socket's received lines, even while paused: they cannot be read
 *   again; a file's lines up to its size when the drain began, unless paused:
 *   the file keeps them for the next start), then makes no more sink calls,
 *   even if the deadline cut it short. It resolves by the deadline (a file
 *   source that is still starting finishes that first).
 * - close() releases everything; lines not committed by then are not
 *   acknowledged (a file's are read again after a restart).
 * - Errors and notices never carry a line's bytes: codes, counts, offsets.
 */
import type { SourceCode } from '../../core/error-codes.js';

/**
 * When a drain must end: an absolute Date.now() time, or a signal that
 * aborts then. One form for every stage, so a shutdown deadline is passed
 * down unchanged.
 */
export type Deadline = number | AbortSignal;

/** What the sidecar needs of every source: start, backpressure, the shutdown order. */
export interface Source {
  readonly id: string;
  /** started and taking input (for /readyz) */
  readonly ready: boolean;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  drain(deadline: Deadline): Promise<void>;
  close(): Promise<void>;
}

export interface SourceReporting {
  /** Faults (a failed read, a refused commit); the source retries. Never carries line bytes. */
  onError?: (err: Error) => void;
  /** Non-error happenings worth a log line (a stale socket removed, a file rotated or truncated). */
  onNotice?: (message: string) => void;
}

type ErrorFactory = (code: SourceCode, message: string, options?: { cause?: unknown }) => Error;

/** Resolves when `deadline` passes (at once if it has); `cancel` frees its timer or listener. */
export function whenDue(deadline: Deadline): { due: Promise<void>; cancel: () => void } {
  if (typeof deadline === 'number') {
    let timer: NodeJS.Timeout | undefined;
    const due = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    return { due, cancel: () => clearTimeout(timer) };
  }
  if (deadline.aborted) return { due: Promise.resolve(), cancel: () => undefined };
  let onAbort: (() => void) | undefined;
  const due = new Promise<void>((r) => {
    onAbort = () => r();
    deadline.addEventListener('abort', onAbort, { once: true });
  });
  return { due, cancel: () => deadline.removeEventListener('abort', onAbort!) };
}

/**
 * State, drain and reporting shared by the sources. Each source keeps what
 * is its own (readiness, what "everything held" means for a drain); the
 * order new → started → stopping (drain began) → stopped (drain ended), the
 * pause flag, close and how errors reach the log are the same everywhere.
 */
export class SourceLifecycle {
  /** "file source traces": prefixes every error and notice */
  readonly name: string;
  private state: 'new' | 'started' | 'stopping' | 'stopped' = 'new';
  private isClosed = false;
  private isPaused = false;
  private closedResolve!: () => void;
  /** resolves on close(): every wait of the source races it, so nothing outlives a close */
  readonly closedSignal = new Promise<void>((r) => (this.closedResolve = r));
  private readonly reporting: SourceReporting;
  /** the source's error class, without the name prefix */
  readonly makeError: ErrorFactory;

  constructor(name: string, reporting: SourceReporting, makeError: ErrorFactory) {
    this.name = name;
    this.reporting = reporting;
    this.makeError = makeError;
  }

  get started(): boolean {
    return this.state !== 'new';
  }

  /** a drain began (and may have ended): take nothing new */
  get stopping(): boolean {
    return this.state === 'stopping' || this.state === 'stopped';
  }

  /** a drain ended, or ran out of time: no more reads, no more sink calls */
  get stopped(): boolean {
    return this.state === 'stopped';
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  start(): void {
    if (this.state !== 'new') throw this.makeError('source_state', `${this.name}: already started`);
    this.state = 'started';
  }

  /** Returns whether this call changed anything. */
  pause(): boolean {
    if (this.isPaused) return false;
    this.isPaused = true;
    return true;
  }

  /** Returns whether this call changed anything. */
  resume(): boolean {
    if (!this.isPaused) return false;
    this.isPaused = false;
    return true;
  }

  /** Everything the drain waited for is delivered: stop before the deadline. */
  stop(): void {
    this.state = 'stopped';
  }

  /**
   * Runs a drain: `held` starts it and resolves once what the source holds
   * is committed. Waits for that, the deadline or close(), whichever comes
   * first; then the source is stopped. False when there was nothing to drain
   * (never started, already stopped, or closed).
   */
  async drain(deadline: Deadline, held: () => Promise<void>): Promise<boolean> {
    if (this.state === 'new' || this.state === 'stopped' || this.isClosed) return false;
    this.state = 'stopping';
    const { due, cancel } = whenDue(deadline);
    try {
      await Promise.race([held(), due, this.closedSignal]);
    } finally {
      cancel();
    }
    this.state = 'stopped';
    return true;
  }

  /** Returns false when already closed. */
  close(): boolean {
    if (this.isClosed) return false;
    this.isClosed = true;
    this.closedResolve();
    return true;
  }

  /** The error for a bad option, thrown by a constructor. */
  optionError(message: string): Error {
    return this.makeError('source_config_invalid', `${this.name}: ${message}`);
  }

  /** An error of this source (`${name}: message`), for start() to throw. */
  error(code: SourceCode, message: string, cause?: unknown): Error {
    return this.makeError(code, `${this.name}: ${message}`, cause === undefined ? undefined : { cause });
  }

  report(code: SourceCode, message: string, cause?: unknown): void {
    this.fail(this.error(code, message, cause));
  }

  /** Passes an error on as it is (the http source's faults are not its own). */
  fail(err: Error): void {
    try {
      this.reporting.onError?.(err);
    } catch {
      // a throwing logger must not stop the source
    }
  }

  notice(message: string): void {
    try {
      this.reporting.onNotice?.(`${this.name}: ${message}`);
    } catch {
      // a throwing logger must not stop the source
    }
  }
}

/** An integer option > 0, or `fallback` when unset. */
export function positiveInt(life: SourceLifecycle, option: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw life.optionError(`${option} must be a positive integer`);
  return v;
}

/** A finite option >= 0, or `fallback` when unset. */
export function nonNegative(life: SourceLifecycle, option: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw life.optionError(`${option} must be a non-negative number`);
  return v;
}

/** The `code` of an errno or SQLite error, if it has one. */
export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
