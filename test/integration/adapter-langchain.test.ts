import { join } from 'node:path';
import { dispatchCustomEvent } from '@langchain/core/callbacks/dispatch';
import { awaitAllCallbacks } from '@langchain/core/callbacks/promises';
import type { BaseMessage } from '@langchain/core/messages';
import { RunnableLambda, type RunnableConfig } from '@langchain/core/runnables';
import { tool as lcTool } from '@langchain/core/tools';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SealtrailCallbackHandler, type LangChainOptions } from '../../src/client/adapters/langchain.js';
import { AuditClient } from '../../src/client/index.js';
import { SocketSidecar, type StoredRecord as Stored } from '../helpers/socket-sidecar.js';
import { REFUND_PROMPT, refundModel } from '../helpers/langchain-models.js';

/**
 * SealtrailCallbackHandler on a @langchain/core 1.4.0 tool-calling agent
 * (prompt, model, tool, model, as test/helpers/langchain-run.ts drives it,
 * with the same scripted chat model), sending through an AuditClient to a
 * real sidecar's socket source; the records are read back from the
 * sidecar's buffer (no collector runs, so nothing is shipped away).
 */

let sidecar: SocketSidecar | undefined;
let sock: string;

beforeAll(async () => {
  sidecar = await SocketSidecar.start('st-adapter-lc-');
  sock = sidecar.sock;
});

afterAll(async () => {
  await sidecar?.stop();
});

const records = (session: string): Stored[] => sidecar!.records(session);

interface Run {
  answer?: string;
  refundsLooked: number;
}

/** The agent: prompt, model (asks for refund_status), an approval, the tool, model; then a failing tool on its own. */
async function runAgent(handler: SealtrailCallbackHandler, threadId: string, run: Run = { refundsLooked: 0 }): Promise<Run> {
  const config: RunnableConfig = { callbacks: [handler], metadata: { thread_id: threadId } };
  const refundStatus = lcTool(
    async ({ order_id }) => {
      run.refundsLooked++;
      return `refund for ${order_id}: issued`;
    },
    { name: 'refund_status', description: 'Look up the refund of an order', schema: z.object({ order_id: z.string() }) },
  );
  const model = refundModel();
  const prompt = REFUND_PROMPT;
  const agent = RunnableLambda.from(async (input: { order: string }, cfg?: RunnableConfig): Promise<string> => {
    const messages: BaseMessage[] = [...(await prompt.invoke(input, cfg)).toChatMessages()];
    const ai = await model.invoke(messages, cfg);
    messages.push(ai);
    await dispatchCustomEvent('approval', { status: 'granted', approver: 'alice', action: 'refund_status' }, cfg);
    for (const call of ai.tool_calls ?? []) messages.push(await refundStatus.invoke({ ...call, type: 'tool_call' }, cfg));
    const final = await model.invoke(messages, cfg);
    return typeof final.content === 'string' ? final.content : JSON.stringify(final.content);
  }).withConfig({ runName: 'RefundAgent' });
  run.answer = await agent.invoke({ order: '551902' }, config);
  return run;
}

async function failingTool(handler: SealtrailCallbackHandler, threadId: string): Promise<unknown> {
  const sqlQuery = lcTool(
    async (): Promise<string> => {
      throw new Error('database is locked');
    },
    { name: 'sql_db_query', description: 'Run a SQL query', schema: z.object({ query: z.string() }) },
  );
  return sqlQuery.invoke({ query: 'SELECT 1' }, { callbacks: [handler], metadata: { session_id: threadId } }).catch((err: unknown) => err);
}

const handler = (client: AuditClient, more: Partial<LangChainOptions> = {}) => new SealtrailCallbackHandler({ client, ...more });

describe('SealtrailCallbackHandler with @langchain/core 1.4.0', () => {
  it('records the agent run, its model calls, the approval and the tool, with model, agent, session and trace ids', async () => {
    const client = new AuditClient({ socket: sock });
    const audit = handler(client, { agent: { id: 'support-bot' } });
    const run = await runAgent(audit, 'thread-8812');
    expect(await failingTool(audit, 'thread-8812')).toMatchObject({ message: 'database is locked' });
    await awaitAllCallbacks();
    await audit.audited();
    await client.close();
    expect(run.answer).toBe('The refund of order 551902 was issued.');

    const recs = records('thread-8812');
    // the prompt's run is a chain inside the agent: not recorded
    expect(recs.map((r) => r.event_type).sort()).toEqual(['agent_invoked', 'approval_granted', 'model_called', 'model_called', 'tool_invoked', 'tool_invoked']);
    const agentRun = recs.find((r) => r.event_type === 'agent_invoked')!;
    // the agent run is the root: its run id is the trace every run inside it carries
    const traceId = agentRun.span_id as string;
    expect(agentRun).toMatchObject({ trace_id: traceId, outcome: 'success', agent: { name: 'RefundAgent' } });
    expect(traceId).toMatch(/^[0-9a-f-]{36}$/);
    const inside = recs.filter((r) => r.trace_id === traceId);
    expect(inside).toHaveLength(5);
    for (const r of inside) expect(r.agent).toEqual({ name: 'RefundAgent' });

    const models = inside.filter((r) => r.event_type === 'model_called');
    for (const m of models) expect(m).toMatchObject({ model: { name: 'gpt-4o-mini', provider: 'openai' }, outcome: 'success' });
    expect(models.map((m) => m.details.tool_calls ?? null)).toEqual([[{ name: 'refund_status', id: 'call_refund' }], null]);
    for (const m of models) expect(m.details.parent_span_id).toBe(traceId);

    expect(inside.find((r) => r.event_type === 'tool_invoked')).toMatchObject({
      tool: { name: 'refund_status', arguments: { order_id: '551902' }, call_id: 'call_refund' },
      outcome: 'success',
      details: { output: 'refund for 551902: issued', parent_span_id: traceId },
    });
    const approval = inside.find((r) => r.event_type === 'approval_granted')!;
    expect(approval).toMatchObject({ approval: { status: 'granted', approver: 'alice' }, action: 'refund_status', outcome: 'success', details: { parent_span_id: traceId } });
    expect(approval.span_id).toBeUndefined();

    // the failing tool was invoked on its own: a root run of its own trace, with the context's agent
    const sql = recs.find((r) => r.tool?.name === 'sql_db_query')!;
    expect(sql).toMatchObject({ event_type: 'tool_invoked', outcome: 'error', agent: { id: 'support-bot' }, details: { error: { name: 'Error', message: 'database is locked' } } });
    expect(sql.trace_id).toBe(sql.span_id);
  });

  it('by default never fails the run when events cannot be stored: onError, failures and audited() tell', async () => {
    const client = new AuditClient({ socket: sock });
    await client.close();
    const codes: unknown[] = [];
    const audit = handler(client, { onError: (err) => codes.push((err as { code?: unknown }).code) });
    const run = await runAgent(audit, 'thread-closed');
    await awaitAllCallbacks();
    await audit.flush();
    expect(run.answer).toBe('The refund of order 551902 was issued.');
    expect(codes).toEqual(Array(5).fill('client_closed'));
    expect(audit.failures).toBe(5);
    await expect(audit.audited()).rejects.toMatchObject({ code: 'client_closed' });
    expect(records('thread-closed')).toEqual([]);
  });

  it('failClosed: a model answer that could not be stored fails the run, and the tool it asked for never runs', async () => {
    // nobody answers on this socket: every emit times out after ackTimeoutMs
    const client = new AuditClient({ socket: join(sidecar!.dir, 'nobody.sock'), failClosed: true, ackTimeoutMs: 200, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const audit = handler(client, { failClosed: true });
    const run: Run = { refundsLooked: 0 };
    const err = await runAgent(audit, 'thread-fail-closed', run).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'client_ack_timeout' });
    expect(run.refundsLooked).toBe(0);
    expect(run.answer).toBeUndefined();
    await client.close({ timeoutMs: 0 }).catch(() => undefined);
  });

  it('failClosed with a working sidecar: every event is stored before the run goes on', async () => {
    const client = new AuditClient({ socket: sock, failClosed: true });
    const audit = handler(client, { failClosed: true });
    const run = await runAgent(audit, 'thread-ok-closed');
    expect(run.answer).toBe('The refund of order 551902 was issued.');
    // awaited handlers: everything is stored when invoke() returns, without waiting for callbacks
    expect(records('thread-ok-closed')).toHaveLength(5);
    await client.close();
  });
});
