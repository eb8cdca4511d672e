/**
 * What AuditCollector and the framework adapters share: the emit() shape they
 * send through, the common context merged into every event, the error
 * details they record, and the default mapping of an agent's steps to
 * events (docs/client.md, "AuditCollector").
 */
import { isPlainObject } from '../core/plain-object.js';
import { approval, decision, modelCall, toolCall } from './events.js';
import type { ActorInput, AgentInput, ClientEvent, EmitResult, OutcomeInput } from './types.js';

/**
 * Where events go: an AuditClient, or anything with the same emit(). Typed
 * structurally so a test, a fan-out or a wrapper that adds fields can stand
 * in for the client.
 */
export interface EventSink {
  emit(event: ClientEvent): Promise<EmitResult>;
}

/**
 * Fields merged into every event: each fills in a field the event does not
 * set. A field the event sets wins whole (an event's `agent` is not merged
 * member by member with this one, which could pair one agent's id with
 * another's name).
 */
export interface EventContext {
  agent?: AgentInput;
  actor?: ActorInput;
  session_id?: string;
  trace_id?: string;
  tenant?: string;
}

const CONTEXT_KEYS = ['agent', 'actor', 'session_id', 'trace_id', 'tenant'] as const;

/** The event with the context's fields filled in where it has none. */
export function withContext(event: ClientEvent, ctx: EventContext): ClientEvent {
  const out: ClientEvent = { ...event };
  for (const k of CONTEXT_KEYS) {
    const v = ctx[k];
    if (v !== undefined && (out[k] === undefined || out[k] === null)) Object.assign(out, { [k]: v });
  }
  return out;
}

/** Longest error message kept in an event: enough to diagnose, not a dumped payload. */
const MAX_MESSAGE = 2000;

/**
 * What an event says about an error: its name, a string `code` when it has
 * one, and (unless `message: false`) its message cut to 2000 characters.
 * Never the stack: file paths and frames are not audit data, and they are
 * long. The message may quote user data; the sidecar's redaction rules run
 * on details like on every field, which is why it is kept by default.
 */
export function errorDetails(err: unknown, opts: { message?: boolean } = {}): Record<string, unknown> {
  const e = err instanceof Error ? err : undefined;
  const out: Record<string, unknown> = { name: e ? e.name : typeof err };
  const code = e && 'code' in e ? (e as { code?: unknown }).code : undefined;
  if (typeof code === 'string') out['code'] = code;
  if (opts.message !== false) {
    const message = e ? e.message : typeof err === 'string' ? err : undefined;
    if (message !== undefined) out['message'] = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
  }
  return out;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** The first of `keys` of `o` holding a non-empty string. */
function pick(o: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const k of keys) {
    const v = str(o[k]);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Fields a step may carry for any kind of event, copied when they have the right type. */
function common(step: Record<string, unknown>): Omit<ClientEvent, 'event_type'> {
  const out: Omit<ClientEvent, 'event_type'> = {};
  const agent = step['agent'];
  if (isPlainObject(agent)) out.agent = agent as AgentInput;
  else if (str(agent)) out.agent = { name: agent as string };
  for (const k of ['session_id', 'trace_id', 'span_id', 'action', 'outcome'] as const) {
    const v = str(step[k]);
    if (v !== undefined) Object.assign(out, { [k]: v });
  }
  if (isPlainObject(step['actor']) && str(step['actor']['id'])) out.actor = step['actor'] as ActorInput;
  const t = step['time'];
  if (typeof t === 'string' || typeof t === 'number' || t instanceof Date) out.time = t;
  if (step['error'] !== undefined && step['error'] !== null && out.outcome === undefined) out.outcome = 'error';
  return out;
}

/** `type` as a key: lower case, `-` as `_` (`tool-call` and `tool_call` are one kind). */
const kindOf = (step: Record<string, unknown>): string | undefined => str(step['type'])?.toLowerCase().replace(/-/g, '_');

/**
 * The default `toEvent`. Recognised steps (any other value is skipped):
 *
 * - an object with a string `event_type`: already an event, sent as it is;
 * - `type: 'tool_call' | 'tool'` with a tool name in `name`, `toolName`,
 *   `tool_name` or `tool` (a string or `{ name }`): `tool_invoked`, the
 *   arguments from `arguments`, `args` or `input`, the call id from
 *   `call_id`, `toolCallId` or `id`, a `result`/`output` under details;
 * - `type: 'tool_result' | 'tool_error'` (a tool's outcome reported apart
 *   from its call, as the AI SDK's fullStream does): `tool_completed`;
 * - `type: 'model_call' | 'llm' | 'model' | 'generation'`: `model_called`,
 *   the model from `model` (a name, or `{ provider, name }`) and
 *   `provider`, `usage` under details;
 * - `type: 'decision' | 'policy'`: `policy_decided` (decision(): a `deny`
 *   is outcome denied), from `policy` or `decision` and `rule`;
 * - `type: 'approval' | 'tool_approval_request'`: approval(), `status`
 *   (default `requested`) and `approver` from the step or its `approval`,
 *   the tool waiting for it from `toolCall: { toolName, input, toolCallId }`;
 * - `type: 'handoff'`: `agent_handoff`, `to` / `to_agent` under details.
 *
 * Every kind also takes `agent` (an object, or a name), `actor`,
 * `session_id`, `trace_id`, `span_id`, `action`, `outcome`, `time` from the
 * step; a step with an `error` is outcome `error` unless it says otherwise.
 */
export function defaultStepToEvent(step: unknown): ClientEvent | undefined {
  if (!isPlainObject(step)) return undefined;
  if (str(step['event_type'])) return step as unknown as ClientEvent;
  const details: Record<string, unknown> = {};
  const err = step['error'];
  if (err !== undefined && err !== null) details['error'] = err instanceof Error ? errorDetails(err) : err;
  const event = mapKind(kindOf(step), step, common(step), details);
  if (event === undefined || Object.keys(details).length === 0) return event;
  return { ...event, details: { ...details, ...(event.details ?? {}) } };
}

/** One recognised kind of step as an event; `details` collects what goes under details. */
function mapKind(kind: string | undefined, step: Record<string, unknown>, base: Omit<ClientEvent, 'event_type'>, details: Record<string, unknown>): ClientEvent | undefined {
  switch (kind) {
    case 'tool_call':
    case 'tool':
    case 'tool_result':
    case 'tool_error': {
      const t = step['tool'];
      const name = pick(step, 'name', 'toolName', 'tool_name') ?? str(t) ?? (isPlainObject(t) ? str(t['name']) : undefined);
      if (name === undefined) return undefined;
      const args = step['arguments'] ?? step['args'] ?? step['input'];
      const callId = pick(step, 'call_id', 'toolCallId', 'tool_call_id', 'id');
      const result = step['result'] ?? step['output'];
      if (result !== undefined) details['output'] = result;
      const completed = kind === 'tool_result' || kind === 'tool_error';
      const outcome: OutcomeInput | undefined = base.outcome ?? (kind === 'tool_error' ? 'error' : completed ? 'success' : undefined);
      return toolCall({
        ...base,
        ...(outcome === undefined ? {} : { outcome }),
        ...(completed ? { event_type: 'tool_completed' } : {}),
        tool: { name, ...(args === undefined ? {} : { arguments: args }), ...(callId === undefined ? {} : { call_id: callId }) },
      });
    }
    case 'model_call':
    case 'llm':
    case 'model':
    case 'generation': {
      const m = step['model'];
      const model: Record<string, unknown> = isPlainObject(m) ? { ...m } : {};
      const name = str(m) ?? pick(step, 'model_name', 'modelId');
      if (name !== undefined) model['name'] = name;
      const provider = pick(step, 'provider');
      if (provider !== undefined && model['provider'] === undefined) model['provider'] = provider;
      if (step['usage'] !== undefined) details['usage'] = step['usage'];
      return modelCall({ ...base, model });
    }
    case 'decision':
    case 'policy': {
      const p = step['policy'];
      const policy: Record<string, unknown> = isPlainObject(p) ? { ...p } : {};
      const d = pick(step, 'decision');
      const rule = pick(step, 'rule');
      if (d !== undefined && policy['decision'] === undefined) policy['decision'] = d;
      if (rule !== undefined && policy['rule'] === undefined) policy['rule'] = rule;
      return decision({ ...base, policy });
    }
    case 'approval':
    case 'tool_approval_request': {
      const a = isPlainObject(step['approval']) ? step['approval'] : step;
      const approver = str(a['approver']);
      // the AI SDK's tool-approval-request part names the call waiting for approval in toolCall
      const call = isPlainObject(step['toolCall']) ? step['toolCall'] : undefined;
      const toolName = call ? str(call['toolName']) : undefined;
      const tool = call && toolName ? { tool: { name: toolName, arguments: call['input'], ...(str(call['toolCallId']) ? { call_id: call['toolCallId'] } : {}) } } : {};
      return approval({ ...base, ...tool, approval: { status: str(a['status']) ?? 'requested', ...(approver === undefined ? {} : { approver }) } });
    }
    case 'handoff': {
      const to = pick(step, 'to', 'to_agent');
      if (to !== undefined) details['to_agent'] = to;
      const from = pick(step, 'from', 'from_agent');
      return { ...base, ...(base.agent === undefined && from !== undefined ? { agent: { name: from } } : {}), event_type: 'agent_handoff' };
    }
    default:
      return undefined;
  }
}
