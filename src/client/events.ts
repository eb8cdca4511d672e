/**
 * Builders for the common kinds of agent event. They only fill in
 * `event_type` (and an outcome where the kind implies one) and make the field
 * that defines the kind required; their types come from the record
 * definition in src/core/types.ts (through types.ts), so a builder cannot ask
 * for a shape the sidecar would refuse.
 *
 *   await client.emit(toolCall({ tool: { name: 'search', arguments: { q } }, agent: { id: 'planner' }, session_id }));
 */
import type { ApprovalInput, ClientEvent, ModelInput, OutcomeInput, PolicyInput, ToolInput } from './types.js';

/** Every field of an event but its type: who (actor, agent), what (action, resource), when (time), outcome, correlation ids, details. */
export type EventFields = Omit<ClientEvent, 'event_type'> & {
  /** overrides the builder's event type */
  event_type?: string;
};

function build(defaultType: string, f: EventFields): ClientEvent {
  const { event_type, ...rest } = f;
  return { event_type: event_type ?? defaultType, ...rest };
}

/** A tool the agent invoked: `tool_invoked`. */
export function toolCall(f: EventFields & { tool: ToolInput }): ClientEvent {
  return build('tool_invoked', f);
}

/** A call to a model: `model_called` (the type the OpenAI Agents and LangChain mappings give model spans). */
export function modelCall(f: EventFields & { model: ModelInput }): ClientEvent {
  return build('model_called', f);
}

/**
 * A policy or guardrail decision: `policy_decided`. A `deny` decision
 * without an outcome gets outcome `denied`, so reports list it with the
 * denied and failed records.
 */
export function decision(f: EventFields & { policy: PolicyInput }): ClientEvent {
  const d = typeof f.policy?.decision === 'string' ? f.policy.decision.toLowerCase() : undefined;
  const outcome: OutcomeInput | undefined = f.outcome ?? (d === 'deny' || d === 'denied' ? 'denied' : undefined);
  return build('policy_decided', outcome === undefined ? f : { ...f, outcome });
}

const APPROVAL_TYPES: Record<string, { type: string; outcome: OutcomeInput }> = {
  requested: { type: 'approval_requested', outcome: 'pending' },
  granted: { type: 'approval_granted', outcome: 'success' },
  denied: { type: 'approval_denied', outcome: 'denied' },
};

/**
 * A human approval step. Status `requested`, `granted` or `denied` gives
 * the event types sealtrail's report counts as approvals
 * (`approval_requested`, `approval_granted`, `approval_denied`) and the
 * outcome `pending`, `success`, `denied`; another status is
 * `approval_recorded`.
 */
export function approval(f: EventFields & { approval: ApprovalInput & { status: string } }): ClientEvent {
  const status = f.approval?.status;
  const known = typeof status === 'string' && Object.hasOwn(APPROVAL_TYPES, status) ? APPROVAL_TYPES[status] : undefined;
  const e = build(known?.type ?? 'approval_recorded', f);
  if (e.outcome === undefined && known) e.outcome = known.outcome;
  return e;
}
