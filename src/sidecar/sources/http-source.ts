/**
 * The http source as a Source. `POST /v1/events` is served by the telemetry
 * server through `handler` (http-events.ts); this holds what the handler
 * consults, backpressure and shutdown, under the lifecycle every source
 * shares, so the sidecar pauses, drains and closes it like the others.
 *
 * Contracts:
 * - paused: every request is answered 503 `buffer_full` and nothing is read;
 * - from the moment drain() is called (synchronously: nothing can be
 *   committed after the call) every request is answered 503
 *   `shutting_down`, so no record arrives after the final seal. A request's
 *   commit is synchronous, so there is never one in flight to wait for.
 */
import { SealtrailError } from '../../core/errors.js';
import { createEventsHandler, type EventsHandler, type EventsHandlerOptions } from './http-events.js';
import { SourceLifecycle, type Deadline, type Source, type SourceReporting } from './source.js';

export interface HttpSourceOptions extends Omit<EventsHandlerOptions, 'paused' | 'stopping' | 'onError'>, SourceReporting {}

export class HttpSource implements Source {
  readonly id: string;
  /** what the telemetry server serves `POST /v1/events` with */
  readonly handler: EventsHandler;
  private readonly life: SourceLifecycle;

  constructor(opts: HttpSourceOptions) {
    const life = new SourceLifecycle(`http source ${opts.id}`, opts, (code, message, o) => new SealtrailError(code, message, o));
    this.id = opts.id;
    this.life = life;
    this.handler = createEventsHandler({
      ...opts,
      paused: () => life.paused,
      stopping: () => life.stopping || life.closed,
      onError: (err) => life.fail(err),
    });
  }

  get ready(): boolean {
    return this.life.started && !this.life.closed;
  }

  async start(): Promise<void> {
    this.life.start();
  }

  pause(): void {
    this.life.pause();
  }

  resume(): void {
    this.life.resume();
  }

  async drain(deadline: Deadline): Promise<void> {
    await this.life.drain(deadline, async () => undefined);
  }

  async close(): Promise<void> {
    this.life.close();
  }
}
