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
 *
 * A human's approval decision is not a span, nor any other event the SDK
 * emits (RunState.approve()/reject() only write to the run's context), so
 * the processor also offers the calls an application makes instead of
 * those: approveAudited(), rejectAudited() and recordApprovalRequests().
 */
import type { RunToolApprovalItem, Span, SpanData, Trace, TracingProcessor } from '@openai/agents-core';
import { approval } from '../events.js';
import type { ActorInput, ClientEvent } from '../types.js';
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

/**
 * What the approval helpers need of a RunState (any RunState is one): its
 * approve()/reject(), and the trace a resumed run continues.
 */
export interface ApprovalRunState {
  approve(item: RunToolApprovalItem, options?: { alwaysApprove?: boolean }): void;
  reject(item: RunToolApprovalItem, options?: { alwaysReject?: boolean; message?: string }): void;
  readonly _trace?: Trace | null;
}

/** Who decided, recorded with the decision. */
export interface ApprovalDecision {
  /** the approver's id: `approval.approver` */
  approver: string;
  /** the event's actor, when it is not the processor's `actor` (the approver, say) */
  actor?: ActorInput;
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

  /**
   * Records an `approval_requested` event (outcome pending) for each of a
   * run's interruptions (`result.interruptions`, with `result.state`), and
   * resolves once they are stored; rejects like the client's emit. Called
   * again for a resumed run that still waits on a call, it records that
   * request again (the tool's call_id ties them together).
   */
  async recordApprovalRequests(result: { readonly interruptions?: readonly RunToolApprovalItem[]; readonly state: ApprovalRunState }): Promise<void> {
    const items = result.interruptions ?? [];
    await Promise.all(items.map((item) => this.tracker.send(this.approvalEvent('requested', result.state, item, {}), { rethrown: true })));
  }

  /**
   * `state.approve(item, options)`, once an `approval_granted` event for it
   * (approver, tool name, call id and arguments, agent, trace and session)
   * is stored. If it cannot be stored the promise rejects and the state is
   * left as it was: the call stays pending, and a resumed run asks again.
   */
  async approveAudited(state: ApprovalRunState, item: RunToolApprovalItem, decision: ApprovalDecision & { alwaysApprove?: boolean }): Promise<void> {
    const always = decision.alwaysApprove === true;
    await this.tracker.send(this.approvalEvent('granted', state, item, { decision, always }), { rethrown: true });
    state.approve(item, { alwaysApprove: always });
  }

  /**
   * `state.reject(item, options)`, once an `approval_denied` event for it is
   * stored; as approveAudited(), the state is unchanged if it cannot be.
   * The call's tool_invoked event (outcome denied) follows when the run
   * resumes, as for a plain reject().
   */
  async rejectAudited(state: ApprovalRunState, item: RunToolApprovalItem, decision: ApprovalDecision & { alwaysReject?: boolean; message?: string }): Promise<void> {
    const always = decision.alwaysReject === true;
    await this.tracker.send(this.approvalEvent('denied', state, item, { decision, always, message: decision.message }), { rethrown: true });
    state.reject(item, compact({ alwaysReject: always, message: decision.message }));
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

  private approvalEvent(
    status: 'requested' | 'granted' | 'denied',
    state: ApprovalRunState,
    item: RunToolApprovalItem,
    opts: { decision?: ApprovalDecision; always?: boolean; message?: string },
  ): ClientEvent {
    // a run with tracing off has a no-op trace (its toJSON() is null) or none: no ids to link to
    const trace = state._trace && state._trace.toJSON() !== null ? state._trace : undefined;
    const traceId = str(trace?.traceId);
    const known = traceId === undefined ? undefined : this.traces.get(traceId);
    const raw = item.rawItem as { type: string; callId?: unknown; id?: unknown; providerData?: Record<string, unknown> };
    // the call id the SDK's RunContext keys a decision by
    const callId = str(raw.callId) ?? str(raw.id) ?? str(raw.providerData?.['itemId']) ?? str(raw.providerData?.['id']);
    const args = str(item.arguments);
    return approval(
      compact({
        trace_id: traceId,
        session_id: str(trace?.groupId) ?? known?.groupId,
        agent: str(item.agent?.name) === undefined ? undefined : { name: item.agent.name },
        actor: opts.decision?.actor,
        tool: compact({ name: str(item.name) ?? raw.type, call_id: callId, arguments: args === undefined ? undefined : parseJsonText(args) }),
        approval: compact({ status, approver: opts.decision?.approver }),
        details: compact({ workflow: str(trace?.name) ?? known?.name, always: opts.always === true ? true : undefined, message: opts.message }),
      }),
    );
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
      case 'generation': {
        // OpenAIChatCompletionsModel sets no usage on its span: the model,
        // usage and id are on the completion it keeps as the span's output
        // (when the run includes sensitive data in its traces)
        const completion = chatCompletion(data.output);
        const served = str(completion?.['model']);
        const id = str(completion?.['id']);
        return event(
          'model_called',
          { model: compact({ name: served ?? str(data.model) }) },
          {
            response_id: id === CHAT_STREAM_PLACEHOLDER_ID ? undefined : id,
            usage: data.usage ?? chatUsage(completion?.['usage']),
            requested_model: served !== undefined && served !== data.model ? data.model : undefined,
            model_config: data.model_config,
            ...(this.modelContent ? { input: data.input, output: data.output } : {}),
          },
        );
      }
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

// the id OpenAIChatCompletionsModel gives a streamed completion when no chunk carried one
const CHAT_STREAM_PLACEHOLDER_ID = 'FAKE_ID';

/** The Chat Completions response a generation span's output holds, if it holds one. */
function chatCompletion(output: unknown): Record<string, unknown> | undefined {
  const first: unknown = Array.isArray(output) ? output[0] : undefined;
  if (typeof first !== 'object' || first === null) return undefined;
  const c = first as Record<string, unknown>;
  return c['object'] === 'chat.completion' ? c : undefined;
}

/**
 * A Chat Completions usage under the names a response span's usage has
 * (input_tokens, output_tokens), so both read alike. All zeros is none: the
 * SDK starts a streamed call's usage at zero and a provider that sends none
 * leaves it so, while a call that ran always counts its prompt.
 */
function chatUsage(usage: unknown): Record<string, unknown> | undefined {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const u = usage as Record<string, unknown>;
  if (!u['prompt_tokens'] && !u['completion_tokens'] && !u['total_tokens']) return undefined;
  return compact({
    input_tokens: u['prompt_tokens'],
    output_tokens: u['completion_tokens'],
    total_tokens: u['total_tokens'],
    input_tokens_details: u['prompt_tokens_details'] ?? undefined,
    output_tokens_details: u['completion_tokens_details'] ?? undefined,
  });
}
