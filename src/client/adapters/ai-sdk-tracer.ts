/**
 * The smallest OpenTelemetry Tracer the AI SDK's telemetry can drive: it
 * keeps each span's name, attributes, status and exceptions, and hands the
 * finished span to a callback. It implements the @opentelemetry/api
 * interfaces with types only, so sealtrail/client/ai-sdk needs no
 * OpenTelemetry SDK (and no global provider) at run time, and it records
 * only the spans of the calls it is passed to.
 *
 * Parent and trace: the AI SDK starts every span with startActiveSpan and
 * no explicit context, relying on the global context manager, which is a
 * no-op unless the application registered one. This tracer keeps its own
 * active span in an AsyncLocalStorage instead, so a tool call's span is the
 * child of its generateText span in any case.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { AttributeValue, Attributes, Context, Exception, Link, Span, SpanContext, SpanOptions, SpanStatus, TimeInput, Tracer } from '@opentelemetry/api';

/** A span as it ended. */
export interface FinishedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** epoch ms */
  startTime: number;
  endTime: number;
  attributes: Readonly<Attributes>;
  /** SpanStatusCode: 0 unset, 1 ok, 2 error */
  status: SpanStatus;
  /** what recordException() was given, name and message only */
  exceptions: Array<{ name?: string; message?: string }>;
}

/** The context key @opentelemetry/api files the active span under (its createContextKey is Symbol.for). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');

function epochMs(t: TimeInput | undefined): number {
  if (t instanceof Date) return t.getTime();
  if (Array.isArray(t)) return t[0] * 1000 + t[1] / 1e6;
  // a number may be epoch ms or a performance.now() reading; only the first is a wall time
  if (typeof t === 'number' && t > 1e12) return t;
  return Date.now();
}

export class CollectingSpan implements Span {
  private readonly attrs: Attributes;
  private status: SpanStatus = { code: 0 };
  private readonly exceptions: FinishedSpan['exceptions'] = [];
  private ended = false;
  private readonly startTime: number;

  constructor(
    private name: string,
    private readonly ctx: SpanContext,
    readonly parentSpanId: string | undefined,
    options: SpanOptions | undefined,
    private readonly onEnd: (span: FinishedSpan) => void,
  ) {
    this.attrs = { ...(options?.attributes ?? {}) };
    this.startTime = epochMs(options?.startTime);
  }

  get spanName(): string {
    return this.name;
  }

  /** An attribute as it is now (set at the start or since). */
  attribute(key: string): AttributeValue | undefined {
    return this.attrs[key];
  }

  /** The attributes as they are now; a live view, not a copy. */
  get attributes(): Readonly<Attributes> {
    return this.attrs;
  }

  spanContext(): SpanContext {
    return this.ctx;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.ended && value !== undefined) this.attrs[key] = value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const [k, v] of Object.entries(attributes)) this.setAttribute(k, v as AttributeValue);
    return this;
  }

  addEvent(_name: string, _attributesOrStartTime?: Attributes | TimeInput, _startTime?: TimeInput): this {
    // stream timings (ai.stream.firstChunk) are not audit data
    return this;
  }

  addLink(_link: Link): this {
    return this;
  }

  addLinks(_links: Link[]): this {
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (!this.ended) this.status = status;
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd({
      name: this.name,
      traceId: this.ctx.traceId,
      spanId: this.ctx.spanId,
      parentSpanId: this.parentSpanId,
      startTime: this.startTime,
      endTime: epochMs(endTime),
      attributes: this.attrs,
      status: this.status,
      exceptions: this.exceptions,
    });
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, _time?: TimeInput): void {
    if (this.ended) return;
    if (typeof exception === 'string') this.exceptions.push({ message: exception });
    else this.exceptions.push({ name: exception.name, message: exception.message });
  }
}

/**
 * Hooks of a CollectingTracer. `wrapActive` may replace what an active
 * span's function returns (the adapter gates tool calls on it).
 */
export interface TracerHooks {
  /** a span has started: its attributes are those the framework started it with */
  onStart?(span: CollectingSpan): void;
  onEnd(span: FinishedSpan): void;
  wrapActive?(span: CollectingSpan, run: () => unknown): unknown;
  /** the trace id of a root span (default: 16 random bytes, hex) */
  traceId?(): string;
}

export class CollectingTracer implements Tracer {
  private readonly active = new AsyncLocalStorage<Span>();

  constructor(private readonly hooks: TracerHooks) {}

  startSpan(name: string, options?: SpanOptions, context?: Context): Span {
    const span = this.makeSpan(name, options, context);
    this.hooks.onStart?.(span);
    return span;
  }

  /** The span whose function is running in this async context, if it is one of this tracer's. */
  activeSpan(): CollectingSpan | undefined {
    const s = this.active.getStore();
    return s instanceof CollectingSpan ? s : undefined;
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, context: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a?: SpanOptions | F, b?: Context | F, c?: F): ReturnType<F> {
    const fn = (typeof a === 'function' ? a : typeof b === 'function' ? b : c) as F;
    const options = typeof a === 'object' ? a : undefined;
    const context = typeof b === 'object' ? b : undefined;
    const span = this.makeSpan(name, options, context);
    // before the function runs, so what the hook sends precedes everything the span's function causes
    this.hooks.onStart?.(span);
    const run = (): unknown => fn(span);
    return this.active.run(span, () => (this.hooks.wrapActive ? this.hooks.wrapActive(span, run) : run())) as ReturnType<F>;
  }

  private makeSpan(name: string, options: SpanOptions | undefined, context: Context | undefined): CollectingSpan {
    const fromContext = context?.getValue(SPAN_KEY) as Span | undefined;
    const parent = options?.root === true ? undefined : (fromContext ?? this.active.getStore());
    const pc = typeof parent?.spanContext === 'function' ? parent.spanContext() : undefined;
    const traceId = pc?.traceId && !/^0+$/.test(pc.traceId) ? pc.traceId : (this.hooks.traceId?.() ?? randomBytes(16).toString('hex'));
    const ctx: SpanContext = { traceId, spanId: randomBytes(8).toString('hex'), traceFlags: 1 };
    return new CollectingSpan(name, ctx, pc?.spanId || undefined, options, (s) => this.hooks.onEnd(s));
  }
}
