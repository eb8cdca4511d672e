/**
 * The OpenTelemetry GenAI semantic conventions (gen_ai.*, current names and
 * the older ones instrumentations still send) as sealtrail event fields.
 * docs/otlp.md holds the same table for users; change both together.
 *
 * An attribute is taken into a field only when its value fits the field
 * (a non-empty string of at most 65,536 characters for names and ids, an
 * integer for token counts); otherwise it stays under details.attributes,
 * so an odd value never costs the span its record. Only the first of
 * several attributes with the same key is considered.
 */
import { parseJsonText as parseJson } from '../../../core/json-text.js';
import type { Attribute, Json } from './any-value.js';

/** gen_ai.operation.name -> event_type; other operations become `gen_ai.<name>`. */
export const OPERATION_EVENT_TYPES: ReadonlyMap<string, string> = new Map([
  ['execute_tool', 'tool_invoked'],
  ['chat', 'model_called'],
  ['text_completion', 'model_called'],
  ['generate_content', 'model_called'],
  ['embeddings', 'embeddings_created'],
  ['invoke_agent', 'agent_invoked'],
  ['create_agent', 'agent_created'],
]);

export const ATTR = {
  operation: 'gen_ai.operation.name',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  toolArguments: 'gen_ai.tool.call.arguments',
  toolResult: 'gen_ai.tool.call.result',
  toolType: 'gen_ai.tool.type',
  toolDescription: 'gen_ai.tool.description',
  provider: 'gen_ai.provider.name',
  /** older name of gen_ai.provider.name */
  system: 'gen_ai.system',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  agentId: 'gen_ai.agent.id',
  agentName: 'gen_ai.agent.name',
  agentDescription: 'gen_ai.agent.description',
  agentVersion: 'gen_ai.agent.version',
  conversationId: 'gen_ai.conversation.id',
  /** general session id, used when gen_ai.conversation.id is absent */
  sessionId: 'session.id',
  enduserId: 'enduser.id',
  /** newer general name, used when enduser.id is absent */
  userId: 'user.id',
  tenantId: 'tenant.id',
  errorType: 'error.type',
  /** log records: the event name before LogRecord.event_name existed */
  eventName: 'event.name',
} as const;

/** Token counts -> details.usage members; an older name is used only when the newer one is absent. */
const USAGE: ReadonlyArray<readonly [string, string]> = [
  ['gen_ai.usage.input_tokens', 'input_tokens'],
  ['gen_ai.usage.prompt_tokens', 'input_tokens'],
  ['gen_ai.usage.output_tokens', 'output_tokens'],
  ['gen_ai.usage.completion_tokens', 'output_tokens'],
  ['gen_ai.usage.cache_read.input_tokens', 'cache_read_input_tokens'],
  ['gen_ai.usage.cache_creation.input_tokens', 'cache_creation_input_tokens'],
  ['gen_ai.usage.reasoning.output_tokens', 'reasoning_output_tokens'],
];

/** Every attribute key mapGenAi looks at, each with its slot. */
const MAPPED_KEYS: ReadonlyMap<string, number> = new Map([...Object.values(ATTR), ...USAGE.map(([key]) => key)].map((key, i) => [key, i]));

const slot = (key: string): number => MAPPED_KEYS.get(key)!;
const S = Object.fromEntries(Object.entries(ATTR).map(([name, key]) => [name, slot(key)])) as { readonly [K in keyof typeof ATTR]: number };
const USAGE_SLOTS: ReadonlyArray<readonly [number, string]> = USAGE.map(([key, member]) => [slot(key), member]);

// Scratch state of one call: mapGenAi never re-enters itself, so one set
// serves every call and a span allocates none of it (with closures and
// arrays made per span, this took ~1.9 µs of a span's ~7 µs of mapping in
// a profile; ~0.7 µs without).
/** where each mapped key first occurs in the call's attributes, -1 for nowhere */
const FIRST = new Int32Array(MAPPED_KEYS.size);
/** 1 at the indices of the attributes taken into a field */
let taken = new Uint8Array(64);
let current: readonly Attribute[] = [];

const MAX_EVENT_TYPE = 128;
const MAX_FIELD = 65_536;

export function eventTypeForOperation(operation: string): string {
  const known = OPERATION_EVENT_TYPES.get(operation);
  if (known) return known;
  const name = `gen_ai.${operation}`;
  return name.length <= MAX_EVENT_TYPE ? name : 'gen_ai.other';
}

/** A value usable as a string field of the record, else undefined. */
export function fieldString(v: Json | undefined): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD ? v : undefined;
}

/** What the gen_ai (and identity) attributes of one span or log record map to. */
export interface GenAiFields {
  /** gen_ai.operation.name when usable */
  operation?: string;
  /** event fields: action, tenant, actor, agent, tool, model, session_id */
  fields: Record<string, unknown>;
  /** error.type, when present (any value); its presence makes a span's outcome `error` */
  errorType?: Json;
  usage?: Record<string, number>;
  /** the attributes no field took, in their order */
  rest: Attribute[];
}

function peek(s: number): Json | undefined {
  const i = FIRST[s]!;
  return i === -1 ? undefined : current[i]!.value;
}

function take(s: number): void {
  const i = FIRST[s]!;
  if (i !== -1) taken[i] = 1;
}

/** The first of the slots `s` and `older` with a usable string, taken. */
function takeString(s: number, older = -1): string | undefined {
  const v = fieldString(peek(s));
  if (v !== undefined) {
    take(s);
    return v;
  }
  return older === -1 ? undefined : takeString(older);
}

function resourceTenant(resourceAttrs: readonly Attribute[]): string | undefined {
  for (const a of resourceAttrs) if (a.key === ATTR.tenantId) return fieldString(a.value);
  return undefined;
}

/**
 * Picks the mapped attributes out of `attrs`. `resourceAttrs` is consulted
 * for tenant.id only (a deployment-wide value usually set on the resource);
 * the resource itself is kept whole elsewhere.
 */
export function mapGenAi(attrs: readonly Attribute[], resourceAttrs: readonly Attribute[]): GenAiFields {
  current = attrs;
  FIRST.fill(-1);
  for (let i = 0; i < attrs.length; i++) {
    const s = MAPPED_KEYS.get(attrs[i]!.key);
    if (s !== undefined && FIRST[s] === -1) FIRST[s] = i;
  }
  if (taken.length < attrs.length) taken = new Uint8Array(attrs.length * 2);
  else taken.fill(0, 0, attrs.length);
  try {
    return pick(attrs, resourceAttrs);
  } finally {
    current = [];
  }
}

function pick(attrs: readonly Attribute[], resourceAttrs: readonly Attribute[]): GenAiFields {
  const out: GenAiFields = { fields: {}, rest: [] };
  const f = out.fields;

  const operation = takeString(S.operation);
  if (operation !== undefined) {
    out.operation = operation;
    f.action = operation;
  }

  const tenant = takeString(S.tenantId) ?? resourceTenant(resourceAttrs);
  if (tenant !== undefined) f.tenant = tenant;

  const actorId = takeString(S.enduserId, S.userId);
  if (actorId !== undefined) f.actor = { id: actorId, type: 'user' };

  let agent: Record<string, string> | undefined;
  const agentId = takeString(S.agentId);
  if (agentId !== undefined) (agent ??= {}).id = agentId;
  const agentName = takeString(S.agentName);
  if (agentName !== undefined) (agent ??= {}).name = agentName;
  const agentDescription = takeString(S.agentDescription);
  if (agentDescription !== undefined) (agent ??= {}).description = agentDescription;
  const agentVersion = takeString(S.agentVersion);
  if (agentVersion !== undefined) (agent ??= {}).version = agentVersion;
  if (agent) f.agent = agent;

  // tool.name is required by the record, so the other tool members are taken only with it
  const toolName = takeString(S.toolName);
  if (toolName !== undefined) {
    const tool: Record<string, unknown> = { name: toolName };
    const callId = takeString(S.toolCallId);
    if (callId !== undefined) tool.call_id = callId;
    const args = peek(S.toolArguments);
    if (args !== undefined && args !== null) {
      take(S.toolArguments);
      tool.arguments = parseJsonText(args);
    }
    const result = peek(S.toolResult);
    if (result !== undefined && result !== null) {
      take(S.toolResult);
      tool.result = parseJsonText(result);
    }
    const type = takeString(S.toolType);
    if (type !== undefined) tool.type = type;
    const description = takeString(S.toolDescription);
    if (description !== undefined) tool.description = description;
    f.tool = tool;
  }

  const provider = takeString(S.provider, S.system);
  const requested = takeString(S.requestModel);
  const responded = takeString(S.responseModel);
  const name = responded ?? requested;
  if (provider !== undefined || name !== undefined) {
    const model: Record<string, string> = {};
    if (provider !== undefined) model.provider = provider;
    if (name !== undefined) model.name = name;
    if (requested !== undefined && responded !== undefined && requested !== responded) {
      model.request_name = requested;
      model.response_name = responded;
    }
    f.model = model;
  }

  const session = takeString(S.conversationId, S.sessionId);
  if (session !== undefined) f.session_id = session;

  const errorType = peek(S.errorType);
  if (errorType !== undefined && errorType !== null && errorType !== '') {
    take(S.errorType);
    out.errorType = errorType;
  }

  for (const [s, member] of USAGE_SLOTS) {
    const v = peek(s);
    if (typeof v !== 'number' || !Number.isInteger(v) || (out.usage && Object.hasOwn(out.usage, member))) continue;
    take(s);
    (out.usage ??= {})[member] = v;
  }

  const rest: Attribute[] = [];
  for (let i = 0; i < attrs.length; i++) if (taken[i] === 0) rest.push(attrs[i]!);
  out.rest = rest;
  return out;
}

/** Tool arguments and results sent as JSON text: parsed as core/json-text.ts says. */
export function parseJsonText(v: Json): Json {
  return parseJson(v) as Json;
}
