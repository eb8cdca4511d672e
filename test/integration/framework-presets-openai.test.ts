import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_PATH, RESPONSES_PATH } from '../helpers/fake-openai-server.js';
import { CHAT_SERVED, FINAL_ANSWER, runOpenAIAgents, type AgentsRun } from '../helpers/openai-agents-run.js';
import { byType, lines, mapFile, obj, once, only, RECEIVED, str, unmapped, type Ev, type Obj } from '../helpers/preset-map.js';

/**
 * The openai-agents preset against what the framework's own package writes,
 * not against hand-written fixtures: an agent run of @openai/agents-core
 * exported by the SDK's own BatchTraceProcessor, its models the SDK's own
 * OpenAIChatCompletionsModel and OpenAIResponsesModel answered by a fake
 * OpenAI API on 127.0.0.1 (test/helpers/openai-agents-run.ts). The model
 * spans are the model classes' own; what the API answered is asserted
 * against what the records say.
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
    expect(agents.finalOutput).toBe(FINAL_ANSWER);
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

  it('asked the fake API for each model call: Chat Completions twice for Triage, Responses once for Billing', () => {
    expect(agents.requests.map((r) => [r.method, r.path, (r.body as { model?: unknown }).model, r.answer?.status ?? 200])).toEqual([
      ['POST', CHAT_PATH, 'gpt-4o-mini', 200],
      ['POST', CHAT_PATH, 'gpt-4o-mini', 200],
      ['POST', RESPONSES_PATH, 'gpt-4.1-mini', 200],
    ]);
  });

  it('maps generation spans (Chat Completions): model, usage and id from the completion the SDK kept as output', () => {
    const sent = agents.requests.filter((r) => r.path === CHAT_PATH).map((r) => r.answer!.body);
    const generations = byType(events(), 'model_called').filter((e) => e.details?.['span_type'] === 'generation');
    expect(generations.map((e) => [e.model, e.details?.['requested_model'], e.details?.['response_id'], e.outcome])).toEqual(
      sent.map((body) => [{ name: CHAT_SERVED }, 'gpt-4o-mini', body['id'], 'success']),
    );
    // the token counts as the fake API sent them (the SDK puts no usage of its own on the span)
    expect(generations.map((e) => e.details?.['usage'])).toEqual(sent.map((body) => body['usage']));
    expect(generations[0]!.details?.['usage']).toMatchObject({ prompt_tokens: 310, completion_tokens: 21, total_tokens: 331 });
    for (const g of generations) {
      const line = raw().find((l) => l['id'] === g.span_id);
      expect(obj(line?.['span_data'])).not.toHaveProperty('usage');
    }
    // the whole completion stays as the output; the input is the messages sent
    expect(generations.map((e) => e.details?.['output'])).toEqual(sent.map((body) => [body]));
    expect(generations[0]!.details?.['input']).toEqual([
      { role: 'system', content: 'Route claims questions.' },
      { role: 'user', content: 'Where is my claim 1182?' },
    ]);
  });

  it('maps the response span (Responses API) to its response id: it exports no model and no usage', () => {
    const [sent] = agents.requests.filter((r) => r.path === RESPONSES_PATH).map((r) => r.answer!.body);
    const response = only(byType(events(), 'model_called'), (e) => e.details?.['span_type'] === 'response');
    expect([response.model, response.details?.['response_id'], response.details?.['usage'], response.outcome]).toEqual([undefined, sent!['id'], undefined, 'success']);
    // the response the SDK keeps (with its model and usage) is the private _response, which toJSON() drops
    const line = raw().find((l) => l['id'] === response.span_id);
    expect(obj(line?.['span_data'])).toEqual({ type: 'response', response_id: sent!['id'] });
    // that call's tokens reach the export only through the turn span around it
    const billingTurn = only(byType(events(), 'custom_span'), (e) => obj(e.details?.['data'])['agent_name'] === 'Billing agent');
    const usage = obj(sent!['usage']);
    expect(obj(billingTurn.details?.['data'])['usage']).toMatchObject({ input_tokens: usage['input_tokens'], output_tokens: usage['output_tokens'] });
  });

  it('takes no response id from a streamed completion that no chunk gave an id (the SDK writes FAKE_ID)', () => {
    const line = raw().find((l) => obj(l['span_data'] ?? {})['type'] === 'generation')!;
    const spanData = obj(line['span_data']);
    const completion: Obj = { ...obj((spanData['output'] as unknown[])[0]), id: 'FAKE_ID', model: 'gpt-4o-mini' };
    const file = join(dir, 'streamed-generation.jsonl');
    writeFileSync(file, `${JSON.stringify({ ...line, span_data: { ...spanData, output: [completion] } })}\n`);
    const [e] = mapFile('openai-agents', file).events;
    expect([e!.model, e!.details?.['requested_model'], e!.details?.['usage']]).toEqual([{ name: 'gpt-4o-mini' }, 'gpt-4o-mini', completion['usage']]);
    expect(e!.details).not.toHaveProperty('response_id');
    expect(e!.details?.['output']).toEqual([completion]);
  });

  it("reads nothing from a generation's output that is not a Chat Completions response (another model class's)", () => {
    const line = raw().find((l) => obj(l['span_data'] ?? {})['type'] === 'generation')!;
    const spanData = obj(line['span_data']);
    const other: Obj = { id: 'gen-77', model: 'other-model', usage: { tokens: 9 } };
    const file = join(dir, 'other-generation.jsonl');
    writeFileSync(file, `${JSON.stringify({ ...line, span_data: { ...spanData, output: [other] } })}\n`);
    const [e] = mapFile('openai-agents', file).events;
    expect(e!.model).toEqual({ name: spanData['model'] });
    expect(e!.details).not.toHaveProperty('response_id');
    expect(e!.details).not.toHaveProperty('requested_model');
    expect(e!.details).not.toHaveProperty('usage');
    expect(e!.details?.['output']).toEqual([other]);
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
