/**
 * What the framework adapters share: their common options and the tracker
 * that sends their events. A framework calls an adapter from code that must
 * not fail because auditing did (a tracing processor, a callback), so an
 * adapter never lets an emit's rejection reach the framework on its own: the
 * tracker catches it, counts it, keeps it and tells `onError`. What an
 * application can do about a failure instead (wait for `audited()`, or let
 * the adapters that can gate a tool do so) is in docs/client.md.
 */
import { withContext, type EventContext, type EventSink } from '../collector-map.js';
import { ClientError } from '../errors.js';
import type { ClientEvent, EmitResult } from '../types.js';
import { parseJsonText as parseJson } from '../../core/json-text.js';

export interface AdapterOptions extends EventContext {
  /** an AuditClient, or anything with its emit() */
  client: EventSink;
  /**
   * Told of every event that could not be stored (the emit's rejection, a
   * ClientError with a `code`, and the event). Default: nothing is logged;
   * the error is kept in `lastError` and counted in `failures`. A throwing
   * hook is ignored: it must not reach the framework either.
   */
  onError?: (err: unknown, event: ClientEvent) => void;
  /**
   * Keep an error's message in details.error (default true). Only the
   * name, code and message are kept, never the stack; the sidecar's
   * redaction runs on them like on every field.
   */
  errorMessage?: boolean;
}

/** Runs whose failure is remembered for gate(), at most (the oldest is forgotten first). */
const MAX_FAILED_TRACES = 1000;

/**
 * Sends an adapter's events with the context filled in, and keeps track of
 * them: how many are in flight, the failures, and a promise for "all of
 * them stored". The client bounds what is in flight (maxQueue): beyond, an
 * emit fails at once with client_queue_full, which lands in onError.
 */
export class EmitTracker {
  /** the latest failure, kept until the next one */
  lastError: unknown = undefined;
  /** events that could not be stored, since the tracker was made */
  failures = 0;
  private readonly pending = new Set<Promise<unknown>>();
  /** the first failure audited() has not reported yet */
  private unreported: { err: unknown } | undefined;
  /** trace id -> the first failure of an event of that trace, until forgetTrace() */
  private readonly failedTraces = new Map<string, unknown>();
  private readonly ctx: EventContext;

  constructor(
    private readonly client: EventSink,
    ctx: EventContext,
    private readonly onError: AdapterOptions['onError'],
  ) {
    this.ctx = { agent: ctx.agent, actor: ctx.actor, session_id: ctx.session_id, trace_id: ctx.trace_id, tenant: ctx.tenant };
  }

  /** Events sent and not yet settled. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends the event (context filled in). The promise rejects like the
   * client's emit, for a caller that wants to act on it; the failure is
   * recorded and reported to onError either way, and the tracker never
   * leaves a rejection unhandled. `rethrown`: the caller throws the failure
   * itself, so audited() does not report it a second time.
   */
  send(event: ClientEvent, opts: { rethrown?: boolean } = {}): Promise<EmitResult> {
    const full = withContext(event, this.ctx);
    let p: Promise<EmitResult>;
    try {
      p = this.client.emit(full);
    } catch (err) {
      // a sink whose emit throws instead of rejecting
      p = Promise.reject(err);
    }
    const tracked = p.then(
      () => undefined,
      (err: unknown) => this.failed(err, full, opts.rethrown === true),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
    return p;
  }

  /** Sends the event; the returned promise never rejects (what a framework hook hands back). */
  emit(event: ClientEvent): Promise<void> {
    return this.send(event).then(
      () => undefined,
      () => undefined,
    );
  }

  /** Resolves once every event sent so far (and those sent meanwhile) has settled; never rejects. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /**
   * Resolves once every event sent so far is settled and all of them were
   * stored; rejects with the first failure not yet reported by audited().
   * This is how an application refuses to go on unaudited:
   * `await adapter.audited()`.
   */
  async audited(): Promise<void> {
    await this.flush();
    const u = this.unreported;
    if (u) {
      this.unreported = undefined;
      throw u.err;
    }
  }

  /**
   * The gate before a tool or model call of a failClosed adapter: resolves
   * once every event sent so far has settled, and rejects if an event of
   * the same trace (the same run) could not be stored. Unlike audited() it
   * reports nothing as seen, so every call of a failed run is stopped, also
   * calls running in parallel; forgetTrace() ends that when the run ends.
   */
  async gate(traceId: string | undefined): Promise<void> {
    await this.flush();
    if (traceId !== undefined && this.failedTraces.has(traceId)) throw this.failedTraces.get(traceId);
  }

  /** The run of this trace is over: its failures stop nothing any more. */
  forgetTrace(traceId: string | undefined): void {
    if (traceId !== undefined) this.failedTraces.delete(traceId);
  }

  private failed(err: unknown, event: ClientEvent, rethrown: boolean): void {
    this.failures++;
    this.lastError = err;
    const trace = event.trace_id;
    if (trace !== undefined && !this.failedTraces.has(trace)) {
      // bounded: a run that never ends must not make this grow for ever
      if (this.failedTraces.size >= MAX_FAILED_TRACES) this.failedTraces.delete(this.failedTraces.keys().next().value as string);
      this.failedTraces.set(trace, err);
    }
    // a failure the caller throws into the run is reported there; audited() must not report it again
    if (!rethrown) this.unreported ??= { err };
    try {
      this.onError?.(err, event);
    } catch {
      // a faulty hook must not reach the framework
    }
  }
}

/** What an adapter class makes of its options, read the same way by each. */
export interface AdapterSettings {
  tracker: EmitTracker;
  /** keep a model call's input and output (default false) */
  modelContent: boolean;
  /** keep an error's message (default true) */
  errorMessage: boolean;
}

/**
 * Checks an adapter class's options (`adapter` names it in the error) and
 * makes its tracker. Throws client_options_invalid when `client` has no
 * emit().
 */
export function adapterSettings(adapter: string, options: AdapterOptions & { modelContent?: boolean }): AdapterSettings {
  if (typeof options?.client?.emit !== 'function') throw new ClientError('client_options_invalid', `${adapter}: option client must have an emit() method (an AuditClient)`);
  return {
    tracker: new EmitTracker(options.client, options, options.onError),
    modelContent: options.modelContent === true,
    errorMessage: options.errorMessage !== false,
  };
}

/** A string that is not empty, or undefined. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * Tool arguments and results sent as JSON text, parsed as the sidecar's OTLP
 * mapping parses them (core/json-text.ts); and a string sent as JSON text
 * (the AI SDK records a tool's string result so) as that string.
 */
export function parseJsonText(v: unknown): unknown {
  if (typeof v !== 'string' || !v.trimStart().startsWith('"')) return parseJson(v);
  try {
    const s: unknown = JSON.parse(v);
    return typeof s === 'string' && s.isWellFormed() ? s : v;
  } catch {
    return v;
  }
}

/** The object without its undefined members (so an event carries no empty fields). */
export function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/**
 * A framework's value as JSON can hold it: a class instance (a LangChain
 * message) becomes what its toJSON()/own members write; one JSON cannot
 * write (a cycle, a BigInt) becomes its String(). An event the client
 * refuses would lose the whole action, not just this value.
 */
export function jsonSafe(v: unknown): unknown {
  if (v === undefined || v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  try {
    const text = JSON.stringify(v) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    // String() can throw too (a throwing toString, a null-prototype object)
    try {
      return String(v);
    } catch {
      return Object.prototype.toString.call(v);
    }
  }
}
