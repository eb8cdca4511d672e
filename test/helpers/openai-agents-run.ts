/**
 * Drives an agent run of @openai/agents-core and exports its trace with the
 * SDK's own BatchTraceProcessor, writing what a file exporter writes and what
 * the SDK's OpenAITracingExporter posts. Only the model is scripted (no
 * network, no API key); everything that shapes the trace is the SDK's.
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
  type Model,
  type TracingExporter,
} from '@openai/agents-core';
import { z } from 'zod';
import { ScriptedModel, scriptedProvider } from './openai-agents-models.js';

export interface AgentsRun {
  /** one JSON line per exported trace and span (what a file exporter writes) */
  spans: string;
  /** one JSON line per export: {"data": [item.toJSON(), ...]}, as OpenAITracingExporter posts it */
  bodies: string;
  /** the run's final output */
  finalOutput: unknown;
  /** how many times the processor called the exporter */
  exportCalls: number;
}

/** Triage answers with two tool calls (one of them fails), then hands off to Billing, which answers. */
export async function runOpenAIAgents(dir: string): Promise<AgentsRun> {
  // one directory per file: each is a sidecar source of its own at the end
  const agents: AgentsRun = {
    spans: join(dir, 'agents', 'spans.jsonl'),
    bodies: join(dir, 'agents-bodies', 'bodies.jsonl'),
    finalOutput: undefined,
    exportCalls: 0,
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
  const billing = new Agent({ name: 'Billing agent', instructions: 'Answer billing questions.', model: 'gpt-4.1-mini' });
  const triage = new Agent({
    name: 'Triage agent',
    instructions: 'Route claims questions.',
    model: 'gpt-4o-mini',
    tools: [lookupClaim, sendEmail],
    handoffs: [billing],
    inputGuardrails: [noPii],
  });

  const models = new Map<string, Model>([
    [
      'gpt-4o-mini',
      new ScriptedModel('gpt-4o-mini', 'chat_completions', [
        () => [
          { type: 'function_call', callId: 'call_lookup', name: 'lookup_claim', arguments: '{"claim_id":"1182"}', status: 'completed' },
          { type: 'function_call', callId: 'call_mail', name: 'send_email', arguments: '{"to":"claims-team"}', status: 'completed' },
        ],
        (request) => {
          const handoff = request.handoffs.find((h) => h.toolName.toLowerCase().includes('billing'));
          if (!handoff) throw new Error('the SDK offered no handoff to the billing agent');
          return [{ type: 'function_call', callId: 'call_handoff', name: handoff.toolName, arguments: '{}', status: 'completed' }];
        },
      ]),
    ],
    [
      'gpt-4.1-mini',
      new ScriptedModel('gpt-4.1-mini', 'responses', [
        () => [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Your claim 1182 is in review.' }] }],
      ]),
    ],
  ]);
  const modelProvider = scriptedProvider(models);

  const runner = new Runner({
    modelProvider,
    workflowName: 'Claims triage',
    groupId: 'thread_8812',
    traceMetadata: { env: 'test' },
    // the default, stated: the assertions read tool and model data off the spans
    traceIncludeSensitiveData: true,
  });
  const result = await runner.run(triage, 'Where is my claim 1182?');
  agents.finalOutput = result.finalOutput;
  // The processor exports on a 5 s timer; flush instead of waiting for it.
  await processor.forceFlush();
  setTraceProcessors([]);
  return agents;
}
