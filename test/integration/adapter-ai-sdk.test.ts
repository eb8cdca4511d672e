import { join } from 'node:path';
import { generateObject, generateText, stepCountIs, streamText, tool, type LanguageModel } from 'ai';
import { convertArrayToReadableStream, MockLanguageModelV3 } from 'ai/test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aiSdkTelemetry } from '../../src/client/adapters/ai-sdk.js';
import { AuditClient } from '../../src/client/index.js';
import { SocketSidecar, type StoredRecord as Stored } from '../helpers/socket-sidecar.js';

/**
 * aiSdkTelemetry() on real ai 6.0.333 calls (generateText with tools,
 * streamText, generateObject, a failing model) with the AI SDK's own
 * MockLanguageModelV3 (no network), sending through an AuditClient to a
 * real sidecar's socket source; the records are read back from the
 * sidecar's buffer (no collector runs, so nothing is shipped away).
 */

let sidecar: SocketSidecar | undefined;
let sock: string;

beforeAll(async () => {
  sidecar = await SocketSidecar.start('st-adapter-ai-');
  sock = sidecar.sock;
});

afterAll(async () => {
  await sidecar?.stop();
});

const records = (session: string): Stored[] => sidecar!.records(session);

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 5, text: 5, reasoning: 0 } };

/** Asks for two tools (one fails), then answers. */
function weatherModel(): LanguageModel {
  let call = 0;
  return new MockLanguageModelV3({
    provider: 'acme.chat',
    modelId: 'acme-large',
    doGenerate: async () => {
      if (call++ === 0) {
        return {
          content: [
            { type: 'tool-call', toolCallId: 'call_1', toolName: 'weather', input: '{"city":"Oslo"}' },
            { type: 'tool-call', toolCallId: 'call_2', toolName: 'send_alert', input: '{"to":"ops"}' },
          ],
          finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
          usage,
          warnings: [],
        };
      }
      return { content: [{ type: 'text', text: 'Sunny in Oslo.' }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
    },
  });
}

function tools(counter: { weather: number }) {
  return {
    weather: tool({
      description: 'Weather of a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        counter.weather++;
        return `sunny in ${city}`;
      },
    }),
    send_alert: tool({
      description: 'Alert a team',
      inputSchema: z.object({ to: z.string() }),
      execute: async (): Promise<string> => {
        throw new Error('pager down');
      },
    }),
  };
}

describe('aiSdkTelemetry with ai 6.0.333', () => {
  it('records generateText: the call, each model call and each tool call, with model, agent, session and trace ids', async () => {
    const client = new AuditClient({ socket: sock });
    const audit = aiSdkTelemetry(client, { agent: { id: 'weather-agent' }, functionId: 'weather', metadata: { session_id: 'sess-gen' } });
    const counter = { weather: 0 };
    const result = await generateText({ model: weatherModel(), prompt: 'Weather in Oslo?', tools: tools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await audit.audited();
    await client.close();
    expect(result.text).toBe('Sunny in Oslo.');

    const recs = records('sess-gen');
    expect(recs.map((r) => r.event_type).sort()).toEqual(['agent_invoked', 'model_called', 'model_called', 'tool_invoked', 'tool_invoked']);
    const call = recs.find((r) => r.event_type === 'agent_invoked')!;
    expect(call.trace_id).toMatch(/^[0-9a-f]{32}$/);
    for (const r of recs) {
      expect(r).toMatchObject({ trace_id: call.trace_id, agent: { id: 'weather-agent' }, source: 'agent' });
      expect(r.details.function_id).toBe('weather');
      if (r !== call) expect(r.details.parent_span_id).toBe(call.span_id);
    }
    expect(call).toMatchObject({ action: 'ai.generateText', model: { provider: 'acme.chat', name: 'acme-large' }, outcome: 'success', details: { usage: { input_tokens: 20, output_tokens: 10, total_tokens: 30 }, finish_reason: 'stop' } });
    const models = recs.filter((r) => r.event_type === 'model_called');
    for (const m of models) expect(m).toMatchObject({ action: 'ai.generateText.doGenerate', model: { provider: 'acme.chat', name: 'acme-large' }, details: { usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 } } });
    expect(models.map((m) => [m.details.finish_reason, m.details.tool_calls ?? null])).toEqual([
      ['tool-calls', [{ name: 'weather', id: 'call_1' }, { name: 'send_alert', id: 'call_2' }]],
      ['stop', null],
    ]);
    expect(recs.find((r) => r.tool?.name === 'weather')).toMatchObject({ outcome: 'success', tool: { call_id: 'call_1', arguments: { city: 'Oslo' } }, details: { output: 'sunny in Oslo' } });
    expect(recs.find((r) => r.tool?.name === 'send_alert')).toMatchObject({ outcome: 'error', tool: { call_id: 'call_2', arguments: { to: 'ops' } }, details: { error: { name: 'Error', message: 'pager down' } } });
  });

  it('records streamText and generateObject, and a model that fails as outcome error', async () => {
    const client = new AuditClient({ socket: sock });
    const audit = aiSdkTelemetry(client, { metadata: { thread_id: 'sess-more', agent_name: 'Writer' } });
    const streaming = new MockLanguageModelV3({
      provider: 'acme.chat',
      modelId: 'acme-fast',
      doStream: async () => ({
        stream: convertArrayToReadableStream([
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't' },
          { type: 'text-delta', id: 't', delta: 'Hello' },
          { type: 'text-end', id: 't' },
          { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage },
        ]),
      }),
    });
    expect(await streamText({ model: streaming, prompt: 'hi', experimental_telemetry: audit }).text).toBe('Hello');
    const objects = new MockLanguageModelV3({
      provider: 'acme.chat',
      modelId: 'acme-json',
      doGenerate: async () => ({ content: [{ type: 'text', text: '{"city":"Oslo"}' }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] }),
    });
    const obj = await generateObject({ model: objects, schema: z.object({ city: z.string() }), prompt: 'city?', experimental_telemetry: audit });
    expect(obj.object).toEqual({ city: 'Oslo' });
    const failing = new MockLanguageModelV3({
      provider: 'acme.chat',
      modelId: 'acme-down',
      doGenerate: async () => {
        throw new Error('rate limited');
      },
    });
    await expect(generateText({ model: failing, prompt: 'x', maxRetries: 0, experimental_telemetry: audit })).rejects.toThrow('rate limited');
    await audit.audited();
    await client.close();

    const recs = records('sess-more');
    const summary = recs.map((r) => [r.event_type, r.action, r.model?.name, r.outcome]).sort();
    expect(summary).toEqual([
      ['agent_invoked', 'ai.generateObject', 'acme-json', 'success'],
      ['agent_invoked', 'ai.generateText', 'acme-down', 'error'],
      ['agent_invoked', 'ai.streamText', 'acme-fast', 'success'],
      ['model_called', 'ai.generateObject.doGenerate', 'acme-json', 'success'],
      ['model_called', 'ai.generateText.doGenerate', 'acme-down', 'error'],
      ['model_called', 'ai.streamText.doStream', 'acme-fast', 'success'],
    ]);
    for (const r of recs) expect(r.agent).toEqual({ name: 'Writer' });
    for (const r of recs.filter((x) => x.outcome === 'error')) expect(r.details.error).toEqual({ name: 'Error', message: 'rate limited' });
    // three calls, three traces
    expect(new Set(recs.map((r) => r.trace_id)).size).toBe(3);
  });

  it('by default never fails a call when events cannot be stored: onError, failures and audited() tell', async () => {
    const client = new AuditClient({ socket: sock });
    await client.close();
    const codes: unknown[] = [];
    const audit = aiSdkTelemetry(client, { metadata: { session_id: 'sess-closed' }, onError: (err) => codes.push((err as { code?: unknown }).code) });
    const counter = { weather: 0 };
    const result = await generateText({ model: weatherModel(), prompt: 'Weather?', tools: tools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await audit.flush();
    expect(result.text).toBe('Sunny in Oslo.');
    expect(counter.weather).toBe(1);
    expect(codes).toEqual(Array(5).fill('client_closed'));
    expect(audit.failures).toBe(5);
    await expect(audit.audited()).rejects.toMatchObject({ code: 'client_closed' });
  });

  it('failClosed: a tool asked for by a model call that could not be stored never runs, and the call rejects', async () => {
    // nobody answers on this socket: every emit times out after ackTimeoutMs
    const client = new AuditClient({ socket: join(sidecar!.dir, 'nobody.sock'), failClosed: true, ackTimeoutMs: 200, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const audit = aiSdkTelemetry(client, { failClosed: true });
    const counter = { weather: 0 };
    const call = generateText({ model: weatherModel(), prompt: 'Weather?', tools: tools(counter), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    await expect(call).rejects.toMatchObject({ code: 'client_ack_timeout' });
    expect(counter.weather).toBe(0);
    await client.close({ timeoutMs: 0 }).catch(() => undefined);
  });

  it('failClosed with a working sidecar: generateText resolves once every event of the call is stored', async () => {
    const client = new AuditClient({ socket: sock, failClosed: true });
    const audit = aiSdkTelemetry(client, { failClosed: true, metadata: { session_id: 'sess-ok-closed' } });
    const result = await generateText({ model: weatherModel(), prompt: 'Weather?', tools: tools({ weather: 0 }), stopWhen: stepCountIs(3), experimental_telemetry: audit });
    expect(result.text).toBe('Sunny in Oslo.');
    expect(records('sess-ok-closed')).toHaveLength(5);
    await client.close();
  });
});
