import { describe, expect, expectTypeOf, it } from 'vitest';
import { approval, decision, modelCall, toolCall, type ClientEvent } from '../../src/client/index.js';
import { prepareEvent } from '../../src/client/prepare.js';
import { normaliseEvent } from '../../src/core/record.js';
import type { AuditEvent } from '../../src/core/types.js';

/** The typed builders: the event type of each kind, fields passed through, and every result one the sidecar accepts. */

const who = { actor: { id: 'u-7', type: 'user' }, agent: { id: 'planner', name: 'Planner', version: '1.2' }, session_id: 's-1', trace_id: 't-1', span_id: 'p-1' };

function sidecarTakes(e: ClientEvent): AuditEvent {
  const { line } = prepareEvent(e, { maxEventBytes: 1 << 20 });
  return normaliseEvent(JSON.parse(line.toString()), '2026-01-01T00:00:00.000Z');
}

describe('event builders', () => {
  it('toolCall: tool_invoked with the tool, who and the correlation ids', () => {
    const e = toolCall({ ...who, tool: { name: 'search', arguments: { q: 'x' }, call_id: 'c1' }, resource: { type: 'index', id: 'docs' }, outcome: 'success' });
    expect(e).toEqual({ event_type: 'tool_invoked', ...who, tool: { name: 'search', arguments: { q: 'x' }, call_id: 'c1' }, resource: { type: 'index', id: 'docs' }, outcome: 'success' });
    expect(sidecarTakes(e)).toMatchObject({ event_type: 'tool_invoked', tool: { name: 'search', call_id: 'c1' }, agent: { version: '1.2' }, session_id: 's-1' });
  });

  it('modelCall: model_called; event_type can be overridden', () => {
    expect(modelCall({ model: { provider: 'openai', name: 'gpt-x' }, details: { tokens: 12 } })).toEqual({ event_type: 'model_called', model: { provider: 'openai', name: 'gpt-x' }, details: { tokens: 12 } });
    expect(modelCall({ model: { name: 'm' }, event_type: 'embedding_created' }).event_type).toBe('embedding_created');
  });

  it('decision: policy_decided; a deny is outcome denied unless one is given', () => {
    expect(decision({ policy: { decision: 'deny', rule: 'pii-egress' }, action: 'send_email' })).toEqual({
      event_type: 'policy_decided',
      policy: { decision: 'deny', rule: 'pii-egress' },
      action: 'send_email',
      outcome: 'denied',
    });
    expect(decision({ policy: { decision: 'allow' } }).outcome).toBeUndefined();
    expect(decision({ policy: { decision: 'deny' }, outcome: 'error' }).outcome).toBe('error');
  });

  it('approval: the report event types and outcomes for requested, granted, denied', () => {
    expect(approval({ approval: { status: 'granted', approver: 'alice' } })).toEqual({ event_type: 'approval_granted', approval: { status: 'granted', approver: 'alice' }, outcome: 'success' });
    expect(approval({ approval: { status: 'requested' } })).toMatchObject({ event_type: 'approval_requested', outcome: 'pending' });
    expect(approval({ approval: { status: 'denied' } })).toMatchObject({ event_type: 'approval_denied', outcome: 'denied' });
    expect(approval({ approval: { status: 'escalated' } })).toEqual({ event_type: 'approval_recorded', approval: { status: 'escalated' } });
    expect(approval({ approval: { status: 'constructor' } })).toEqual({ event_type: 'approval_recorded', approval: { status: 'constructor' } });
  });

  it('every builder result is an event the sidecar accepts', () => {
    for (const e of [
      toolCall({ tool: { name: 't' } }),
      modelCall({ model: {} }),
      decision({ policy: { decision: 'deny' }, ...who }),
      approval({ approval: { status: 'granted' }, time: new Date() }),
    ]) {
      expect(() => sidecarTakes(e)).not.toThrow();
    }
  });

  it('takes its types from the record definition', () => {
    expectTypeOf(toolCall).parameter(0).toHaveProperty('tool').toEqualTypeOf<NonNullable<AuditEvent['tool']>>();
    expectTypeOf<ClientEvent['outcome']>().toEqualTypeOf<AuditEvent['outcome']>();
    expectTypeOf<ClientEvent['model']>().toEqualTypeOf<AuditEvent['model']>();
    // @ts-expect-error tool.name is required by the record definition
    toolCall({ tool: { arguments: {} } });
    // @ts-expect-error actor.id must be a string
    toolCall({ tool: { name: 't' }, actor: { id: 5 } });
  });
});
