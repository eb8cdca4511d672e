/**
 * Heartbeats: an idle stream still signs a checkpoint every
 * heartbeat_interval. One `heartbeat` record of the sidecar's own (source
 * "sealtrail") is chained and sealed, so an auditor can tell "nothing
 * happened" from "records are missing" for any period longer than the
 * interval.
 *
 * Scheduled for the moment the stream has been idle for exactly the interval
 * (a fixed tick would let the gap grow to interval + tick). A heartbeat that
 * was due but not written (buffer paused, commit failed) is retried in a
 * second, neither a whole interval later nor in a spin.
 */

/** The JSON line of a heartbeat event, for Ingest like any input line. */
export function heartbeatLine(idleSeconds: number): string {
  return JSON.stringify({
    event_type: 'heartbeat',
    actor: { id: 'sealtrail-sidecar', type: 'system' },
    action: 'heartbeat',
    outcome: 'success',
    details: { idle_seconds: idleSeconds },
  });
}

export interface HeartbeatTimerOptions {
  /** heartbeat_interval in ms (> 0) */
  every: number;
  /** Date.now() of the last record committed */
  lastRecordAt: () => number;
  /** writes a heartbeat if one is due; may throw (the timer retries) */
  beat: () => void;
  onError: (err: unknown) => void;
}

export class HeartbeatTimer {
  private readonly opts: HeartbeatTimerOptions;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(opts: HeartbeatTimerOptions) {
    this.opts = opts;
  }

  start(): void {
    this.schedule();
  }

  /** No heartbeat from now on, not even one already scheduled. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    const due = this.opts.lastRecordAt() + this.opts.every - Date.now();
    this.timer = setTimeout(() => this.tick(), due > 0 ? Math.max(10, due) : 1000);
  }

  private tick(): void {
    try {
      this.opts.beat();
    } catch (err) {
      this.opts.onError(err);
    }
    this.schedule();
  }
}
