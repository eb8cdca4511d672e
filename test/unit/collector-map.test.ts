import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditClient, defaultStepToEvent, errorDetails, withContext, type ClientEvent } from '../../src/client/index.js';

/**
 * The default step mapping: each documented shape becomes the event type
 * and fields docs/client.md lists, anything else is skipped, and every
 * event it makes is one the sidecar takes (checked by emitting them all
 * through a real client, whose validation is the sidecar's own).
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-collector-map-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const map = (step: unknown): ClientEvent | undefined => defaultStepToEvent(step);

describe('defaultStepToEvent', () => {
  it('maps tool calls in their common spellings', () => {
    expect(map({ type: 'tool_call', name: 'search', arguments: { q: 'x' }, id: 'c1' })).toEqual({
      event_type: 'tool_invoked',
      tool: { name: 'search', arguments: { q: 'x' }, call_id: 'c1' },
    });
    // the AI SDK's fullStream part
    expect(map({ type: 'tool-call', toolCallId: 'c2', toolName: 'weather', input: { city: 'Oslo' } })).toEqual({
      event_type: 'tool_invoked',
      tool: { name: 'weather', arguments: { city: 'Oslo' }, call_id: 'c2' },
    });
    expect(map({ type: 'tool', tool: { name: 'fetch' }, args: [1], agent: 'planner', session_id: 's' })).toEqual({
      event_type: 'tool_invoked',
      tool: { name: 'fetch', arguments: [1] },
      agent: { name: 'planner' },
      session_id: 's',
    });
    expect(map({ type: 'tool-result', toolCallId: 'c2', toolName: 'weather', output: 'sunny' })).toEqual({
      event_type: 'tool_completed',
      outcome: 'success',
      tool: { name: 'weather', call_id: 'c2' },
      details: { output: 'sunny' },
    });
    expect(map({ type: 'tool-error', toolName: 'weather', error: new Error('down') })).toEqual({
      event_type: 'tool_completed',
      outcome: 'error',
      tool: { name: 'weather' },
      details: { error: { name: 'Error', message: 'down' } },
    });
    expect(map({ type: 'tool_call' })).toBeUndefined();
  });

  it('maps model calls, decisions, approvals and handoffs', () => {
    expect(map({ type: 'llm', model: 'gpt-4o', provider: 'openai', usage: { input_tokens: 3 } })).toEqual({
      event_type: 'model_called',
      model: { name: 'gpt-4o', provider: 'openai' },
      details: { usage: { input_tokens: 3 } },
    });
    expect(map({ type: 'model_call', model: { provider: 'acme', name: 'm1' } })).toEqual({ event_type: 'model_called', model: { provider: 'acme', name: 'm1' } });
    expect(map({ type: 'decision', decision: 'deny', rule: 'no-pii-egress', action: 'send_email' })).toEqual({
      event_type: 'policy_decided',
      policy: { decision: 'deny', rule: 'no-pii-egress' },
      action: 'send_email',
      outcome: 'denied',
    });
    expect(map({ type: 'approval', status: 'granted', approver: 'alice' })).toEqual({
      event_type: 'approval_granted',
      approval: { status: 'granted', approver: 'alice' },
      outcome: 'success',
    });
    expect(map({ type: 'tool-approval-request', approvalId: 'a1', toolCall: { toolName: 'wire', toolCallId: 'c9', input: { eur: 5 } } })).toEqual({
      event_type: 'approval_requested',
      tool: { name: 'wire', arguments: { eur: 5 }, call_id: 'c9' },
      approval: { status: 'requested' },
      outcome: 'pending',
    });
    expect(map({ type: 'handoff', from: 'triage', to: 'billing' })).toEqual({ event_type: 'agent_handoff', agent: { name: 'triage' }, details: { to_agent: 'billing' } });
  });

  it('passes an event through as it is and skips what it does not know', () => {
    const e = { event_type: 'custom_thing', details: { a: 1 } };
    expect(map(e)).toBe(e);
    for (const s of [null, undefined, 'text', 42, [], { type: 'text', text: 'hi' }, { type: 'finish' }, {}]) expect(map(s)).toBeUndefined();
  });

  it('copies the common fields and sets outcome error for a step with an error', () => {
    expect(map({ type: 'tool_call', name: 'x', trace_id: 't', span_id: 's', time: 1700000000000, actor: { id: 'u1' }, error: 'timeout' })).toEqual({
      event_type: 'tool_invoked',
      tool: { name: 'x' },
      trace_id: 't',
      span_id: 's',
      time: 1700000000000,
      actor: { id: 'u1' },
      outcome: 'error',
      details: { error: 'timeout' },
    });
  });

  it('makes only events the sidecar takes', async () => {
    const file = join(dir, 'valid.jsonl');
    const client = new AuditClient({ file });
    const steps = [
      { type: 'tool_call', name: 'search', arguments: { q: 'x' } },
      { type: 'tool-result', toolName: 'weather', output: { t: 3 } },
      { type: 'tool-error', toolName: 'weather', error: new Error('down') },
      { type: 'llm', model: 'gpt-4o', usage: { input_tokens: 3 } },
      { type: 'decision', decision: 'allow' },
      { type: 'approval', status: 'denied', approver: 'bob' },
      { type: 'handoff', from: 'a', to: 'b' },
    ];
    const events = steps.map(map).filter((e): e is ClientEvent => e !== undefined);
    expect(events).toHaveLength(steps.length);
    // emitted together: the file transport can leave an emit made right after the previous one resolved unwritten (reported)
    await Promise.all(events.map((e) => client.emit(e)));
    await client.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(steps.length);
  });
});

describe('withContext and errorDetails', () => {
  it('fills in only the fields an event lacks', () => {
    expect(withContext({ event_type: 'x', session_id: 'mine' }, { session_id: 'ctx', trace_id: 't', agent: { id: 'a' } })).toEqual({
      event_type: 'x',
      session_id: 'mine',
      trace_id: 't',
      agent: { id: 'a' },
    });
  });

  it('keeps name, code and a bounded message, never the stack', () => {
    const err = Object.assign(new Error('x'.repeat(5000)), { code: 'E1' });
    const d = errorDetails(err);
    expect(d).toMatchObject({ name: 'Error', code: 'E1' });
    expect(String(d['message']).length).toBeLessThanOrEqual(2001);
    expect(errorDetails(err, { message: false })).toEqual({ name: 'Error', code: 'E1' });
    expect(errorDetails('plain')).toEqual({ name: 'string', message: 'plain' });
  });
});
