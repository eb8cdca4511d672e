import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { Agent, Runner, setTraceProcessors, setTracingDisabled, tool as agentsTool, type Model } from '@openai/agents-core';
import { OpenAIChatCompletionsModel, OpenAIResponsesModel } from '@openai/agents-openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SealtrailTracingProcessor } from '../../src/client/adapters/openai-agents.js';
import { AuditClient } from '../../src/client/index.js';
import {
  CHAT_PATH,
  CHAT_SERVED,
  chatBody,
  errorAnswer,
  FakeOpenAIServer,
  RESPONSES_PATH,
  RESPONSES_SERVED,
  responseBody,
  responsesFunctionCall,
  responsesMessage,
  type Handler,
  type RecordedRequest,
} from '../helpers/fake-openai-server.js';
import { SocketSidecar, type StoredRecord } from '../helpers/socket-sidecar.js';

/**
 * SealtrailTracingProcessor with the SDK's own models (OpenAIResponsesModel
 * and OpenAIChatCompletionsModel of @openai/agents-openai 0.14.3, on the
 * `openai` client) in real agents-core runs: the models talk HTTP to a fake
 * OpenAI API on 127.0.0.1, and the processor sends through an AuditClient to
 * a real sidecar, whose stored records are read back.
 */

// a request whose input holds this is answered with an error
const FAIL = '[fail this call]';
// a request whose messages hold this is answered without usage
const NO_USAGE = '[no usage]';

/** Asks for lookup_claim first, answers once the input holds its result; stateless, so runs may interleave. */
const responsesApi: Handler = (req, nth) => {
  const input = JSON.stringify((req.body as { input?: unknown }).input);
  if (input.includes(FAIL)) return errorAnswer(500, 'The server had an error while processing your request.');
  const usage = { input: 100 + nth, output: 9 + nth };
  const output = input.includes('function_call_output')
    ? [responsesMessage(`msg_${nth}`, 'Claim 1182 is in review.')]
    : [responsesFunctionCall(`call_resp_${nth}`, 'lookup_claim', { claim_id: '1182' })];
  return { body: responseBody(`resp_${nth}`, RESPONSES_SERVED, output, usage) };
};

const chatApi: Handler = (req, nth) => {
  const messages = JSON.stringify((req.body as { messages?: unknown }).messages);
  if (messages.includes(FAIL)) return errorAnswer(400, "Invalid value for 'messages'.");
  const usage = { input: 200 + nth, output: 5 + nth };
  const answer = messages.includes('"role":"tool"')
    ? { text: 'Claim 1182 is in review.' }
    : { toolCalls: [{ id: `call_chat_${nth}`, name: 'lookup_claim', args: { claim_id: '1182' } }] };
  const body = chatBody(`chatcmpl-${nth}`, CHAT_SERVED, answer, usage);
  if (messages.includes(NO_USAGE)) delete body['usage'];
  return { body };
};

let sidecar: SocketSidecar | undefined;
let server: FakeOpenAIServer | undefined;
let openai: OpenAI;
/** every HTTP request this process started once the sidecar is up (fetch, which the openai client uses, and node:http): origin and path */
const outbound: string[] = [];
const onFetch = (m: unknown): void => {
  const r = (m as { request: { origin: string; path: string } }).request;
  outbound.push(`${r.origin}${r.path}`);
};
const onHttp = (m: unknown): void => {
  const r = (m as { request: ClientRequest }).request;
  outbound.push(`${r.protocol}//${r.host}${r.path}`);
};

beforeAll(async () => {
  sidecar = await SocketSidecar.start('st-adapter-oai-models-');
  // from here on: the sidecar's start polls its readiness over HTTP
  subscribe('undici:request:create', onFetch);
  subscribe('http.client.request.start', onHttp);
  server = await FakeOpenAIServer.start({ [RESPONSES_PATH]: responsesApi, [CHAT_PATH]: chatApi });
  // no retries: a failed call is one request, and a surplus one cannot stall the test
  openai = new OpenAI({ apiKey: 'test-key', baseURL: server.baseURL, maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  setTraceProcessors([]);
  unsubscribe('undici:request:create', onFetch);
  unsubscribe('http.client.request.start', onHttp);
  await server?.close();
  await sidecar?.stop();
});

interface Audited {
  recs: StoredRecord[];
  /** the requests of this run, as the fake API received them */
  requests: RecordedRequest[];
  /** the HTTP requests this process started during the run */
  outbound: string[];
  processor: SealtrailTracingProcessor;
}

/** Runs an agent with `model` and the lookup_claim tool (streamed or not), the processor registered alone, and reads back what was stored. */
async function audit(model: Model, groupId: string, opts: { stream: boolean; input?: string }): Promise<Audited & { finalOutput: unknown }> {
  setTracingDisabled(false); // vitest sets NODE_ENV=test, and agents-core then starts with tracing off
  const client = new AuditClient({ socket: sidecar!.sock });
  const processor = new SealtrailTracingProcessor({ client });
  // replaces the SDK's default processors, so no exporter of its own runs
  setTraceProcessors([processor]);
  const lookupClaim = agentsTool({
    name: 'lookup_claim',
    description: 'Look up a claim',
    parameters: z.object({ claim_id: z.string() }),
    execute: async ({ claim_id }) => `claim ${claim_id}: in review`,
  });
  const agent = new Agent({ name: 'Claims agent', instructions: 'Answer claims questions.', model, tools: [lookupClaim] });
  const runner = new Runner({ workflowName: 'Claims', groupId });
  // the group id in the input tells this run's requests from the others'
  const input = `${opts.input ?? 'Where is claim 1182?'} (${groupId})`;
  let finalOutput: unknown;
  const before = outbound.length;
  try {
    if (opts.stream) {
      const result = await runner.run(agent, input, { stream: true });
      for await (const _event of result) {
        // drained: the run goes on as its events are read
      }
      await result.completed;
      if (result.error !== null && result.error !== undefined) throw result.error;
      finalOutput = result.finalOutput;
    } else {
      finalOutput = (await runner.run(agent, input)).finalOutput;
    }
  } finally {
    await processor.forceFlush();
    await client.close();
  }
  const requests = server!.requests.filter((r) => JSON.stringify(r.body).includes(groupId));
  return { recs: sidecar!.records(groupId), requests, outbound: outbound.slice(before), processor, finalOutput };
}

/** Nothing of the run left for another host: each HTTP request it started is one the fake API received. */
function expectOnlyFakeApi(run: Pick<Audited, 'requests' | 'outbound'>): void {
  const origin = new URL(server!.baseURL).origin;
  expect(run.requests.length).toBeGreaterThan(0);
  expect(run.outbound).toEqual(run.requests.map((r) => `${origin}${r.path}`));
}

const sentUsage = (r: RecordedRequest): unknown => r.answer?.body['usage'];

/** Every record of one run: its trace, its group as session, the agent. */
function expectOneRun(recs: StoredRecord[], groupId: string): void {
  const traceId = recs[0]?.trace_id;
  expect(traceId).toMatch(/^trace_[0-9a-f]{32}$/);
  for (const r of recs) expect(r).toMatchObject({ trace_id: traceId, session_id: groupId, agent: { name: 'Claims agent' }, source: 'agent' });
}

describe('SealtrailTracingProcessor with the OpenAI models of @openai/agents-openai 0.14.3', () => {
  it.each([
    { mode: 'run', stream: false },
    { mode: 'streamed run', stream: true },
  ])('OpenAIResponsesModel, $mode: model name, usage and response id from the API’s responses; the tool call; the agent', async ({ stream }) => {
    const groupId = `thread_resp_${stream ? 'stream' : 'plain'}`;
    const run = await audit(new OpenAIResponsesModel(openai, 'gpt-4.1-mini'), groupId, { stream });
    const { recs, requests, processor, finalOutput } = run;
    expect(finalOutput).toBe('Claim 1182 is in review.');
    expect(processor.failures).toBe(0);
    expectOnlyFakeApi(run);

    // what the SDK sent: two calls of the model asked for, the tool offered, then its result
    expect(requests.map((r) => [r.method, r.path, (r.body as { model?: unknown }).model, (r.body as { stream?: unknown }).stream])).toEqual([
      ['POST', RESPONSES_PATH, 'gpt-4.1-mini', stream],
      ['POST', RESPONSES_PATH, 'gpt-4.1-mini', stream],
    ]);
    expect(requests[0]!.headers.authorization).toBe('Bearer test-key');
    expect((requests[0]!.body as { tools: Array<{ name: string }> }).tools.map((t) => t.name)).toEqual(['lookup_claim']);
    const callId = (requests[0]!.answer!.body['output'] as Array<{ call_id: string }>)[0]!.call_id;
    expect((requests[1]!.body as { input: unknown[] }).input).toContainEqual(expect.objectContaining({ type: 'function_call_output', call_id: callId }));

    expect(recs.map((r) => r.event_type).sort()).toEqual(['agent_invoked', 'model_called', 'model_called', 'tool_invoked']);
    expectOneRun(recs, groupId);
    const models = recs.filter((r) => r.event_type === 'model_called');
    // one model_called per response, with what that response said
    expect(models.map((m) => m.details.response_id)).toEqual(requests.map((r) => r.answer!.body['id']));
    // the usage object as the API sent it (input_tokens, output_tokens, total_tokens and their details)
    expect(models.map((m) => m.details.usage)).toEqual(requests.map(sentUsage));
    expect(models[0]!.details.usage).toMatchObject({ input_tokens: expect.any(Number), output_tokens: expect.any(Number), input_tokens_details: { cached_tokens: 0 } });
    for (const m of models) expect(m).toMatchObject({ outcome: 'success', model: { name: RESPONSES_SERVED } });
    // prompts and completions stay out unless modelContent is set
    expect(models[0]!.details).not.toHaveProperty('output');

    const tool = recs.find((r) => r.event_type === 'tool_invoked')!;
    expect(tool).toMatchObject({ outcome: 'success', tool: { name: 'lookup_claim', arguments: { claim_id: '1182' } }, details: { output: 'claim 1182: in review' } });
    const agent = recs.find((r) => r.event_type === 'agent_invoked')!;
    expect(agent).toMatchObject({ outcome: 'success', details: { tools: ['lookup_claim'], workflow: 'Claims' } });
    // the tool ran between the two model calls: stored in that order
    expect(recs.map((r) => r.event_type)).toEqual(['model_called', 'tool_invoked', 'model_called', 'agent_invoked']);
  });

  it.each([
    { mode: 'run', stream: false, served: CHAT_SERVED },
    // a streamed completion is assembled by the SDK, which names it after the model asked for
    { mode: 'streamed run', stream: true, served: 'gpt-4o-mini' },
  ])('OpenAIChatCompletionsModel, $mode: model name, usage and completion id from the completions; the tool call', async ({ stream, served }) => {
    const groupId = `thread_chat_${stream ? 'stream' : 'plain'}`;
    const run = await audit(new OpenAIChatCompletionsModel(openai, 'gpt-4o-mini'), groupId, { stream });
    const { recs, requests, processor, finalOutput } = run;
    expect(finalOutput).toBe('Claim 1182 is in review.');
    expect(processor.failures).toBe(0);
    expectOnlyFakeApi(run);
    expect(requests.map((r) => [r.path, (r.body as { model?: unknown }).model, (r.body as { stream?: unknown }).stream])).toEqual([
      [CHAT_PATH, 'gpt-4o-mini', stream],
      [CHAT_PATH, 'gpt-4o-mini', stream],
    ]);

    expect(recs.map((r) => r.event_type)).toEqual(['model_called', 'tool_invoked', 'model_called', 'agent_invoked']);
    expectOneRun(recs, groupId);
    const models = recs.filter((r) => r.event_type === 'model_called');
    // the SDK's generation span has no usage of its own: it is the completion's, under the Responses names
    expect(models.map((m) => m.details.usage)).toEqual(
      requests.map((r) => {
        const u = sentUsage(r) as Record<string, unknown>;
        return {
          input_tokens: u['prompt_tokens'],
          output_tokens: u['completion_tokens'],
          total_tokens: u['total_tokens'],
          input_tokens_details: u['prompt_tokens_details'],
          output_tokens_details: u['completion_tokens_details'],
        };
      }),
    );
    expect(models.map((m) => m.details.response_id)).toEqual(requests.map((r) => r.answer!.body['id']));
    for (const m of models) {
      expect(m).toMatchObject({ outcome: 'success', model: { name: served } });
      expect(m.details.requested_model).toBe(served === 'gpt-4o-mini' ? undefined : 'gpt-4o-mini');
    }
    const callId = (requests[0]!.answer!.body['choices'] as Array<{ message: { tool_calls: Array<{ id: string }> } }>)[0]!.message.tool_calls[0]!.id;
    expect((requests[1]!.body as { messages: unknown[] }).messages).toContainEqual(expect.objectContaining({ role: 'tool', tool_call_id: callId }));
    expect(recs.find((r) => r.event_type === 'tool_invoked')).toMatchObject({ tool: { name: 'lookup_claim', arguments: { claim_id: '1182' } }, details: { output: 'claim 1182: in review' } });
  });

  it('records no usage for a streamed completion whose provider sent none (the SDK leaves it at zero)', async () => {
    const groupId = 'thread_chat_no_usage';
    const run = await audit(new OpenAIChatCompletionsModel(openai, 'gpt-4o-mini'), groupId, { stream: true, input: `Where is claim 1182? ${NO_USAGE}` });
    expect(run.finalOutput).toBe('Claim 1182 is in review.');
    expect(run.requests.every((r) => r.answer!.body['usage'] === undefined)).toBe(true);
    const models = run.recs.filter((r) => r.event_type === 'model_called');
    expect(models).toHaveLength(2);
    for (const m of models) {
      expect(m.details).not.toHaveProperty('usage');
      expect(m.model).toEqual({ name: 'gpt-4o-mini' });
    }
  });

  it.each([
    { api: 'Responses (HTTP 500)', model: (): Model => new OpenAIResponsesModel(openai, 'gpt-4.1-mini'), message: '500 The server had an error while processing your request.' },
    { api: 'Chat Completions (HTTP 400)', model: (): Model => new OpenAIChatCompletionsModel(openai, 'gpt-4o-mini'), message: "400 Invalid value for 'messages'." },
  ])('a model call the API refuses, $api, is a model_called with outcome error, sent once', async ({ api, model, message }) => {
    const groupId = `thread_fail_${api.startsWith('Chat') ? 'chat' : 'resp'}`;
    const before = outbound.length;
    await expect(audit(model(), groupId, { stream: false, input: `${FAIL} Where is claim 1182?` })).rejects.toMatchObject({ message });
    // one request: the client does not retry (maxRetries 0), the runner has no retry policy
    const requests = server!.requests.filter((r) => JSON.stringify(r.body).includes(groupId));
    expect(requests).toHaveLength(1);
    expect(requests[0]!.answer?.status).toBe(api.startsWith('Chat') ? 400 : 500);
    expectOnlyFakeApi({ requests, outbound: outbound.slice(before) });

    const recs = sidecar!.records(groupId);
    expect(recs.map((r) => r.event_type)).toEqual(['model_called', 'agent_invoked']);
    expectOneRun(recs, groupId);
    expect(recs[0]).toMatchObject({ outcome: 'error', details: { error: { message } } });
    // no answer, no usage or response id; the Chat Completions span still names the model asked for
    expect(recs[0]!.details).not.toHaveProperty('usage');
    expect(recs[0]!.details).not.toHaveProperty('response_id');
    expect(recs[0]!.model?.name).toBe(api.startsWith('Chat') ? 'gpt-4o-mini' : undefined);
    expect(recs[1]).toMatchObject({ outcome: 'error', details: { error: { message: 'Error in agent run' } } });
  });
});
