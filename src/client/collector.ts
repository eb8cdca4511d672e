/**
 * AuditCollector: audits an agent's stream of steps as it flows.
 *
 *   const collector = new AuditCollector({ client, agent: { id: 'planner' }, session_id });
 *   for await (const step of collector.wrap(agent.run(task))) act(step);
 *
 * Every step is passed on unchanged and in order. A step that maps to an
 * event is passed on only once its emit resolved, i.e. once the sidecar
 * stored the event: the next step is not even pulled from the source before
 * that. This is the back-pressure (a slow sidecar slows the agent instead of
 * events piling up in memory) and, with a failClosed client, the guarantee
 * that no step is acted on unaudited: a rejected emit ends the stream with
 * that rejection instead of passing the step on.
 */
import { defaultStepToEvent, errorDetails, withContext, type EventContext, type EventSink } from './collector-map.js';
import type { ClientEvent, EmitResult } from './types.js';
import { ClientError } from './errors.js';

/** What toEvent may answer: the event for the step, or nothing to pass the step on unaudited. */
export type StepEvent = ClientEvent | null | undefined;

export interface AuditCollectorOptions<S> extends EventContext {
  /** an AuditClient, or anything with its emit() */
  client: EventSink;
  /**
   * The event for a step, or undefined/null to skip it (it is passed on
   * without an event). May be async. Default: defaultStepToEvent, which
   * knows the common step shapes (docs/client.md). Its result is merged
   * with the context options (agent, actor, session_id, trace_id, tenant).
   */
  toEvent?: (step: S) => StepEvent | Promise<StepEvent>;
  /**
   * Keep the error's message in the `agent_run_failed` event (default
   * true). Only its name, code and message go in, never the stack; the
   * sidecar's redaction rules run on the message like on any field. Set
   * false when messages may hold data that must not reach the trail at all.
   */
  errorMessage?: boolean;
  /**
   * Told when the `agent_run_failed` event for a failed stream could not be
   * emitted. The stream's own error is re-thrown either way: it is what the
   * caller must learn first.
   */
  onError?: (err: unknown) => void;
}

/** The event type recorded when the wrapped stream throws. */
export const RUN_FAILED = 'agent_run_failed';

export class AuditCollector<S = unknown> {
  private readonly client: EventSink;
  private readonly toEvent: (step: S) => StepEvent | Promise<StepEvent>;
  private readonly ctx: EventContext;
  private readonly errorMessage: boolean;
  private readonly onError: ((err: unknown) => void) | undefined;

  constructor(options: AuditCollectorOptions<S>) {
    const { client, toEvent, errorMessage, onError, ...ctx } = options;
    if (typeof client?.emit !== 'function') throw new ClientError('client_options_invalid', 'AuditCollector: option client must have an emit() method (an AuditClient)');
    this.client = client;
    this.toEvent = toEvent ?? defaultStepToEvent;
    this.ctx = { agent: ctx.agent, actor: ctx.actor, session_id: ctx.session_id, trace_id: ctx.trace_id, tenant: ctx.tenant };
    this.errorMessage = errorMessage !== false;
    this.onError = onError;
  }

  /**
   * Emits the event for one step, if it maps to one, and resolves once it is
   * stored (undefined for a skipped step). Rejects as the client's emit does.
   */
  async record(step: S): Promise<EmitResult | undefined> {
    const event = await this.toEvent(step);
    if (event === undefined || event === null) return undefined;
    return this.client.emit(withContext(event, this.ctx));
  }

  /**
   * Passes every step of `steps` (sync or async iterable) through, in order,
   * after its event (if any) is stored. If the source throws, an
   * `agent_run_failed` event (outcome error, details.error, details.steps:
   * the number of steps passed on) is emitted and the source's error is
   * re-thrown. A rejected emit or a throwing toEvent ends the stream with
   * its own error and the step is not passed on. Breaking out of the loop
   * closes the source (its return()). Values of a sync iterable are passed
   * as they are, not awaited.
   */
  async *wrap<T extends S>(steps: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
    const it = iteratorOf(steps);
    let sourceDone = false;
    let passed = 0;
    try {
      for (;;) {
        let r: IteratorResult<T>;
        try {
          r = await it.next();
        } catch (err) {
          // a source that threw is finished: it must not be asked to return()
          sourceDone = true;
          await this.recordFailure(err, passed);
          throw err;
        }
        if (r.done === true) {
          sourceDone = true;
          return;
        }
        await this.record(r.value);
        passed++;
        yield r.value;
      }
    } finally {
      if (!sourceDone) await it.return?.();
    }
  }

  private async recordFailure(err: unknown, passed: number): Promise<void> {
    const event: ClientEvent = {
      event_type: RUN_FAILED,
      outcome: 'error',
      details: { error: errorDetails(err, { message: this.errorMessage }), steps: passed },
    };
    try {
      await this.client.emit(withContext(event, this.ctx));
    } catch (emitErr) {
      try {
        this.onError?.(emitErr);
      } catch {
        // a faulty hook must not hide the stream's error, which is re-thrown next
      }
    }
  }
}

/** One async iterator over either kind of iterable; a sync one's next() errors surface as rejections. */
function iteratorOf<S>(steps: Iterable<S> | AsyncIterable<S>): AsyncIterator<S> {
  if (steps !== null && typeof steps === 'object' && Symbol.asyncIterator in steps) return steps[Symbol.asyncIterator]();
  if (steps === null || steps === undefined || typeof (steps as Iterable<S>)[Symbol.iterator] !== 'function') {
    throw new ClientError('client_options_invalid', 'AuditCollector.wrap(): expected an iterable or an async iterable of steps');
  }
  const sync = (steps as Iterable<S>)[Symbol.iterator]();
  return {
    next: async () => sync.next(),
    return: async () => sync.return?.() ?? { done: true, value: undefined },
  };
}
