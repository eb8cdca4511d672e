/**
 * `sealtrail/client/openai-agents`: a tracing processor for the OpenAI
 * Agents SDK (@openai/agents-core) that records the spans of a run as audit
 * events, with no change to the agents:
 *
 *   import { addTraceProcessor } from '@openai/agents';
 *   addTraceProcessor(new SealtrailTracingProcessor({ client }));
 *
 * Only types are imported from @openai/agents-core, so loading this module
 * needs nothing of the SDK at run time. The SDK calls a processor without
 * awaiting it (Span.end() ignores the promise), so a processor cannot stop
 * or slow a run: an event that could not be stored is reported to onError,
 * and `audited()` lets the application refuse to go on (docs/client.md).
 */
import type { Span, SpanData, Trace, TracingProcessor } from '@openai/agents-core';
import type { ClientEvent } from '../types.js';
import { adapterSettings, compact, EmitTracker, parseJsonText, str, type AdapterOptions } from './shared.js';

export interface OpenAIAgentsOptions extends AdapterOptions {
  /**
   * Keep a model span's input and output (the prompt and the completion)
   * under details (default false: they are bulky, and the model, usage and
   * response id say which call it was). Tool arguments and results are
   * always kept: they are what the agent did.
   */
  modelContent?: boolean;
}

/** What the processor keeps of a trace while it runs: its spans carry only its id. */
interface TraceInfo {
  groupId: string | undefined;
  name: string | undefined;
}

/** What it keeps of an open span: the agent it runs under, found through its parents at its start. */
interface SpanInfo {
  agent: string | undefined;
}

/** traces remembered for their group id and name, the most recently started ones */
const MAX_TRACES = 1000;
const MAX_OPEN_SPANS = 10_000;

// The SDK's message for a tool call a human rejected (RunState.reject): such a call is an approval denied.
const REJECTED_BY_USER = /manually rejected by user/;

export class SealtrailTracingProcessor implements TracingProcessor {
  private readonly tracker: EmitTracker;
  private readonly traces = new Map<string, TraceInfo>();
  private readonly spans = new Map<string, SpanInfo>();
  private readonly modelContent: boolean;
  private readonly errorMessage: boolean;

  constructor(options: OpenAIAgentsOptions) {
    ({ tracker: this.tracker, modelContent: this.modelContent, errorMessage: this.errorMessage } = adapterSettings('SealtrailTracingProcessor', options));
  }

  /** the latest emit failure */
  get lastError(): unknown {
    return this.tracker.lastError;
  }

  /** events that could not be stored */
  get failures(): number {
    return this.tracker.failures;
  }

  /** Resolves once every event so far is stored; rejects with the first failure not yet reported here. */
  audited(): Promise<void> {
    return this.tracker.audited();
  }

  async onTraceStart(trace: Trace): Promise<void> {
    this.traces.delete(trace.traceId);
    if (this.traces.size >= MAX_TRACES) this.traces.delete(this.traces.keys().next().value as string);
    this.traces.set(trace.traceId, { groupId: str(trace.groupId), name: str(trace.name) });
  }

  async onTraceEnd(_trace: Trace): Promise<void> {
    // Kept: a run resumed after an interruption (an approval) continues the
    // same trace without starting it again; the map is bounded instead.
  }

  async onSpanStart(span: Span<SpanData>): Promise<void> {
    const data = span.spanData;
    const parent = span.parentId === null ? undefined : this.spans.get(span.parentId);
    // bounded too: a span the SDK never ends must not make this grow for ever
    if (this.spans.size >= MAX_OPEN_SPANS) this.spans.delete(this.spans.keys().next().value as string);
    this.spans.set(span.spanId, { agent: data.type === 'agent' ? data.name : parent?.agent });
  }

  /**
   * Starts the emit of the span's event, if its type is one that is
   * recorded, and returns at once: the SDK's MultiTracingProcessor awaits
   * each processor in turn, and the ones after this must not wait for the
   * sidecar's answer. forceFlush() and audited() wait for it instead.
   */
  async onSpanEnd(span: Span<SpanData>): Promise<void> {
    const info = this.spans.get(span.spanId);
    this.spans.delete(span.spanId);
    let event: ClientEvent | undefined;
    try {
      event = this.toEvent(span, info);
    } catch {
      // a span of a shape this version does not know must not reach the run
      return;
    }
    if (event) void this.tracker.emit(event);
  }

  /** Waits for the events in flight (at most `timeout` ms). The client stays open: it is the application's. */
  async shutdown(timeout?: number): Promise<void> {
    if (timeout === undefined) return this.tracker.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.tracker.flush(), new Promise<void>((r) => (timer = setTimeout(r, timeout)))]);
    clearTimeout(timer);
  }

  /** Waits until every event sent so far has settled (never rejects: the SDK calls it too). */
  forceFlush(): Promise<void> {
    return this.tracker.flush();
  }

  private toEvent(span: Span<SpanData>, info: SpanInfo | undefined): ClientEvent | undefined {
    const data = span.spanData;
    const trace = this.traces.get(span.traceId);
    const err = span.error;
    const base: Omit<ClientEvent, 'event_type'> = compact({
      time: span.startedAt ?? undefined,
      trace_id: span.traceId,
      span_id: span.spanId,
      session_id: trace?.groupId,
      agent: info?.agent === undefined ? undefined : { name: info.agent },
      outcome: err ? 'error' : 'success',
    });
    const details: Record<string, unknown> = compact({
      parent_span_id: span.parentId ?? undefined,
      ended_at: span.endedAt ?? undefined,
      workflow: trace?.name,
      error: err ? (this.errorMessage ? compact({ message: err.message, data: err.data }) : true) : undefined,
    });
    const event = (type: string, fields: Omit<ClientEvent, 'event_type'>, more: Record<string, unknown> = {}): ClientEvent => ({
      ...base,
      ...fields,
      event_type: type,
      details: { ...details, ...compact(more) },
    });
    switch (data.type) {
      case 'function': {
        const rejected = err !== null && REJECTED_BY_USER.test(String(err.data?.['error'] ?? err.message));
        return event(
          'tool_invoked',
          { tool: compact({ name: data.name, arguments: str(data.input) === undefined ? undefined : parseJsonText(data.input) }), ...(rejected ? { outcome: 'denied', approval: { status: 'denied' } } : {}) },
          { output: parseJsonText(data.output), mcp_data: data.mcp_data },
        );
      }
      case 'generation':
        return event(
          'model_called',
          { model: compact({ name: str(data.model) }) },
          { usage: data.usage, model_config: data.model_config, ...(this.modelContent ? { input: data.input, output: data.output } : {}) },
        );
      case 'response': {
        const response = data._response;
        return event(
          'model_called',
          { model: compact({ name: str(response?.['model']) }) },
          { response_id: data.response_id, usage: response?.['usage'], ...(this.modelContent ? { input: data._input, output: response?.['output'] } : {}) },
        );
      }
      case 'transcription':
      case 'speech':
        return event('model_called', { model: compact({ name: str(data.model) }), action: data.type }, { model_config: data.model_config });
      case 'agent':
        return event('agent_invoked', { agent: { name: data.name } }, { handoffs: data.handoffs, tools: data.tools, output_type: data.output_type });
      case 'handoff':
        return event('agent_handoff', data.from_agent ? { agent: { name: data.from_agent } } : {}, { to_agent: data.to_agent });
      case 'guardrail':
        return event('guardrail_checked', {
          policy: { rule: data.name, decision: data.triggered ? 'triggered' : 'passed' },
          outcome: err ? 'error' : data.triggered ? 'denied' : 'success',
        });
      case 'mcp_tools':
        return event('mcp_tools_listed', { resource: compact({ type: 'mcp_server', id: str(data.server) }) }, { result: data.result });
      default:
        // task, turn, custom and speech_group spans are the SDK's bookkeeping, not actions
        return undefined;
    }
  }
}
