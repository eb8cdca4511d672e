import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOpenAIAgents, type AgentsRun } from '../helpers/openai-agents-run.js';
import { byType, lines, mapFile, obj, once, only, RECEIVED, str, unmapped, type Ev } from '../helpers/preset-map.js';

/**
 * The openai-agents preset against what the framework's own package writes,
 * not against hand-written fixtures: an agent run of @openai/agents-core
 * exported by the SDK's own BatchTraceProcessor. Only the model is scripted
 * (no network, no API key); everything that shapes the trace is the SDK's.
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-framework-presets-openai-'));
let agents: AgentsRun;

beforeAll(async () => {
  agents = await runOpenAIAgents(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('openai-agents preset, on what @openai/agents-core 0.14.3 exports', () => {
  const raw = once(() => lines(agents.spans));
  const mapped = once(() => mapFile('openai-agents', agents.spans));
  const events = (): Ev[] => mapped().events;
  const traceId = (): string => str(only(events(), (e) => e.event_type === 'trace_started').trace_id);

  it('maps every exported trace and span, refusing none', () => {
    expect(agents.finalOutput).toBe('Your claim 1182 is in review.');
    expect(mapped().refused).toEqual([]);
    expect(events()).toHaveLength(raw().length);
    expect(events().map((e) => e.event_type).sort()).toEqual([
      'agent_handoff',
      'agent_invoked', // Triage agent
      'agent_invoked', // Billing agent
      'custom_span', // the SDK's task span
      'custom_span', // and one turn span per model call
      'custom_span',
      'custom_span',
      'guardrail_checked',
      'model_called', // generation span (chat completions model)
      'model_called', // generation span
      'model_called', // response span (responses model)
      'tool_invoked', // lookup_claim
      'tool_invoked', // send_email, which failed
      'trace_started',
    ]);
  });

  it('names every member the SDK writes: nothing is left under details._unmapped but a value map changed', () => {
    expect(events().filter((e) => unmapped(e) !== undefined).map((e) => [e.event_type, unmapped(e)])).toEqual([
      ['guardrail_checked', { span_data: { triggered: false } }],
    ]);
  });

  it('keeps the trace: workflow, group as session, metadata; the time it was received', () => {
    const t = only(events(), (e) => e.event_type === 'trace_started');
    expect(t.trace_id).toMatch(/^trace_[0-9a-f]{32}$/);
    expect([t.action, t.session_id, t.time, t.details]).toEqual(['Claims triage', 'thread_8812', RECEIVED, { object: 'trace', metadata: { env: 'test' } }]);
  });

  it('keeps every span: its trace, span and parent ids, start as the time, end, and outcome', () => {
    const spans = raw().filter((l) => l['object'] === 'trace.span');
    expect(spans.length).toBeGreaterThan(0);
    for (const line of spans) {
      const e = only(events(), (ev) => ev.span_id === line['id']);
      expect(e.span_id).toMatch(/^span_[0-9a-f]{24}$/);
      expect(e.trace_id).toBe(traceId());
      // the JS SDK writes milliseconds in UTC: the record keeps the time unchanged
      expect(e.time).toBe(line['started_at']);
      expect(e.details?.['ended_at']).toBe(line['ended_at']);
      expect(e.details?.['parent_id']).toBe(line['parent_id'] ?? undefined);
      expect(e.outcome).toBe(line['error'] === null ? 'success' : 'error');
    }
  });

  it('maps tool calls: the tool, its arguments as the model sent them, its output; a failed tool is an error', () => {
    const tools = byType(events(), 'tool_invoked');
    const lookup = only(tools, (e) => e.tool?.name === 'lookup_claim');
    expect([lookup.tool, lookup.outcome, lookup.details?.['output']]).toEqual([
      { name: 'lookup_claim', arguments: '{"claim_id":"1182"}' },
      'success',
      'claim 1182: in review',
    ]);
    const mail = only(tools, (e) => e.tool?.name === 'send_email');
    expect([mail.tool, mail.outcome]).toEqual([{ name: 'send_email', arguments: '{"to":"claims-team"}' }, 'error']);
    expect(mail.details?.['error']).toEqual({
      message: expect.stringContaining('Error running tool'),
      data: { tool_name: 'send_email', error: expect.stringContaining('SMTP timeout') },
    });
  });

  it('maps model calls: the model of a generation span, the response id of a response span', () => {
    const models = byType(events(), 'model_called');
    const generations = models.filter((e) => e.details?.['span_type'] === 'generation');
    expect(generations.map((e) => [e.model, e.details?.['usage'], e.outcome])).toEqual([
      [{ name: 'gpt-4o-mini' }, { input_tokens: 40, output_tokens: 7 }, 'success'],
      [{ name: 'gpt-4o-mini' }, { input_tokens: 80, output_tokens: 7 }, 'success'],
    ]);
    expect(generations[0]!.details?.['input']).toEqual([expect.objectContaining({ role: 'user', content: 'Where is my claim 1182?' })]);
    const response = only(models, (e) => e.details?.['span_type'] === 'response');
    // the SDK's response span carries no model name; its private _input and _response are not exported
    expect([response.model, response.details?.['response_id'], response.outcome]).toEqual([undefined, 'resp_gpt41mini_1', 'success']);
    const line = raw().find((l) => l['id'] === response.span_id);
    expect(Object.keys(obj(line?.['span_data'])).sort()).toEqual(['response_id', 'type']);
  });

  it('maps the agents, the handoff between them and the input guardrail', () => {
    expect(byType(events(), 'agent_invoked').map((e) => [e.actor, e.agent, e.details?.['tools'], e.details?.['handoffs'], e.outcome])).toEqual([
      [{ id: 'Triage agent', type: 'agent' }, { name: 'Triage agent' }, ['lookup_claim', 'send_email'], ['Billing agent'], 'success'],
      [{ id: 'Billing agent', type: 'agent' }, { name: 'Billing agent' }, [], [], 'success'],
    ]);
    const handoff = only(events(), (e) => e.event_type === 'agent_handoff');
    expect([handoff.actor, handoff.details?.['to_agent'], handoff.outcome]).toEqual([{ id: 'Triage agent', type: 'agent' }, 'Billing agent', 'success']);
    const guardrail = only(events(), (e) => e.event_type === 'guardrail_checked');
    expect([guardrail.policy, guardrail.outcome]).toEqual([{ rule: 'no_pii_in_input', decision: 'passed' }, 'success']);
    // the SDK's own task and turn spans are exported as custom spans
    expect(byType(events(), 'custom_span').map((e) => e.action).sort()).toEqual(['task', 'turn', 'turn', 'turn']);
  });

  it('maps the exporter body {"data": [...]} to the same events, one per element', () => {
    const bodies = lines(agents.bodies);
    expect(bodies).toHaveLength(agents.exportCalls);
    const fromBodies = mapFile('openai-agents', agents.bodies);
    expect(fromBodies.refused).toEqual([]);
    expect(fromBodies.decoded.map((d) => d.path)).toEqual(bodies.flatMap((b) => (b['data'] as unknown[]).map((_, i) => `data[${i}]`)));
    expect(fromBodies.events).toEqual(events());
  });
});
