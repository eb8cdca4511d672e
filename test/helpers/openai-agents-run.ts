/**
 * Drives an agent run of @openai/agents-core with the SDK's own OpenAI models
 * (OpenAIChatCompletionsModel and OpenAIResponsesModel of
 * @openai/agents-openai, on the `openai` client) and exports its trace with
 * the SDK's own BatchTraceProcessor, writing what a file exporter writes and
 * what the SDK's OpenAITracingExporter posts. The models talk HTTP to a fake
 * OpenAI API on 127.0.0.1 (no API key, nothing leaves the host); everything
 * that shapes the trace, model spans included, is the SDK's.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  Agent,
  BatchTraceProcessor,
  Runner,
  setTraceProcessors,
  setTracingDisabled,
  tool as agentsTool,
  type InputGuardrail,
  type TracingExporter,
} from '@openai/agents-core';
import { OpenAIChatCompletionsModel, OpenAIResponsesModel } from '@openai/agents-openai';
import OpenAI from 'openai';
import { z } from 'zod';
import {
  CHAT_PATH,
  CHAT_SERVED,
  chatBody,
  FakeOpenAIServer,
  RESPONSES_PATH,
  RESPONSES_SERVED,
  responseBody,
  responsesMessage,
  type Handler,
  type RecordedRequest,
} from './fake-openai-server.js';

export { CHAT_SERVED, RESPONSES_SERVED };
export const FINAL_ANSWER = 'Your claim 1182 is in review.';

export interface AgentsRun {
  /** one JSON line per exported trace and span (what a file exporter writes) */
  spans: string;
  /** one JSON line per export: {"data": [item.toJSON(), ...]}, as OpenAITracingExporter posts it */
  bodies: string;
  /** the run's final output */
  finalOutput: unknown;
  /** how many times the processor called the exporter */
  exportCalls: number;
  /** every request the fake API received, with what it answered, in order */
  requests: RecordedRequest[];
}

/**
 * Triage (Chat Completions) first asks for lookup_claim and send_email, then,
 * once the tool results are in the messages, for the handoff to Billing.
 * Stateless: the answer depends on the request only.
 */
export const triageApi: Handler = (req, nth) => {
  const body = req.body as { messages?: unknown; tools?: Array<{ function?: { name?: string } }> };
  const usage = { input: 300 + 10 * nth, output: 20 + nth };
  if (!JSON.stringify(body.messages).includes('"role":"tool"')) {
    const toolCalls = [
      { id: 'call_lookup', name: 'lookup_claim', args: { claim_id: '1182' } },
      { id: 'call_mail', name: 'send_email', args: { to: 'claims-team' } },
    ];
    return { body: chatBody(`chatcmpl-triage-${nth}`, CHAT_SERVED, { toolCalls }, usage) };
  }
  // the handoff tool's name is the SDK's to choose: take it from what was offered
  const handoff = (body.tools ?? []).map((t) => t.function?.name ?? '').find((n) => n.toLowerCase().includes('billing'));
  if (handoff === undefined) throw new Error('the SDK offered no handoff to the billing agent');
  return { body: chatBody(`chatcmpl-triage-${nth}`, CHAT_SERVED, { toolCalls: [{ id: 'call_handoff', name: handoff, args: {} }] }, usage) };
};

/** Billing (Responses) answers at once. */
const billingApi: Handler = (_req, nth) => ({
  body: responseBody(`resp_billing_${nth}`, RESPONSES_SERVED, [responsesMessage(`msg_billing_${nth}`, FINAL_ANSWER)], { input: 500 + nth, output: 12 }),
});

/** Triage answers with two tool calls (one of them fails), then hands off to Billing, which answers. */
export async function runOpenAIAgents(dir: string): Promise<AgentsRun> {
  // one directory per file: each is a sidecar source of its own at the end
  const agents: AgentsRun = {
    spans: join(dir, 'agents', 'spans.jsonl'),
    bodies: join(dir, 'agents-bodies', 'bodies.jsonl'),
    finalOutput: undefined,
    exportCalls: 0,
    requests: [],
  };
  for (const f of [agents.spans, agents.bodies]) mkdirSync(join(f, '..'), { recursive: true });

  // Vitest sets NODE_ENV=test, and @openai/agents-core then starts with
  // tracing disabled (config.mjs: tracing.disabled); so does
  // OPENAI_AGENTS_DISABLE_TRACING=1 if the environment has it.
  setTracingDisabled(false);
  const exporter: TracingExporter = {
    async export(items) {
      agents.exportCalls++;
      const json = items.map((item) => item.toJSON()).filter((j) => j !== null);
      // One line per item (what a file exporter writes), and the batch as the
      // SDK's OpenAITracingExporter posts it: {"data": [item.toJSON(), ...]}.
      for (const j of json) appendFileSync(agents.spans, `${JSON.stringify(j)}\n`);
      appendFileSync(agents.bodies, `${JSON.stringify({ data: json })}\n`);
    },
  };
  const processor = new BatchTraceProcessor(exporter);
  // replaces the default processor (a console exporter) rather than adding to it
  setTraceProcessors([processor]);

  const server = await FakeOpenAIServer.start({ [CHAT_PATH]: triageApi, [RESPONSES_PATH]: billingApi });
  try {
    // no retries: each model call is exactly one request the server recorded
    const openai = new OpenAI({ apiKey: 'test', baseURL: server.baseURL, maxRetries: 0, timeout: 10_000 });
    const lookupClaim = agentsTool({
      name: 'lookup_claim',
      description: 'Look up the status of an insurance claim',
      parameters: z.object({ claim_id: z.string() }),
      execute: async ({ claim_id }) => `claim ${claim_id}: in review`,
    });
    const sendEmail = agentsTool({
      name: 'send_email',
      description: 'Email the claims team',
      parameters: z.object({ to: z.string() }),
      execute: async () => {
        throw new Error('SMTP timeout');
      },
    });
    const noPii: InputGuardrail = {
      name: 'no_pii_in_input',
      execute: async () => ({ tripwireTriggered: false, outputInfo: { checked: true } }),
    };
    const billing = new Agent({
      name: 'Billing agent',
      instructions: 'Answer billing questions.',
      model: new OpenAIResponsesModel(openai, 'gpt-4.1-mini'),
    });
    const triage = new Agent({
      name: 'Triage agent',
      instructions: 'Route claims questions.',
      model: new OpenAIChatCompletionsModel(openai, 'gpt-4o-mini'),
      tools: [lookupClaim, sendEmail],
      handoffs: [billing],
      inputGuardrails: [noPii],
    });

    const runner = new Runner({
      workflowName: 'Claims triage',
      groupId: 'thread_8812',
      traceMetadata: { env: 'test' },
      // the default, stated: the models put the completion on their spans only with it
      traceIncludeSensitiveData: true,
    });
    const result = await runner.run(triage, 'Where is my claim 1182?');
    agents.finalOutput = result.finalOutput;
    // The processor exports on a 5 s timer; flush instead of waiting for it.
    await processor.forceFlush();
  } finally {
    setTraceProcessors([]);
    agents.requests = server.requests;
    await server.close();
  }
  return agents;
}
