/**
 * Tool approvals (`needsApproval`, AI SDK 6) from what the AI SDK hands a
 * telemetry setting. No span is started for an approval, so:
 *
 * - a request is made by generateText/streamText after the model call that
 *   asked for the tool, and appears only in the step's content: the
 *   `tool-approval-request` parts ({ approvalId, toolCall }) the telemetry
 *   integration's onStepFinish receives;
 * - the application's answer arrives as a `tool-approval-response` part
 *   ({ approvalId, approved, reason }) in the last message of the next call,
 *   which the call's span carries in `ai.prompt` when inputs are recorded
 *   (the integration's onStart receives the same messages in any case).
 *
 * Which answers count mirrors the AI SDK (collectToolApprovals): only those
 * in a last message of role `tool`, with a matching request and tool call in
 * an assistant message, and no tool result for that call in the same
 * message; the first answer for a tool call wins. An answer in an older
 * message was acted on by an earlier call, so history resent with a new
 * user message records nothing; an approval id already recorded by this
 * telemetry object is not recorded again (a retried call).
 */
import type { Attributes } from '@opentelemetry/api';
import { approval } from '../events.js';
import type { ClientEvent } from '../types.js';
import type { CollectingSpan, CollectingTracer, FinishedSpan } from './ai-sdk-tracer.js';
import { compact, str } from './shared.js';

/** the span of a call (the tool loop around the model and tool calls) */
export const OUTER = /^ai\.(generateText|streamText|generateObject|streamObject)$/;
/** the span of one model call of it */
export const MODEL_CALL = /^ai\.(generateText|streamText|generateObject|streamObject)\.(doGenerate|doStream)$/;
const SESSION_KEYS = ['session_id', 'thread_id', 'conversation_id'];
/** approval ids remembered per kind (requested, answered); the oldest is forgotten first */
const MAX_SEEN = 10_000;
/** model calls whose span has not ended; one that never ends must not make this grow for ever */
const MAX_LIVE = 1_000;

/** What every event of a call carries from the telemetry settings: session, agent, function id. */
export interface CallContext {
  session_id?: string;
  agent?: { id?: string; name?: string };
  function_id?: string;
}

function context(meta: (key: string) => string | undefined, functionId: unknown): CallContext {
  const name = meta('agent_name');
  const id = meta('agent_id');
  return compact({
    session_id: SESSION_KEYS.map(meta).find((v) => v !== undefined),
    agent: name || id ? compact({ id, name }) : undefined,
    function_id: str(functionId),
  });
}

/** The call context from a span's attributes (`ai.telemetry.metadata.*`, `ai.telemetry.functionId`). */
export function contextFromAttributes(a: Readonly<Attributes>): CallContext {
  return context((k) => str(a[`ai.telemetry.metadata.${k}`]), a['ai.telemetry.functionId']);
}

/** The call context from a callback event's `metadata` and `functionId`. */
function contextFromEvent(event: Record<string, unknown>): CallContext {
  const m = isObject(event['metadata']) ? event['metadata'] : {};
  return context((k) => str(m[k]), event['functionId']);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An answer the AI SDK acts on, with the tool call it answers. */
export interface ApprovalAnswer {
  approvalId: string;
  approved: boolean;
  reason?: string;
  toolCallId: string;
  toolName: string;
  input: unknown;
}

/** The approval answers a call's messages carry that the AI SDK acts on (see the file's comment). */
export function approvalAnswers(messages: unknown): ApprovalAnswer[] {
  if (!Array.isArray(messages)) return [];
  const last: unknown = messages.at(-1);
  if (!isObject(last) || last['role'] !== 'tool' || !Array.isArray(last['content'])) return [];
  const calls = new Map<string, { toolName: string; input: unknown }>();
  const requests = new Map<string, string>();
  for (const m of messages) {
    if (!isObject(m) || m['role'] !== 'assistant' || !Array.isArray(m['content'])) continue;
    for (const p of m['content'] as unknown[]) {
      if (!isObject(p)) continue;
      const callId = str(p['toolCallId']);
      if (callId === undefined) continue;
      const toolName = str(p['toolName']);
      if (p['type'] === 'tool-call' && toolName !== undefined) calls.set(callId, { toolName, input: p['input'] });
      const approvalId = str(p['approvalId']);
      if (p['type'] === 'tool-approval-request' && approvalId !== undefined) requests.set(approvalId, callId);
    }
  }
  const parts = (last['content'] as unknown[]).filter(isObject);
  const answered = new Set(parts.filter((p) => p['type'] === 'tool-result').map((p) => str(p['toolCallId'])));
  const out: ApprovalAnswer[] = [];
  for (const p of parts) {
    const approvalId = str(p['approvalId']);
    if (p['type'] !== 'tool-approval-response' || approvalId === undefined || typeof p['approved'] !== 'boolean') continue;
    // an unknown approval or tool call fails the AI SDK's call: the call's error event tells
    const callId = requests.get(approvalId);
    const call = callId === undefined ? undefined : calls.get(callId);
    if (callId === undefined || call === undefined || answered.has(callId)) continue;
    answered.add(callId);
    out.push(compact({ approvalId, approved: p['approved'], reason: str(p['reason']), toolCallId: callId, toolName: call.toolName, input: call.input }));
  }
  return out;
}

/** The messages of a call's `ai.prompt` attribute (the JSON of { system, prompt, messages }). */
function promptMessages(text: unknown): unknown {
  // parsing a long conversation on every call is wasted unless it holds an answer
  if (typeof text !== 'string' || !text.includes('tool-approval-response')) return undefined;
  try {
    const p = JSON.parse(text) as unknown;
    if (!isObject(p)) return undefined;
    return Array.isArray(p['messages']) ? p['messages'] : p['prompt'];
  } catch {
    return undefined;
  }
}

/** A Set that forgets its oldest member beyond `max`. */
class BoundedSet {
  private readonly items = new Set<string>();
  constructor(private readonly max: number) {}
  /** Adds the value; false if it was there already. */
  add(v: string): boolean {
    if (this.items.has(v)) return false;
    if (this.items.size >= this.max) this.items.delete(this.items.values().next().value as string);
    this.items.add(v);
    return true;
  }
}

/** Where an approval event belongs: the call's trace and span, and its context. */
interface Origin {
  trace_id?: string;
  /** the span of the call (ai.generateText etc.) */
  parent_span_id?: string;
  ctx: CallContext;
}

export interface ApprovalRecorderOptions {
  /** the AI SDK's recordInputs: false keeps the answers' reasons out, and the answers are read from onStart */
  recordInputs: boolean;
  /** the AI SDK's recordOutputs: false keeps the tool's arguments out of a request, as it does with ai.toolCall.args */
  recordOutputs: boolean;
}

/** The telemetry integration the AI SDK calls (a structural subset of its TelemetryIntegration). */
export interface AiSdkIntegration {
  onStart(event: unknown): void;
  onStepFinish(event: unknown): void;
}

/**
 * Turns approval requests and answers into events for `send`. It is told
 * of the tracer's spans (onSpanStart/onSpanEnd) and is the AI SDK
 * telemetry integration of the settings (`integration`).
 */
export class ApprovalRecorder {
  readonly integration: AiSdkIntegration;
  private readonly requested = new BoundedSet(MAX_SEEN);
  private readonly answered = new BoundedSet(MAX_SEEN);
  /** model calls in flight by span id: a streamed step finishes before its span ends */
  private readonly liveModelCalls = new Map<string, CollectingSpan>();

  constructor(
    private readonly tracer: CollectingTracer,
    private readonly send: (event: ClientEvent) => void,
    private readonly options: ApprovalRecorderOptions,
  ) {
    // the AI SDK ignores what a listener throws, but a listener must not make it wait either
    this.integration = {
      onStart: (event) => this.guard(() => this.onCallStart(event)),
      onStepFinish: (event) => this.guard(() => this.onStepFinish(event)),
    };
  }

  onSpanStart(span: CollectingSpan): void {
    const name = span.spanName;
    if (MODEL_CALL.test(name)) {
      if (this.liveModelCalls.size >= MAX_LIVE) this.liveModelCalls.delete(this.liveModelCalls.keys().next().value as string);
      this.liveModelCalls.set(span.spanContext().spanId, span);
      return;
    }
    // the call's span starts before the tools the answers release run, so the answer is sent first
    if (OUTER.test(name)) this.guard(() => this.recordAnswers(promptMessages(span.attribute('ai.prompt')), this.originOf(span), true));
  }

  onSpanEnd(span: FinishedSpan): void {
    this.liveModelCalls.delete(span.spanId);
  }

  /**
   * Without recorded inputs the call's span has no `ai.prompt`: the answers
   * come from onStart. streamText calls it inside its span; generateText
   * before it, so its answers have no trace of their own.
   */
  private onCallStart(event: unknown): void {
    if (this.options.recordInputs || !isObject(event)) return;
    const messages = Array.isArray(event['messages']) ? event['messages'] : event['prompt'];
    const active = this.tracer.activeSpan();
    const origin = active && OUTER.test(active.spanName) ? this.originOf(active) : { ctx: contextFromEvent(event) };
    this.recordAnswers(messages, origin, false);
  }

  private onStepFinish(event: unknown): void {
    if (!isObject(event) || !Array.isArray(event['content'])) return;
    const requests = (event['content'] as unknown[]).filter((p): p is Record<string, unknown> => isObject(p) && p['type'] === 'tool-approval-request');
    if (requests.length === 0) return;
    const origin = this.stepOrigin(event);
    for (const r of requests) {
      const approvalId = str(r['approvalId']);
      const call = isObject(r['toolCall']) ? r['toolCall'] : {};
      const toolName = str(call['toolName']);
      if (approvalId === undefined || toolName === undefined || !this.requested.add(approvalId)) continue;
      const args = this.options.recordOutputs && call['input'] !== undefined ? { arguments: call['input'] } : {};
      this.send(
        approval({
          ...this.fields(origin),
          action: 'tool-approval-request',
          tool: compact({ name: toolName, call_id: str(call['toolCallId']), ...args }),
          approval: { status: 'requested' },
          details: this.details(origin, { approval_id: approvalId, provider_executed: call['providerExecuted'] === true ? true : undefined }),
        }),
      );
    }
  }

  private recordAnswers(messages: unknown, origin: Origin, withReason: boolean): void {
    for (const a of approvalAnswers(messages)) {
      if (!this.answered.add(a.approvalId)) continue;
      this.send(
        approval({
          ...this.fields(origin),
          action: 'tool-approval-response',
          tool: { name: a.toolName, call_id: a.toolCallId },
          approval: { status: a.approved ? 'granted' : 'denied' },
          details: this.details(origin, { approval_id: a.approvalId, reason: withReason ? a.reason : undefined }),
        }),
      );
    }
  }

  /**
   * The call a finished step belongs to: a streamed step's model call is
   * still open and carries the step's response id; generateText reports
   * the step inside its own span, after the model call's span ended.
   */
  private stepOrigin(event: Record<string, unknown>): Origin {
    const responseId = isObject(event['response']) ? str(event['response']['id']) : undefined;
    if (responseId !== undefined) {
      for (const span of this.liveModelCalls.values()) {
        if (span.attribute('ai.response.id') !== responseId) continue;
        return { trace_id: span.spanContext().traceId, parent_span_id: span.parentSpanId, ctx: contextFromAttributes(span.attributes) };
      }
    }
    const active = this.tracer.activeSpan();
    if (active && OUTER.test(active.spanName)) return this.originOf(active);
    return { ctx: contextFromEvent(event) };
  }

  private originOf(span: CollectingSpan): Origin {
    return { trace_id: span.spanContext().traceId, parent_span_id: span.spanContext().spanId, ctx: contextFromAttributes(span.attributes) };
  }

  private fields(o: Origin): Omit<ClientEvent, 'event_type'> {
    return compact({ time: new Date().toISOString(), trace_id: o.trace_id, session_id: o.ctx.session_id, agent: o.ctx.agent });
  }

  private details(o: Origin, more: Record<string, unknown>): Record<string, unknown> {
    return compact({ parent_span_id: o.parent_span_id, function_id: o.ctx.function_id, ...compact(more) });
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch {
      // a message or part of a shape this version does not know must not reach the AI SDK
    }
  }
}
