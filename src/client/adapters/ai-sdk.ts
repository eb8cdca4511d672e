/**
 * `sealtrail/client/ai-sdk`: audit events from the Vercel AI SDK's own
 * telemetry, with no change to the calls beyond passing the settings:
 *
 *   const audit = aiSdkTelemetry(client, { agent: { id: 'support' } });
 *   await generateText({ model, tools, prompt, experimental_telemetry: audit });
 *
 * The settings carry a tracer (ai-sdk-tracer.ts) that turns the spans the AI
 * SDK (checked against ai 6.0) starts into events when they end:
 *
 * - `ai.toolCall` → `tool_invoked` (ai.toolCall.name, .id, .args, .result);
 * - `ai.{generateText,streamText,generateObject,streamObject}.{doGenerate,doStream}`
 *   → `model_called` (ai.model.provider/.id, gen_ai.usage.*, finish reason,
 *   response id, the tool calls the model asked for);
 * - the call around them, `ai.generateText` etc. → `agent_invoked` (the
 *   tool loop: model, total usage);
 * - `ai.embed.doEmbed`, `ai.embedMany.doEmbed` → `embeddings_created`;
 * - a span with an error status → outcome error, details.error.
 *
 * Tool approvals have no span: the settings also carry a telemetry
 * integration, and ai-sdk-approvals.ts makes `approval_requested` of the
 * requests a step produced and `approval_granted` / `approval_denied` of
 * the answers the next call's messages carry.
 *
 * Only types come from @opentelemetry/api: nothing of OpenTelemetry is
 * loaded, and no global provider is needed or touched.
 */
import type { AttributeValue, Tracer } from '@opentelemetry/api';
import type { ClientEvent } from '../types.js';
import { ApprovalRecorder, contextFromAttributes, MODEL_CALL, OUTER, type AiSdkIntegration } from './ai-sdk-approvals.js';
import { CollectingTracer, type CollectingSpan, type FinishedSpan } from './ai-sdk-tracer.js';
import { compact, EmitTracker, parseJsonText, str, type AdapterOptions } from './shared.js';
import { ClientError } from '../errors.js';

export type { AiSdkIntegration } from './ai-sdk-approvals.js';

export interface AiSdkOptions extends AdapterOptions {
  /**
   * Tool and model calls start only once every earlier event is stored, and
   * generateText/generateObject reject (with the client's error) if an
   * event of the call could not be stored (default false; docs/client.md).
   */
  failClosed?: boolean;
  /** Keep prompts and completions (ai.prompt.messages, ai.response.text/object) under details (default false: bulky). */
  modelContent?: boolean;
  /** passed on to the AI SDK: groups the telemetry of a function, kept in details.function_id */
  functionId?: string;
  /** passed on to the AI SDK; `session_id`, `thread_id` or `conversation_id` here sets the events' session_id */
  metadata?: Record<string, AttributeValue>;
  /**
   * passed on to the AI SDK (default true): without inputs there are no
   * prompts, approval answers are read from the call's start without their
   * reason, and generateText's answers carry no trace_id (docs/client.md)
   */
  recordInputs?: boolean;
  /** passed on to the AI SDK (default true): without outputs, tool arguments and results are not recorded (the AI SDK records ai.toolCall.args as an output) */
  recordOutputs?: boolean;
}

/** The AI SDK's telemetry settings, with what the application needs to check the audit. */
export interface AiSdkTelemetry {
  isEnabled: true;
  tracer: Tracer;
  functionId?: string;
  metadata?: Record<string, AttributeValue>;
  recordInputs?: boolean;
  recordOutputs?: boolean;
  /** how the approvals reach the audit: keep it when adding integrations of your own */
  integrations: AiSdkIntegration[];
  /** Resolves once every event so far is stored; rejects with the first failure not yet reported here. */
  audited(): Promise<void>;
  /** Resolves once every event sent so far has settled; never rejects. */
  flush(): Promise<void>;
  /** the latest emit failure */
  readonly lastError: unknown;
  /** events that could not be stored */
  readonly failures: number;
}

const EMBED = /^ai\.(embed|embedMany)\.doEmbed$/;

const num = (v: AttributeValue | undefined): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The AI SDK's telemetry settings that record every call they are passed to through `client`. */
export function aiSdkTelemetry(client: AdapterOptions['client'], options: Omit<AiSdkOptions, 'client'> = {}): AiSdkTelemetry {
  if (typeof client?.emit !== 'function') throw new ClientError('client_options_invalid', 'aiSdkTelemetry: client must have an emit() method (an AuditClient)');
  const tracker = new EmitTracker(client, options, options.onError);
  const failClosed = options.failClosed === true;
  const map = (s: FinishedSpan): ClientEvent | undefined => spanToEvent(s, options.modelContent === true, options.errorMessage !== false);
  // the recorder needs the tracer (its active span) and the tracer's hooks need the recorder
  let approvals: ApprovalRecorder | undefined;
  const tracer = new CollectingTracer({
    onStart(span) {
      approvals?.onSpanStart(span);
    },
    onEnd(span) {
      approvals?.onSpanEnd(span);
      let event: ClientEvent | undefined;
      try {
        event = map(span);
      } catch {
        // a span of a shape this version does not know must not reach the AI SDK
        return;
      }
      if (event) void tracker.emit(event);
    },
    wrapActive: failClosed ? (span, run) => gated(tracker, span, run) : undefined,
    traceId: options.trace_id === undefined ? undefined : () => options.trace_id as string,
  });
  approvals = new ApprovalRecorder(tracer, (event) => void tracker.emit(event), { recordInputs: options.recordInputs !== false, recordOutputs: options.recordOutputs !== false });
  return {
    isEnabled: true,
    tracer,
    integrations: [approvals.integration],
    ...compact({ functionId: options.functionId, metadata: options.metadata, recordInputs: options.recordInputs, recordOutputs: options.recordOutputs }),
    audited: () => tracker.audited(),
    flush: () => tracker.flush(),
    get lastError() {
      return tracker.lastError;
    },
    get failures() {
      return tracker.failures;
    },
  };
}

/**
 * failClosed: a tool or model call's function runs only after the gate
 * (every earlier event settled, none of this trace failed); the outer
 * call's result is handed back only after the same check, its own event
 * included. The AI SDK awaits what startActiveSpan returns, so a rejection
 * here fails the call: the tool never runs.
 */
function gated(tracker: EmitTracker, span: CollectingSpan, run: () => unknown): unknown {
  const name = span.spanName;
  const trace = span.spanContext().traceId;
  if (name === 'ai.toolCall' || MODEL_CALL.test(name)) return tracker.gate(trace).then(run);
  if (!OUTER.test(name) || span.parentSpanId !== undefined) return run();
  const result = run();
  if (!(result instanceof Promise)) return result;
  return result.then(
    async (value: unknown) => {
      try {
        await tracker.gate(trace);
      } finally {
        tracker.forgetTrace(trace);
      }
      return value;
    },
    (err: unknown) => {
      tracker.forgetTrace(trace);
      throw err;
    },
  );
}

/** The event for a finished span of the AI SDK, or undefined for a span that is not recorded. */
export function spanToEvent(span: FinishedSpan, modelContent: boolean, errorMessage: boolean): ClientEvent | undefined {
  const a = span.attributes;
  const ctx = contextFromAttributes(a);
  const failed = span.status.code === 2;
  const exc = span.exceptions[0];
  const error = failed ? (errorMessage ? compact({ name: exc?.name, message: exc?.message ?? str(span.status.message) }) : compact({ name: exc?.name ?? 'Error' })) : undefined;
  const base: Omit<ClientEvent, 'event_type'> = compact({
    time: new Date(span.startTime).toISOString(),
    trace_id: span.traceId,
    span_id: span.spanId,
    session_id: ctx.session_id,
    agent: ctx.agent,
    outcome: failed ? 'error' : 'success',
  });
  const details = (more: Record<string, unknown>): Record<string, unknown> =>
    compact({ parent_span_id: span.parentSpanId, ended_at: new Date(span.endTime).toISOString(), function_id: ctx.function_id, ...compact(more), error });
  const model = compact({ provider: str(a['ai.model.provider']), name: str(a['ai.model.id']) });
  const usage = (): Record<string, unknown> | undefined => {
    const u = compact({
      input_tokens: num(a['gen_ai.usage.input_tokens']) ?? num(a['ai.usage.inputTokens']),
      output_tokens: num(a['gen_ai.usage.output_tokens']) ?? num(a['ai.usage.outputTokens']),
      total_tokens: num(a['ai.usage.totalTokens']),
    });
    return Object.keys(u).length > 0 ? u : undefined;
  };
  const name = span.name;
  if (name === 'ai.toolCall') {
    const toolName = str(a['ai.toolCall.name']);
    if (toolName === undefined) return undefined;
    return {
      ...base,
      event_type: 'tool_invoked',
      tool: compact({ name: toolName, call_id: str(a['ai.toolCall.id']), arguments: parseJsonText(a['ai.toolCall.args']) }),
      details: details({ output: parseJsonText(a['ai.toolCall.result']) }),
    };
  }
  if (MODEL_CALL.test(name)) {
    const calls = parseJsonText(a['ai.response.toolCalls']);
    const toolCalls = Array.isArray(calls) ? calls.map((c: { toolName?: unknown; toolCallId?: unknown }) => compact({ name: str(c?.toolName), id: str(c?.toolCallId) })) : undefined;
    const responseModel = str(a['ai.response.model']);
    return {
      ...base,
      event_type: 'model_called',
      action: name,
      model: responseModel && responseModel !== model.name ? { ...model, response_model: responseModel } : model,
      details: details({
        usage: usage(),
        finish_reason: str(a['ai.response.finishReason']),
        response_id: str(a['ai.response.id']),
        tool_calls: toolCalls,
        ...(modelContent ? { input: parseJsonText(a['ai.prompt.messages']), output: a['ai.response.text'] ?? parseJsonText(a['ai.response.object']) } : {}),
      }),
    };
  }
  if (OUTER.test(name)) {
    return { ...base, event_type: 'agent_invoked', action: name, model, details: details({ usage: usage(), finish_reason: str(a['ai.response.finishReason']) }) };
  }
  if (EMBED.test(name)) {
    return { ...base, event_type: 'embeddings_created', action: name, model, details: details({ usage: compact({ tokens: num(a['ai.usage.tokens']) }) }) };
  }
  return undefined;
}
