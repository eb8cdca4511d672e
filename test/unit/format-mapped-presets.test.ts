import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '../../src/core/errors.js';
import { normaliseEvent } from '../../src/core/record.js';
import type { DecodedEvent, LineFormat } from '../../src/sidecar/formats/format.js';
import { loadMapping, mappingPresets } from '../../src/sidecar/formats/mapped/index.js';
import { thrown } from '../helpers/errors.js';
import { ROOT } from '../helpers/procs.js';

const RECEIVED = '2026-03-04T05:06:07.089Z';

function fixture(name: string): unknown[] {
  return readFileSync(join(ROOT, 'test/fixtures/formats', name), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);
}

/** Every line of the fixture through the preset, each event through normaliseEvent. */
function mapAll(preset: string, file: string): { decoded: DecodedEvent[]; events: ReturnType<typeof normaliseEvent>[] } {
  const format: LineFormat = loadMapping(preset, '/nonexistent-base-dir');
  expect(format.name).toBe('mapped');
  const decoded = fixture(file).flatMap((line) => format.decode(line));
  const events = decoded.map((d) => normaliseEvent(d.event, RECEIVED));
  return { decoded, events };
}

type Ev = ReturnType<typeof normaliseEvent>;
const whoWhatWhenOutcome = (e: Ev): unknown[] => [e.actor?.id, e.actor?.type, e.event_type, e.time, e.outcome];
const unmapped = (e: Ev): Record<string, unknown> | undefined => e.details?.['_unmapped'] as Record<string, unknown> | undefined;

describe('mapping presets', () => {
  it('ships at least agentmesh, compliance-record, openai-agents and langchain', () => {
    expect(mappingPresets()).toEqual(expect.arrayContaining(['agentmesh', 'compliance-record', 'langchain', 'openai-agents']));
    expect(mappingPresets()).toEqual([...mappingPresets()].sort());
  });

  it('refuses an unknown preset with config_io and the list of presets', () => {
    const err = thrown(() => loadMapping('agentmesh-v9', '/tmp'), ConfigError);
    expect(err.code).toBe('config_io');
    expect(err.message).toContain('agentmesh, compliance-record');
  });
});

describe('preset agentmesh (FileAuditSink lines and AuditEntry exports)', () => {
  const { events } = mapAll('agentmesh', 'agentmesh.jsonl');

  it('maps who, what, when and outcome of every line', () => {
    expect(events.map(whoWhatWhenOutcome)).toEqual([
      ['did:mesh:7c1e0a9b2f4d4e8a', 'agent', 'tool_invocation', '2026-03-02T09:14:07.482Z', 'success'],
      ['did:mesh:7c1e0a9b2f4d4e8a', 'agent', 'policy_violation', '2026-03-02T09:14:09.001Z', 'denied'],
      ['did:mesh:7c1e0a9b2f4d4e8a', 'agent', 'trust_handshake', '2026-03-02T09:15:30.000Z', 'success'],
      ['did:mesh:19ab77c0e3f24d11', 'agent', 'tool_blocked', '2026-03-02T09:16:02.250Z', 'error'],
      ['did:mesh:5d0e2c1b9a884f7e', 'agent', 'agent_registered', '2026-03-02T09:20:00.000Z', 'success'],
    ]);
  });

  it('maps action, resource, policy, trace and the chain fields', () => {
    const [first, , third, , fifth] = events;
    expect(first!.action).toBe('read_file');
    expect(first!.resource).toEqual({ id: '/srv/claims/2026/03/claim-1182.pdf' });
    expect(first!.policy).toEqual({ decision: 'allow', rule: 'allow-claims-read' });
    expect(first!.trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(first!.session_id).toBe('sess-20260302-0007');
    expect(first!.details?.['data']).toEqual({ tool: 'file_reader', bytes: 48211 });
    expect(first!.details?.['entry_id']).toBe('audit_3f9a1c2b7d4e5f60');
    expect(first!.details?.['content_hash']).toMatch(/^[0-9a-f]{64}$/);
    expect(first!.details?.['signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(first!.details?.['previous_hash']).toBe('');
    expect(third!.details?.['target_did']).toBe('did:mesh:19ab77c0e3f24d11');
    expect(third!.policy).toBeUndefined();
    expect(fifth!.details?.['entry_hash']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps a timestamp with microseconds as written, and nothing else is left unmapped', () => {
    expect(unmapped(events[0]!)).toEqual({ timestamp: '2026-03-02T09:14:07.482913' });
    expect(unmapped(events[1]!)).toBeUndefined();
    expect(unmapped(events[4]!)).toEqual({ timestamp: '2026-03-02T09:20:00.000001' });
  });

  it('records an outcome AgentMesh does not define as error, keeping it as written', () => {
    const format = loadMapping('agentmesh', '/');
    const [d] = format.decode({ event_type: 'x', agent_did: 'did:mesh:1', action: 'a', outcome: 'partial', timestamp: '2026-03-02T09:00:00' });
    expect(d!.event['outcome']).toBe('error');
    expect((d!.event['details'] as Record<string, unknown>)['_unmapped']).toEqual({ outcome: 'partial' });
  });
});

describe('preset compliance-record', () => {
  const { events } = mapAll('compliance-record', 'compliance-record.jsonl');

  it('maps who, what, when and outcome of every line', () => {
    expect(events.map(whoWhatWhenOutcome)).toEqual([
      ['u-4471', 'user', 'patient_record_viewed', '2026-03-02T10:01:44.120Z', undefined],
      ['agent-refunds-01', 'agent', 'refund_issued', '2026-03-02T09:05:00.000Z', undefined],
      ['admin-3', 'admin', 'export_requested', '2026-03-02T10:05:00.000Z', 'denied'],
      ['svc-ingest', 'system', 'prompt_logged', '2026-03-02T10:09:13.000Z', undefined],
      ['u-9002', 'user', 'consent_recorded', '2026-03-02T10:12:00.000Z', undefined],
    ]);
  });

  it('maps conversation, agent, resource, classification and merges details', () => {
    const e = events[0]!;
    expect(e.action).toBe('patient_record_viewed');
    expect(e.session_id).toBe('conv-8812');
    expect(e.agent).toEqual({ name: 'claims-assistant' });
    expect(e.resource).toEqual({ type: 'patient_record', id: 'pr-00731' });
    expect(e.data_classification).toBe('phi');
    expect(e.details).toEqual({ fields: ['diagnosis', 'medications'], purpose: 'claim review' });
    expect(events[4]!.tenant).toBe('acme-eu');
  });

  it('keeps what the mapping changed or cut as written', () => {
    expect(unmapped(events[2]!)).toEqual({ actor_type: 'administrator', outcome: 'blocked' });
    expect(unmapped(events[4]!)).toEqual({ actor_type: 'human', timestamp: '2026-03-02T10:12:00.000123' });
    expect(unmapped(events[0]!)).toBeUndefined();
  });

  it('keeps an actor type it does not know as written, and refuses one of the wrong JSON type, naming actor_type', () => {
    const format = loadMapping('compliance-record', '/');
    const [kept] = format.decode({ action: 'a', actor_id: 'x', actor_type: 'robot-overlord' });
    expect((kept!.event.actor as { type: string }).type).toBe('robot-overlord');
    const err = thrown(() => format.decode({ action: 'a', actor_id: 'x', actor_type: ['robot-overlord'] }), InputError);
    expect([err.code, err.field]).toEqual(['mapping_failed', 'actor_type']);
    expect(err.message).not.toContain('robot-overlord');
  });
});

describe('preset openai-agents', () => {
  const { decoded, events } = mapAll('openai-agents', 'openai-agents.jsonl');

  it('maps every trace and span, one event per element of an exporter body', () => {
    expect(events.map((e) => e.event_type)).toEqual([
      'trace_started',
      'agent_invoked',
      'model_called',
      'tool_invoked',
      'tool_invoked',
      'model_called',
      'agent_handoff',
      'guardrail_checked',
      'guardrail_checked',
      'custom_span',
      'mcp_tools_listed',
      'span_recorded',
      'trace_started',
      'tool_invoked',
    ]);
    expect(decoded.slice(-2).map((d) => d.path)).toEqual(['data[0]', 'data[1]']);
    expect(decoded[0]!.path).toBe('');
  });

  it('maps who, what, when and outcome', () => {
    expect(events.map((e) => [e.actor?.id, e.time, e.outcome])).toEqual([
      [undefined, RECEIVED, undefined],
      ['Triage agent', '2026-03-02T11:00:00.101Z', 'success'],
      [undefined, '2026-03-02T11:00:00.200Z', 'success'],
      [undefined, '2026-03-02T11:00:01.060Z', 'success'],
      [undefined, '2026-03-02T11:00:02.000Z', 'error'],
      [undefined, '2026-03-02T11:00:02.500Z', 'success'],
      ['Triage agent', '2026-03-02T11:00:03.200Z', 'success'],
      [undefined, '2026-03-02T11:00:03.300Z', 'denied'],
      [undefined, '2026-03-02T11:00:00.150Z', 'success'],
      [undefined, '2026-03-02T11:00:00.000Z', 'success'],
      [undefined, '2026-03-02T11:00:00.050Z', 'success'],
      [undefined, '2026-03-02T11:00:04.000Z', 'pending'],
      [undefined, RECEIVED, undefined],
      [undefined, '2026-03-02T12:30:00.000Z', 'success'],
    ]);
  });

  it('maps tools, models, guardrails and trace ids', () => {
    const tool = events[3]!;
    expect(tool.tool).toEqual({ name: 'lookup_claim', arguments: '{"claim_id":"1182"}' });
    expect(tool.trace_id).toBe('trace_5f0d2c7a9e3b4a1c8d6e0f1a2b3c4d5e');
    expect(tool.span_id).toBe('span_c1b2c3d4e5f6a7b8c9d0e1f2');
    expect(tool.details?.['parent_id']).toBe('span_a1b2c3d4e5f6a7b8c9d0e1f2');
    expect(tool.details?.['output']).toBe("{'status': 'in review', 'amount': 1200}");
    expect(events[4]!.details?.['error']).toEqual({ message: 'Error running tool', data: { tool_name: 'send_email', error: 'SMTP timeout' } });
    expect(events[2]!.model).toEqual({ name: 'gpt-4o-2024-08-06' });
    expect(events[5]!.details?.['response_id']).toBe('resp_67ccd2bed1ec8190');
    expect(events[7]!.policy).toEqual({ rule: 'pii_output_check', decision: 'triggered' });
    expect(events[8]!.policy).toEqual({ rule: 'jailbreak_check', decision: 'passed' });
    expect(events[0]!.session_id).toBe('thread_8812');
    expect(events[0]!.action).toBe('Claims triage');
    expect(events[6]!.details?.['to_agent']).toBe('Billing agent');
    expect(events[10]!.resource).toEqual({ type: 'mcp_server', id: 'mail-mcp' });
  });

  it('keeps microseconds and changed values under details._unmapped, and nothing else', () => {
    expect(unmapped(events[1]!)).toEqual({ started_at: '2026-03-02T11:00:00.101234+00:00' });
    expect(unmapped(events[3]!)).toBeUndefined();
    expect(unmapped(events[7]!)).toEqual({ span_data: { triggered: true } });
    expect(unmapped(events[11]!)).toEqual({ span_data: { input: 'Your claim is in review.' } });
  });
});

describe('preset langchain', () => {
  const { events } = mapAll('langchain', 'langchain.jsonl');

  it('maps what, when and outcome of every run', () => {
    expect(events.map((e) => [e.event_type, e.time, e.outcome])).toEqual([
      ['chain_invoked', '2026-03-02T13:00:00.000Z', 'success'],
      ['model_called', '2026-03-02T13:00:00.120Z', 'success'],
      ['tool_invoked', '2026-03-02T13:00:01.500Z', 'success'],
      ['tool_invoked', '2026-03-02T13:00:02.000Z', 'error'],
      ['retriever_invoked', '2026-03-02T13:00:02.000Z', 'success'],
      ['embedding_created', '2026-03-02T13:00:01.990Z', 'success'],
      ['prompt_rendered', '2026-03-02T13:00:00.100Z', 'success'],
      ['output_parsed', '2026-03-02T13:00:01.481Z', 'pending'],
    ]);
  });

  it('maps tools, models, sessions and the run tree', () => {
    const [chain, llm, tool, failed, retriever, embedding] = events;
    expect(chain!.action).toBe('AgentExecutor');
    // session_name is LangSmith's project; the conversation is the thread named in metadata
    expect(chain!.session_id).toBe('conv-20260302-0007');
    expect(chain!.details?.['project']).toBe('support-bot-prod');
    expect(chain!.span_id).toBe('1ef3c6a0-5b7e-4d2a-9c1f-0a2b3c4d5e6f');
    expect(llm!.model).toEqual({ name: 'gpt-4o-mini', provider: 'openai' });
    expect(llm!.details?.['parent_run_id']).toBe('1ef3c6a0-5b7e-4d2a-9c1f-0a2b3c4d5e6f');
    expect(tool!.tool).toEqual({ name: 'refund_status', arguments: { input: "{'order_id': '551902'}" } });
    expect(failed!.details?.['error']).toBe('OperationalError: database is locked');
    expect(failed!.session_id).toBeUndefined();
    expect(failed!.details?.['project_id']).toBe('7c3d2e1f-0a9b-4c8d-8e7f-6a5b4c3d2e1f');
    expect(retriever!.resource).toEqual({ type: 'retriever', id: 'VectorStoreRetriever' });
    expect(embedding!.model).toEqual({ name: 'text-embedding-3-small' });
  });

  it('keeps what no field names under details._unmapped', () => {
    const chain = unmapped(events[0]!)!;
    expect(Object.keys(chain).sort()).toEqual(['dotted_order', 'events', 'extra', 'serialized', 'start_time']);
    expect(chain['start_time']).toBe('2026-03-02T13:00:00.000412');
    const llm = unmapped(events[1]!)!;
    // the model name was read from metadata; the rest of extra stays
    expect(llm['extra']).toEqual({
      invocation_params: { model: 'gpt-4o-mini', model_name: 'gpt-4o-mini', temperature: 0.0, _type: 'openai-chat' },
      metadata: { ls_model_type: 'chat', ls_temperature: 0.0 },
    });
  });
});
