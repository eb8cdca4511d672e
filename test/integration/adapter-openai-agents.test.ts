import {
  Agent,
  Runner,
  setTraceProcessors,
  setTracingDisabled,
  tool as agentsTool,
  type InputGuardrail,
  type RunToolApprovalItem,
  type TracingProcessor,
} from '@openai/agents-core';
import { OpenAIChatCompletionsModel, OpenAIResponsesModel } from '@openai/agents-openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SealtrailTracingProcessor } from '../../src/client/adapters/openai-agents.js';
import { AuditClient } from '../../src/client/index.js';
import {
  CHAT_PATH,
  CHAT_SERVED,
  FakeOpenAIServer,
  RESPONSES_PATH,
  RESPONSES_SERVED,
  responseBody,
  responsesFunctionCall,
  responsesMessage,
  type Handler,
  type RecordedRequest,
} from '../helpers/fake-openai-server.js';
import { triageApi } from '../helpers/openai-agents-run.js';
import { SocketSidecar, type StoredRecord as Stored } from '../helpers/socket-sidecar.js';

/**
 * SealtrailTracingProcessor on a real @openai/agents-core 0.14.3 run with
 * the SDK's own models (OpenAIChatCompletionsModel and OpenAIResponsesModel
 * of @openai/agents-openai) answered by a fake OpenAI API on 127.0.0.1,
 * sending through an AuditClient to a real sidecar's socket source; the
 * records are read back from the sidecar's buffer (no collector runs, so
 * nothing is shipped away from it).
 */

// the input of the refunds runs, which the Responses API answers differently
const REFUNDS_PROMPT = 'Refund claim 1182';
const REFUND_CALLS = new Set(['call_refund', 'call_small', 'call_big']);

/**
 * Billing: asks for refunds (one after a handoff, two in the refunds runs),
 * and answers once a refund call has its result (run or refused) in the
 * input. Stateless: runs may follow each other on the same server.
 */
const billingApi: Handler = (req, nth) => {
  const input = (req.body as { input?: unknown }).input;
  const items = Array.isArray(input) ? (input as Array<{ type?: unknown; call_id?: unknown }>) : [];
  const refunds = JSON.stringify(input).includes(REFUNDS_PROMPT);
  const decided = items.some((i) => i.type === 'function_call_output' && REFUND_CALLS.has(String(i.call_id)));
  const output = decided
    ? [responsesMessage(`msg_${nth}`, refunds ? '40 EUR refunded; 4000 EUR refused.' : 'The refund was not approved.')]
    : refunds
      ? [responsesFunctionCall('call_small', 'issue_refund', { claim_id: '1182', eur: 40 }), responsesFunctionCall('call_big', 'issue_refund', { claim_id: '1182', eur: 4000 })]
      : [responsesFunctionCall('call_refund', 'issue_refund', { claim_id: '1182', eur: 40 })];
  return { body: responseBody(`resp_${nth}`, RESPONSES_SERVED, output, { input: 500 + nth, output: 12 + nth }) };
};

let sidecar: SocketSidecar | undefined;
let sock: string;
let server: FakeOpenAIServer | undefined;
let openai: OpenAI;

beforeAll(async () => {
  sidecar = await SocketSidecar.start('st-adapter-oai-');
  sock = sidecar.sock;
  server = await FakeOpenAIServer.start({ [CHAT_PATH]: triageApi, [RESPONSES_PATH]: billingApi });
  // no retries: each model call is exactly one request the server recorded
  openai = new OpenAI({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  setTraceProcessors([]);
  await server?.close();
  await sidecar?.stop();
});

const records = (): Stored[] => sidecar!.records();

interface Run {
  finalOutput: unknown;
  refunds: number;
  /** model_called records of the run stored when lookup_claim ran, after its gate */
  storedBeforeTool?: number;
  /** the requests the fake API received during the run, with its answers */
  requests: RecordedRequest[];
}

/** Triage calls two tools (one fails) and hands off to Billing, whose refund tool needs an approval that is refused. */
async function runClaims(processor: TracingProcessor, groupId: string, gate?: () => Promise<void>): Promise<Run> {
  setTracingDisabled(false); // vitest sets NODE_ENV=test, and agents-core then starts with tracing off
  setTraceProcessors([processor]);
  const run: Run = { finalOutput: undefined, refunds: 0, requests: [] };
  const before = server!.requests.length;
  const lookupClaim = agentsTool({
    name: 'lookup_claim',
    description: 'Look up a claim',
    parameters: z.object({ claim_id: z.string() }),
    execute: async ({ claim_id }) => {
      if (gate) {
        // the documented gate: a tool that starts with `await processor.audited()`
        await gate();
        run.storedBeforeTool = records().filter((r) => r.session_id === groupId && r.event_type === 'model_called').length;
      }
      return `claim ${claim_id}: in review`;
    },
  });
  const sendEmail = agentsTool({
    name: 'send_email',
    description: 'Email the claims team',
    parameters: z.object({ to: z.string() }),
    execute: async () => {
      throw new Error('SMTP timeout');
    },
  });
  const issueRefund = agentsTool({
    name: 'issue_refund',
    description: 'Refund a claim',
    parameters: z.object({ claim_id: z.string(), eur: z.number() }),
    needsApproval: true,
    execute: async () => {
      run.refunds++;
      return 'refunded';
    },
  });
  const noPii: InputGuardrail = { name: 'no_pii_in_input', execute: async () => ({ tripwireTriggered: false, outputInfo: {} }) };
  const billing = new Agent({ name: 'Billing agent', instructions: 'Billing.', model: new OpenAIResponsesModel(openai, 'gpt-4.1-mini'), tools: [issueRefund] });
  const triage = new Agent({
    name: 'Triage agent',
    instructions: 'Route.',
    model: new OpenAIChatCompletionsModel(openai, 'gpt-4o-mini'),
    tools: [lookupClaim, sendEmail],
    handoffs: [billing],
    inputGuardrails: [noPii],
  });
  const runner = new Runner({ workflowName: 'Claims triage', groupId });
  let result = await runner.run(triage, 'Where is my claim 1182?');
  for (const interruption of result.interruptions ?? []) result.state.reject(interruption);
  result = await runner.run(triage, result.state);
  run.finalOutput = result.finalOutput;
  run.requests = server!.requests.slice(before);
  return run;
}

/** A Billing agent whose model asks for two refunds at once; both need an approval. */
function refundsAgent(groupId: string, refunds: number[]): { agent: Agent; runner: Runner } {
  const issueRefund = agentsTool({
    name: 'issue_refund',
    description: 'Refund a claim',
    parameters: z.object({ claim_id: z.string(), eur: z.number() }),
    needsApproval: true,
    execute: async ({ eur }) => {
      refunds.push(eur);
      return `refunded ${eur} EUR`;
    },
  });
  const agent = new Agent({ name: 'Billing agent', instructions: 'Billing.', model: new OpenAIResponsesModel(openai, 'gpt-4.1-mini'), tools: [issueRefund] });
  const runner = new Runner({ workflowName: 'Refunds', groupId });
  return { agent, runner };
}

/** The interruption for one call id. */
function pendingCall(items: RunToolApprovalItem[], callId: string): RunToolApprovalItem {
  const item = items.find((i) => i.rawItem.type === 'function_call' && i.rawItem.callId === callId);
  if (!item) throw new Error(`no interruption for ${callId}`);
  return item;
}

describe('SealtrailTracingProcessor with @openai/agents-core 0.14.3', () => {
  it('records tool calls, model calls, agents, the handoff, the guardrail and the refused approval, with trace and group ids', async () => {
    const client = new AuditClient({ socket: sock });
    const processor = new SealtrailTracingProcessor({ client, actor: { id: 'user-77', type: 'user' } });
    const run = await runClaims(processor, 'thread_8812', () => processor.audited());
    // the model call that asked for the tool was stored before the tool ran
    expect(run.storedBeforeTool).toBe(1);
    await processor.forceFlush();
    await expect(processor.audited()).resolves.toBeUndefined();
    await client.close();
    expect(run.finalOutput).toBe('The refund was not approved.');
    expect(run.refunds).toBe(0);
    expect(processor.failures).toBe(0);

    const recs = records().filter((r) => r.session_id === 'thread_8812');
    expect(recs.map((r) => r.event_type).sort()).toEqual([
      'agent_handoff',
      'agent_invoked', // Triage
      'agent_invoked', // Billing
      'agent_invoked', // Billing again, resumed after the approval was refused
      'guardrail_checked',
      'model_called', // gpt-4o-mini, twice
      'model_called',
      'model_called', // gpt-4.1-mini, twice
      'model_called',
      'tool_invoked', // lookup_claim
      'tool_invoked', // send_email (failed)
      'tool_invoked', // issue_refund (refused)
    ]);
    // one trace (the resumed run continues it), the group as session, the context's actor on every record
    const traceId = recs[0]!.trace_id as string;
    expect(traceId).toMatch(/^trace_[0-9a-f]{32}$/);
    for (const r of recs) {
      expect(r).toMatchObject({ trace_id: traceId, actor: { id: 'user-77', type: 'user' }, source: 'agent' });
      expect(r.span_id).toMatch(/^span_[0-9a-f]{24}$/);
      expect(r.details.workflow).toBe('Claims triage');
    }
    const one = (pred: (r: Stored) => boolean): Stored => {
      const found = recs.filter(pred);
      expect(found).toHaveLength(1);
      return found[0]!;
    };
    expect(one((r) => r.tool?.name === 'lookup_claim')).toMatchObject({
      event_type: 'tool_invoked',
      outcome: 'success',
      agent: { name: 'Triage agent' },
      tool: { arguments: { claim_id: '1182' } },
      details: { output: 'claim 1182: in review' },
    });
    expect(one((r) => r.tool?.name === 'send_email')).toMatchObject({
      outcome: 'error',
      agent: { name: 'Triage agent' },
      details: { error: { message: 'Error running tool (non-fatal)', data: { tool_name: 'send_email' } } },
    });
    expect(one((r) => r.tool?.name === 'issue_refund')).toMatchObject({ outcome: 'denied', approval: { status: 'denied' }, agent: { name: 'Billing agent' } });
    // one model_called per call, in the order the API answered them, with what each answer said
    expect(run.requests.map((r) => [r.path, (r.body as { model?: unknown }).model])).toEqual([
      [CHAT_PATH, 'gpt-4o-mini'],
      [CHAT_PATH, 'gpt-4o-mini'],
      [RESPONSES_PATH, 'gpt-4.1-mini'],
      [RESPONSES_PATH, 'gpt-4.1-mini'],
    ]);
    const models = recs.filter((r) => r.event_type === 'model_called');
    expect(models.map((r) => [r.model?.name, r.agent?.name])).toEqual([
      [CHAT_SERVED, 'Triage agent'],
      [CHAT_SERVED, 'Triage agent'],
      [RESPONSES_SERVED, 'Billing agent'],
      [RESPONSES_SERVED, 'Billing agent'],
    ]);
    expect(models.map((m) => m.details.response_id)).toEqual(run.requests.map((r) => r.answer!.body['id']));
    const sent = run.requests.map((r) => r.answer!.body['usage'] as Record<string, unknown>);
    // a completion's usage under the names a response's has; a response's as sent
    expect(models.map((m) => m.details.usage)).toEqual([
      ...sent.slice(0, 2).map((u) => ({
        input_tokens: u['prompt_tokens'],
        output_tokens: u['completion_tokens'],
        total_tokens: u['total_tokens'],
        input_tokens_details: u['prompt_tokens_details'],
        output_tokens_details: u['completion_tokens_details'],
      })),
      ...sent.slice(2),
    ]);
    expect(models.map((m) => (m.details.usage as { input_tokens?: unknown }).input_tokens)).toEqual([310, 320, 501, 502]);
    expect(one((r) => r.event_type === 'agent_handoff')).toMatchObject({ agent: { name: 'Triage agent' }, details: { to_agent: 'Billing agent' } });
    expect(one((r) => r.event_type === 'guardrail_checked')).toMatchObject({ policy: { rule: 'no_pii_in_input', decision: 'passed' }, outcome: 'success' });
    const triage = one((r) => r.event_type === 'agent_invoked' && r.agent?.name === 'Triage agent');
    expect(triage.details).toMatchObject({ tools: ['lookup_claim', 'send_email'], handoffs: ['Billing agent'] });
    // the tool's parent is the SDK's turn span (not recorded), whose parent is the agent's
    expect(one((r) => r.tool?.name === 'lookup_claim').details.parent_span_id).toMatch(/^span_/);
    expect(triage.details.parent_span_id).toMatch(/^span_/);
  });

  it('never fails the run when events cannot be stored: onError, failures, lastError and audited() tell', async () => {
    const client = new AuditClient({ socket: sock });
    await client.close();
    const seen: Array<{ code: unknown; type: string }> = [];
    const processor = new SealtrailTracingProcessor({ client, onError: (err, event) => seen.push({ code: (err as { code?: unknown }).code, type: event.event_type }) });
    const run = await runClaims(processor, 'thread_closed');
    await processor.forceFlush();
    expect(run.finalOutput).toBe('The refund was not approved.');
    expect(processor.failures).toBe(12);
    expect(seen).toHaveLength(12);
    expect(seen.every((s) => s.code === 'client_closed')).toBe(true);
    expect(processor.lastError).toMatchObject({ code: 'client_closed' });
    // audited() reports the first failure once, then only new ones
    await expect(processor.audited()).rejects.toMatchObject({ code: 'client_closed' });
    await expect(processor.audited()).resolves.toBeUndefined();
    expect(records().filter((r) => r.session_id === 'thread_closed')).toEqual([]);
  });

  it('records approvals requested, granted and denied, with the approver, before the tool runs', async () => {
    setTracingDisabled(false);
    const client = new AuditClient({ socket: sock });
    const processor = new SealtrailTracingProcessor({ client, actor: { id: 'user-77', type: 'user' } });
    setTraceProcessors([processor]);
    const refunds: number[] = [];
    const { agent, runner } = refundsAgent('thread_refunds', refunds);

    const first = await runner.run(agent, REFUNDS_PROMPT);
    expect(first.interruptions.map((i) => i.name)).toEqual(['issue_refund', 'issue_refund']);
    await processor.recordApprovalRequests(first);
    await processor.approveAudited(first.state, pendingCall(first.interruptions, 'call_small'), { approver: 'ops-lead-3' });
    await processor.rejectAudited(first.state, pendingCall(first.interruptions, 'call_big'), {
      approver: 'ops-lead-3',
      actor: { id: 'ops-lead-3', type: 'user' },
      message: 'Over the 500 EUR limit.',
    });
    const final = await runner.run(agent, first.state);
    expect(final.finalOutput).toBe('40 EUR refunded; 4000 EUR refused.');
    expect(refunds).toEqual([40]);
    await processor.forceFlush();
    await expect(processor.audited()).resolves.toBeUndefined();
    await client.close();

    const recs = records().filter((r) => r.session_id === 'thread_refunds');
    const traceId = recs[0]!.trace_id;
    expect(traceId).toMatch(/^trace_[0-9a-f]{32}$/);
    const approvals = recs.filter((r) => r.event_type.startsWith('approval_'));
    expect(approvals.map((r) => [r.event_type, r.outcome, r.tool?.call_id, r.approval])).toEqual([
      ['approval_requested', 'pending', 'call_small', { status: 'requested' }],
      ['approval_requested', 'pending', 'call_big', { status: 'requested' }],
      ['approval_granted', 'success', 'call_small', { status: 'granted', approver: 'ops-lead-3' }],
      ['approval_denied', 'denied', 'call_big', { status: 'denied', approver: 'ops-lead-3' }],
    ]);
    for (const a of approvals) {
      // linked to the run: its trace and session, the agent whose call it is, what the call asked
      expect(a).toMatchObject({ trace_id: traceId, session_id: 'thread_refunds', agent: { name: 'Billing agent' }, tool: { name: 'issue_refund' }, details: { workflow: 'Refunds' } });
    }
    expect(approvals[2]!.tool?.arguments).toEqual({ claim_id: '1182', eur: 40 });
    expect(approvals[3]!.tool?.arguments).toEqual({ claim_id: '1182', eur: 4000 });
    // the processor's actor, unless the decision names its own
    expect(approvals[2]!.actor).toEqual({ id: 'user-77', type: 'user' });
    expect(approvals[3]).toMatchObject({ actor: { id: 'ops-lead-3', type: 'user' }, details: { message: 'Over the 500 EUR limit.' } });

    // the granted call ran after its approval was stored; the refused one is the SDK's denied tool call
    const tools = recs.filter((r) => r.event_type === 'tool_invoked');
    const ran = tools.filter((r) => r.outcome === 'success');
    expect(ran).toHaveLength(1);
    expect(ran[0]).toMatchObject({ tool: { name: 'issue_refund', arguments: { eur: 40 } }, details: { output: 'refunded 40 EUR' } });
    expect(ran[0]!.seq).toBeGreaterThan(approvals[2]!.seq);
    const refused = tools.filter((r) => r.outcome === 'denied');
    expect(refused).toHaveLength(1);
    // the SDK's span of a refused call has no input: the call's arguments are on approval_denied only
    expect(refused[0]).toMatchObject({ tool: { name: 'issue_refund' }, approval: { status: 'denied' }, details: { output: 'Over the 500 EUR limit.' } });
    expect(refused[0]!.tool).not.toHaveProperty('arguments');
    expect(refused[0]!.seq).toBeGreaterThan(approvals[3]!.seq);
    expect(tools).toHaveLength(2);
  });

  it('leaves a decision it could not store undone: the call stays pending and the run asks again', async () => {
    setTracingDisabled(false);
    const client = new AuditClient({ socket: sock });
    await client.close();
    const unstored: string[] = [];
    const processor = new SealtrailTracingProcessor({ client, onError: (_err, event) => unstored.push(event.event_type) });
    setTraceProcessors([processor]);
    const refunds: number[] = [];
    const { agent, runner } = refundsAgent('thread_refunds_unstored', refunds);
    const first = await runner.run(agent, REFUNDS_PROMPT);
    await expect(processor.recordApprovalRequests(first)).rejects.toMatchObject({ code: 'client_closed' });
    await expect(processor.approveAudited(first.state, pendingCall(first.interruptions, 'call_small'), { approver: 'ops-lead-3' })).rejects.toMatchObject({ code: 'client_closed' });
    await expect(processor.rejectAudited(first.state, pendingCall(first.interruptions, 'call_big'), { approver: 'ops-lead-3' })).rejects.toMatchObject({ code: 'client_closed' });
    const again = await runner.run(agent, first.state);
    expect(refunds).toEqual([]);
    expect(again.interruptions.map((i) => (i.rawItem.type === 'function_call' ? i.rawItem.callId : undefined)).sort()).toEqual(['call_big', 'call_small']);
    await processor.forceFlush();
    // the helpers' failures count and reach onError like the spans' (the resumed run's agent span too)
    expect(unstored.sort()).toEqual(['agent_invoked', 'agent_invoked', 'approval_denied', 'approval_granted', 'approval_requested', 'approval_requested', 'model_called']);
    expect(processor.failures).toBe(7);
    expect(records().filter((r) => r.session_id === 'thread_refunds_unstored')).toEqual([]);
  });
});
