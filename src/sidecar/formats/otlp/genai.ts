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

const FIRST = new Int32Array(MAPPED_KEYS.size);

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

/**
 * Picks the mapped attributes out of `attrs`. `resourceAttrs` is consulted
 * for tenant.id only (a deployment-wide value usually set on the resource);
 * the resource itself is kept whole elsewhere.
 */
export function mapGenAi(attrs: readonly Attribute[], resourceAttrs: readonly Attribute[]): GenAiFields {
  // where each mapped key first occurs: one pass over the attributes into a
  // reused array, instead of a Map of every key per span (mapGenAi never
  // re-enters itself, so one scratch array serves every call)
  const first = FIRST.fill(-1);
  for (let i = 0; i < attrs.length; i++) {
    const slot = MAPPED_KEYS.get(attrs[i]!.key);
    if (slot !== undefined && first[slot] === -1) first[slot] = i;
  }
  // indices taken into a field; a plain array: allocating a typed array per span cost more than it saved
  const taken: boolean[] = [];
  const indexOf = (key: string): number => first[MAPPED_KEYS.get(key)!]!;
  const peek = (key: string): Json | undefined => {
    const i = indexOf(key);
    return i === -1 ? undefined : attrs[i]!.value;
  };
  const take = (key: string): void => {
    const i = indexOf(key);
    if (i !== -1) taken[i] = true;
  };
  /** The first of `key` and `older` with a usable string, taken. */
  const takeString = (key: string, older?: string): string | undefined => {
    const s = fieldString(peek(key));
    if (s !== undefined) {
      take(key);
      return s;
    }
    return older === undefined ? undefined : takeString(older);
  };

  const out: GenAiFields = { fields: {}, rest: [] };
  const f = out.fields;

  const operation = takeString(ATTR.operation);
  if (operation !== undefined) {
    out.operation = operation;
    f.action = operation;
  }

  const tenant = takeString(ATTR.tenantId) ?? fieldString(resourceAttrs.find((a) => a.key === ATTR.tenantId)?.value);
  if (tenant !== undefined) f.tenant = tenant;

  const actorId = takeString(ATTR.enduserId, ATTR.userId);
  if (actorId !== undefined) f.actor = { id: actorId, type: 'user' };

  const agent = compact({
    id: takeString(ATTR.agentId),
    name: takeString(ATTR.agentName),
    description: takeString(ATTR.agentDescription),
    version: takeString(ATTR.agentVersion),
  });
  if (agent) f.agent = agent;

  // tool.name is required by the record, so the other tool members are taken only with it
  const toolName = takeString(ATTR.toolName);
  if (toolName !== undefined) {
    const tool: Record<string, unknown> = { name: toolName };
    const callId = takeString(ATTR.toolCallId);
    if (callId !== undefined) tool.call_id = callId;
    for (const [key, member] of [
      [ATTR.toolArguments, 'arguments'],
      [ATTR.toolResult, 'result'],
    ] as const) {
      const v = peek(key);
      if (v === undefined || v === null) continue;
      take(key);
      tool[member] = parseJsonText(v);
    }
    const type = takeString(ATTR.toolType);
    if (type !== undefined) tool.type = type;
    const description = takeString(ATTR.toolDescription);
    if (description !== undefined) tool.description = description;
    f.tool = tool;
  }

  const provider = takeString(ATTR.provider, ATTR.system);
  const requested = takeString(ATTR.requestModel);
  const responded = takeString(ATTR.responseModel);
  const model = compact({
    provider,
    name: responded ?? requested,
    request_name: requested !== undefined && responded !== undefined && requested !== responded ? requested : undefined,
    response_name: requested !== undefined && responded !== undefined && requested !== responded ? responded : undefined,
  });
  if (model) f.model = model;

  const session = takeString(ATTR.conversationId, ATTR.sessionId);
  if (session !== undefined) f.session_id = session;

  const errorType = peek(ATTR.errorType);
  if (errorType !== undefined && errorType !== null && errorType !== '') {
    take(ATTR.errorType);
    out.errorType = errorType;
  }

  for (const [key, member] of USAGE) {
    const v = peek(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || (out.usage && Object.hasOwn(out.usage, member))) continue;
    take(key);
    (out.usage ??= {})[member] = v;
  }

  out.rest = attrs.filter((_, i) => taken[i] !== true);
  return out;
}

/** The object without its undefined members, or undefined when none is left. */
function compact(o: Record<string, string | undefined>): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const k in o) {
    const v = o[k];
    if (v !== undefined) (out ??= {})[k] = v;
  }
  return out;
}

/** Tool arguments and results sent as JSON text: parsed as core/json-text.ts says. */
export function parseJsonText(v: Json): Json {
  return parseJson(v) as Json;
}
