import { convertToModelMessages, generateText, stepCountIs, streamText, tool, type LanguageModel, type ModelMessage, type UIMessage } from 'ai';
import type { LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { convertArrayToReadableStream, MockLanguageModelV3 } from 'ai/test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aiSdkTelemetry, type AiSdkTelemetry } from '../../src/client/adapters/ai-sdk.js';
import { AuditClient } from '../../src/client/index.js';
import { SocketSidecar, type StoredRecord as Stored } from '../helpers/socket-sidecar.js';

/**
 * Tool approvals (`needsApproval`) through aiSdkTelemetry() on real ai
 * 6.0.333 calls: a call that stops with an approval request, the next call
 * that carries the application's answer, and later calls that resend the
 * history. The models are the AI SDK's MockLanguageModelV3; the events go
 * through an AuditClient to a real sidecar and are read back from its
 * buffer, in seq order.
 */

let sidecar: SocketSidecar | undefined;

beforeAll(async () => {
  sidecar = await SocketSidecar.start('st-adapter-ai-appr-');
});

afterAll(async () => {
  await sidecar?.stop();
});

const records = (session: string): Stored[] => sidecar!.records(session);
const approvals = (recs: Stored[]): Stored[] => recs.filter((r) => r.event_type.startsWith('approval_'));

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 5, text: 5, reasoning: 0 } };
const finish = (unified: 'stop' | 'tool-calls') => ({ unified, raw: unified });

/** The text of the prompt's last message when it is the user's, else undefined. */
function lastUserText(prompt: Array<{ role: string; content: unknown }>): string | undefined {
  const last = prompt.at(-1);
  if (last?.role !== 'user' || !Array.isArray(last.content)) return undefined;
  return (last.content as Array<{ type: string; text?: string }>).map((p) => p.text ?? '').join('');
}

/** Asks for `pay` when the user's last message asks to pay; otherwise (after a tool result, or on thanks) answers. */
function payModel(): LanguageModel {
  const wantsTool = (prompt: Array<{ role: string; content: unknown }>): boolean => lastUserText(prompt)?.includes('pay') === true;
  const call = { type: 'tool-call' as const, toolCallId: 'call_pay', toolName: 'pay', input: '{"amount":42}' };
  return new MockLanguageModelV3({
    provider: 'acme.chat',
    modelId: 'acme-large',
    doGenerate: async ({ prompt }) =>
      wantsTool(prompt)
        ? { content: [call], finishReason: finish('tool-calls'), usage, warnings: [] }
        : { content: [{ type: 'text', text: 'Done.' }], finishReason: finish('stop'), usage, warnings: [] },
    doStream: async ({ prompt }) => ({
      stream: convertArrayToReadableStream<LanguageModelV3StreamPart>(
        wantsTool(prompt)
          ? [{ type: 'stream-start', warnings: [] }, call, { type: 'finish', finishReason: finish('tool-calls'), usage }]
          : [
              { type: 'stream-start', warnings: [] },
              { type: 'text-start', id: 't' },
              { type: 'text-delta', id: 't', delta: 'Done.' },
              { type: 'text-end', id: 't' },
              { type: 'finish', finishReason: finish('stop'), usage },
            ],
      ),
    }),
  });
}

function payTools(counter: { paid: number }) {
  return {
    pay: tool({
      description: 'Pay an amount',
      inputSchema: z.object({ amount: z.number() }),
      needsApproval: true,
      execute: async ({ amount }) => {
        counter.paid++;
        return `paid ${amount}`;
      },
    }),
  };
}

const ask: ModelMessage[] = [{ role: 'user', content: 'Please pay 42.' }];

/** The messages of the next call: the history, then the application's answer in a tool message. */
function answer(history: ModelMessage[], approvalId: string, approved: boolean, reason?: string): ModelMessage[] {
  return [...history, { role: 'tool', content: [{ type: 'tool-approval-response', approvalId, approved, ...(reason === undefined ? {} : { reason }) }] }];
}

/** Runs call 1 with generateText: the model asks for `pay`, the call stops with the approval request. */
async function requestApproval(audit: AiSdkTelemetry, counter: { paid: number }): Promise<{ history: ModelMessage[]; approvalId: string }> {
  const r = await generateText({ model: payModel(), messages: ask, tools: payTools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
  const request = r.content.find((p) => p.type === 'tool-approval-request');
  expect(request).toBeDefined();
  return { history: [...ask, ...r.response.messages], approvalId: request!.approvalId };
}

describe('aiSdkTelemetry: tool approvals with ai 6.0.333', () => {
  it('generateText: records the request, then the grant before the tool runs, and never the same approval twice', async () => {
    const client = new AuditClient({ socket: sidecar!.sock });
    const audit = aiSdkTelemetry(client, { agent: { id: 'payer' }, functionId: 'pay', metadata: { session_id: 'sess-appr-gen' } });
    const counter = { paid: 0 };
    const tools = payTools(counter);

    const { history, approvalId } = await requestApproval(audit, counter);
    await audit.audited();
    expect(counter.paid).toBe(0);
    const first = records('sess-appr-gen');
    expect(first.map((r) => r.event_type)).toEqual(['model_called', 'approval_requested', 'agent_invoked']);
    const call1 = first[2]!;
    expect(first[1]).toMatchObject({
      source: 'agent',
      action: 'tool-approval-request',
      outcome: 'pending',
      approval: { status: 'requested' },
      trace_id: call1.trace_id,
      agent: { id: 'payer' },
      tool: { name: 'pay', call_id: 'call_pay', arguments: { amount: 42 } },
      details: { approval_id: approvalId, parent_span_id: call1.span_id, function_id: 'pay' },
    });
    expect(first[1]!.span_id).toBeUndefined();

    // call 2: the answer, approved
    const call2Messages = answer(history, approvalId, true, 'within budget');
    const second = await generateText({ model: payModel(), messages: call2Messages, tools, stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await audit.audited();
    expect(second.text).toBe('Done.');
    expect(counter.paid).toBe(1);
    const after2 = records('sess-appr-gen').slice(first.length);
    expect(after2.map((r) => r.event_type)).toEqual(['approval_granted', 'tool_invoked', 'model_called', 'agent_invoked']);
    const [granted, invoked] = after2 as [Stored, Stored];
    const call2 = after2[3]!;
    expect(granted.seq).toBeLessThan(invoked.seq);
    expect(granted).toMatchObject({
      action: 'tool-approval-response',
      outcome: 'success',
      approval: { status: 'granted' },
      trace_id: call2.trace_id,
      agent: { id: 'payer' },
      tool: { name: 'pay', call_id: 'call_pay' },
      details: { approval_id: approvalId, reason: 'within budget', parent_span_id: call2.span_id },
    });
    expect(invoked).toMatchObject({ trace_id: call2.trace_id, tool: { name: 'pay', call_id: 'call_pay', arguments: { amount: 42 } }, details: { output: 'paid 42' } });
    expect(call2.trace_id).not.toBe(call1.trace_id);

    // call 3: the whole history resent with a new user message: the answer was acted on already
    const later: ModelMessage[] = [...call2Messages, ...second.response.messages, { role: 'user', content: 'Thanks!' }];
    expect((await generateText({ model: payModel(), messages: later, tools, experimental_telemetry: audit })).text).toBe('Done.');
    // the same answer sent again (a retried call): the AI SDK runs the tool again, the approval is not recorded again
    await generateText({ model: payModel(), messages: call2Messages, tools, stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await audit.audited();
    await client.close();
    expect(counter.paid).toBe(2);
    const all = records('sess-appr-gen');
    expect(approvals(all).map((r) => [r.event_type, r.details.approval_id])).toEqual([
      ['approval_requested', approvalId],
      ['approval_granted', approvalId],
    ]);
    expect(all.filter((r) => r.event_type === 'tool_invoked')).toHaveLength(2);
  });

  it('generateText: a denied approval is approval_denied with its reason, and the tool never runs', async () => {
    const client = new AuditClient({ socket: sidecar!.sock });
    const audit = aiSdkTelemetry(client, { metadata: { session_id: 'sess-appr-deny', agent_name: 'Payer' } });
    const counter = { paid: 0 };
    const model = payModel() as MockLanguageModelV3;
    const { history, approvalId } = await requestApproval(audit, counter);
    const r = await generateText({ model, messages: answer(history, approvalId, false, 'over the limit'), tools: payTools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await audit.audited();
    await client.close();
    expect(r.text).toBe('Done.');
    expect(counter.paid).toBe(0);
    // what the model was told instead of a result
    expect(JSON.stringify(model.doGenerateCalls[0]!.prompt)).toContain('"execution-denied"');

    const recs = records('sess-appr-deny');
    expect(recs.filter((r) => r.event_type === 'tool_invoked')).toEqual([]);
    const denied = recs.find((x) => x.event_type === 'approval_denied');
    const call2 = recs.filter((x) => x.event_type === 'agent_invoked')[1]!;
    expect(denied).toMatchObject({
      outcome: 'denied',
      approval: { status: 'denied' },
      trace_id: call2.trace_id,
      agent: { name: 'Payer' },
      tool: { name: 'pay', call_id: 'call_pay' },
      details: { approval_id: approvalId, reason: 'over the limit' },
    });
    expect(approvals(recs).map((x) => x.event_type)).toEqual(['approval_requested', 'approval_denied']);
  });

  it('streamText: the request and the answer belong to the trace of the call that made or carried them', async () => {
    const client = new AuditClient({ socket: sidecar!.sock });
    const audit = aiSdkTelemetry(client, { metadata: { session_id: 'sess-appr-stream' } });
    const counter = { paid: 0 };
    const tools = payTools(counter);
    const s1 = streamText({ model: payModel(), messages: ask, tools, stopWhen: stepCountIs(3), experimental_telemetry: audit });
    const request = (await s1.content).find((p) => p.type === 'tool-approval-request');
    const history = [...ask, ...(await s1.response).messages];
    const s2 = streamText({ model: payModel(), messages: answer(history, request!.approvalId, true), tools, stopWhen: stepCountIs(3), experimental_telemetry: audit });
    expect(await s2.text).toBe('Done.');
    await audit.audited();
    await client.close();
    expect(counter.paid).toBe(1);

    const recs = records('sess-appr-stream');
    const [call1, call2] = recs.filter((r) => r.event_type === 'agent_invoked') as [Stored, Stored];
    const requested = recs.find((r) => r.event_type === 'approval_requested')!;
    const granted = recs.find((r) => r.event_type === 'approval_granted')!;
    const invoked = recs.find((r) => r.event_type === 'tool_invoked')!;
    expect(requested).toMatchObject({ trace_id: call1.trace_id, tool: { name: 'pay', call_id: 'call_pay' }, details: { approval_id: request!.approvalId, parent_span_id: call1.span_id } });
    expect(granted).toMatchObject({ trace_id: call2.trace_id, tool: { name: 'pay', call_id: 'call_pay' }, details: { approval_id: request!.approvalId, parent_span_id: call2.span_id } });
    expect(granted.details.reason).toBeUndefined();
    expect(invoked.trace_id).toBe(call2.trace_id);
    expect(granted.seq).toBeLessThan(invoked.seq);
  });

  it('recordInputs false: answers are still recorded (from the call start), without their reason; generateText gives them no trace', async () => {
    const client = new AuditClient({ socket: sidecar!.sock });
    const audit = aiSdkTelemetry(client, { recordInputs: false, metadata: { session_id: 'sess-appr-noin' } });
    const counter = { paid: 0 };
    const { history, approvalId } = await requestApproval(audit, counter);
    await generateText({ model: payModel(), messages: answer(history, approvalId, true, 'fine'), tools: payTools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    const s1 = streamText({ model: payModel(), messages: ask, tools: payTools(counter), experimental_telemetry: audit });
    const streamed = (await s1.content).find((p) => p.type === 'tool-approval-request')!;
    const s2 = streamText({ model: payModel(), messages: answer([...ask, ...(await s1.response).messages], streamed.approvalId, false, 'no'), tools: payTools(counter), experimental_telemetry: audit });
    await s2.consumeStream();
    await audit.audited();
    await client.close();
    expect(counter.paid).toBe(1);

    const recs = records('sess-appr-noin');
    const calls = recs.filter((r) => r.event_type === 'agent_invoked');
    expect(approvals(recs).map((r) => [r.event_type, r.details.approval_id, r.trace_id ?? null])).toEqual([
      ['approval_requested', approvalId, calls[0]!.trace_id],
      ['approval_granted', approvalId, null],
      ['approval_requested', streamed.approvalId, calls[2]!.trace_id],
      ['approval_denied', streamed.approvalId, calls[3]!.trace_id],
    ]);
    for (const r of approvals(recs)) expect(r.details.reason).toBeUndefined();
    const granted = recs.find((r) => r.event_type === 'approval_granted')!;
    expect(granted.tool).toEqual({ name: 'pay', call_id: 'call_pay' });
    expect(granted.seq).toBeLessThan(recs.find((r) => r.event_type === 'tool_invoked')!.seq);
  });

  it('answers from UI messages (useChat): recorded when the AI SDK acts on them, not once the tool result is in the same message', async () => {
    const client = new AuditClient({ socket: sidecar!.sock });
    const counter = { paid: 0 };
    const tools = payTools(counter);
    const ui = (state: 'approval-responded' | 'output-available'): UIMessage[] => [
      { id: 'u1', role: 'user', parts: [{ type: 'text', text: 'Please pay 42.' }] },
      {
        id: 'a1',
        role: 'assistant',
        parts: [
          state === 'approval-responded'
            ? { type: 'tool-pay', toolCallId: 'call_ui', state, input: { amount: 42 }, approval: { id: 'appr_ui', approved: true, reason: 'ok' } }
            : { type: 'tool-pay', toolCallId: 'call_ui', state, input: { amount: 42 }, output: 'paid 42', approval: { id: 'appr_ui', approved: true, reason: 'ok' } },
        ],
      },
    ];
    // a telemetry object each, as a server that makes one per request would: only the AI SDK's own rules keep the second from recording
    for (const state of ['approval-responded', 'output-available'] as const) {
      const audit = aiSdkTelemetry(client, { metadata: { session_id: `sess-appr-ui-${state}` } });
      const messages = await convertToModelMessages(ui(state), { tools });
      await generateText({ model: payModel(), messages, tools, stopWhen: stepCountIs(3), experimental_telemetry: audit });
      await audit.audited();
    }
    await client.close();
    expect(counter.paid).toBe(1);
    expect(approvals(records('sess-appr-ui-approval-responded'))).toMatchObject([
      { event_type: 'approval_granted', tool: { name: 'pay', call_id: 'call_ui' }, details: { approval_id: 'appr_ui', reason: 'ok' } },
    ]);
    expect(approvals(records('sess-appr-ui-output-available'))).toEqual([]);
  });

  it('failClosed: an approved tool whose approval_granted could not be stored never runs', async () => {
    const ok = new AuditClient({ socket: sidecar!.sock });
    const counter = { paid: 0 };
    const { history, approvalId } = await requestApproval(aiSdkTelemetry(ok, { metadata: { session_id: 'sess-appr-closed' } }), counter);
    await ok.close();

    const closed = new AuditClient({ socket: sidecar!.sock, failClosed: true });
    await closed.close();
    const audit = aiSdkTelemetry(closed, { failClosed: true, metadata: { session_id: 'sess-appr-closed' } });
    const call = generateText({ model: payModel(), messages: answer(history, approvalId, true), tools: payTools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await expect(call).rejects.toMatchObject({ code: 'client_closed' });
    expect(counter.paid).toBe(0);
    expect(audit.failures).toBeGreaterThanOrEqual(1);
  });
});
