import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLangChain, type LangChainRun } from '../helpers/langchain-run.js';
import { byType, lines, mapFile, once, only, str, toMillis, unmapped, type Ev } from '../helpers/preset-map.js';

/**
 * The langchain preset against what the framework's own packages write, not
 * against hand-written fixtures: a LangChain.js run traced by LangChainTracer
 * through a langsmith Client that posts to a LangSmith stand-in on 127.0.0.1.
 * Only the model is scripted (no network, no API key); everything that shapes
 * the trace is the packages'.
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-framework-presets-langchain-'));
let langsmith: LangChainRun;

beforeAll(async () => {
  langsmith = await runLangChain(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('langchain preset, on what @langchain/core 1.4.0 and langsmith 0.12.0 post', () => {
  const raw = once(() => lines(langsmith.runs));
  const mapped = once(() => mapFile('langchain', langsmith.runs));
  const events = (): Ev[] => mapped().events;
  const named = (name: string): Ev => only(events(), (e) => e.action === name || e.tool?.name === name);

  it('got every run from the client once, by multipart ingest, each create merged with its update', () => {
    expect(langsmith.problems).toEqual([]);
    expect(new Set(langsmith.requests)).toEqual(new Set(['GET /info', 'POST /runs/multipart']));
    expect(langsmith.operations.map((o) => o.op)).toEqual(Array(6).fill('post'));
    expect(new Set(raw().map((r) => r['id'])).size).toBe(raw().length);
  });

  it('maps every run, refusing none', () => {
    expect(mapped().refused).toEqual([]);
    expect(events()).toHaveLength(raw().length);
    expect(events().map((e) => `${e.event_type} ${e.action ?? e.tool?.name}`).sort()).toEqual([
      'chain_invoked RefundAgent',
      'model_called FakeChatOpenAI',
      'model_called FakeChatOpenAI',
      'prompt_rendered ChatPromptTemplate',
      'tool_invoked refund_status',
      'tool_invoked sql_db_query',
    ]);
  });

  it('keeps every run: its ids, start as the time (microseconds as written), end, thread, project and outcome', () => {
    for (const line of raw()) {
      const e = only(events(), (ev) => ev.span_id === line['id']);
      expect(e.trace_id).toBe(line['trace_id']);
      const start = str(line['start_time']);
      expect(start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(e.time).toBe(toMillis(start));
      expect(unmapped(e)?.['start_time']).toBe(start);
      expect(typeof line['end_time']).toBe('number');
      expect(e.details?.['end_time']).toBe(line['end_time']);
      expect(e.details?.['parent_run_id']).toBe(line['parent_run_id']);
      expect(e.session_id).toBe('thread-8812');
      expect(e.details?.['project']).toBe('sealtrail-tests');
      expect(e.outcome).toBe(line['error'] === undefined ? 'success' : 'error');
    }
  });

  it('maps tool runs: the tool and its input; a failed tool is an error with its message', () => {
    const refund = named('refund_status');
    expect([refund.event_type, refund.tool, refund.outcome]).toEqual(['tool_invoked', { name: 'refund_status', arguments: { order_id: '551902' } }, 'success']);
    expect(refund.details?.['outputs']).toMatchObject({ output: { kwargs: { content: 'refund for 551902: issued', tool_call_id: 'call_refund' } } });
    const sql = named('sql_db_query');
    expect([sql.event_type, sql.tool, sql.outcome]).toEqual(['tool_invoked', { name: 'sql_db_query', arguments: { query: 'SELECT status FROM refunds' } }, 'error']);
    expect(sql.details?.['error']).toMatch(/^database is locked\n/);
    // invoked on its own, the tool run is a trace of its own
    expect(sql.trace_id).toBe(sql.span_id);
  });

  it('maps model, chain and prompt runs, children under the chain', () => {
    const chain = named('RefundAgent');
    expect([chain.event_type, chain.trace_id, chain.details?.['inputs'], chain.details?.['outputs']]).toEqual([
      'chain_invoked',
      chain.span_id,
      { order: '551902' },
      { output: 'The refund of order 551902 was issued.' },
    ]);
    const models = byType(events(), 'model_called');
    expect(models.map((e) => [e.model, e.outcome])).toEqual([
      [{ name: 'gpt-4o-mini', provider: 'openai' }, 'success'],
      [{ name: 'gpt-4o-mini', provider: 'openai' }, 'success'],
    ]);
    expect(models[0]!.details?.['inputs']).toMatchObject({ messages: [[{ kwargs: { content: 'You are a support agent.' } }, { kwargs: { content: 'What is the refund status of order 551902?' } }]] });
    const prompt = named('ChatPromptTemplate');
    expect([prompt.event_type, prompt.details?.['inputs']]).toEqual(['prompt_rendered', { order: '551902' }]);
    for (const child of [prompt, ...models, named('refund_status')]) {
      expect([child.trace_id, child.details?.['parent_run_id']]).toEqual([chain.span_id, chain.span_id]);
    }
  });
});
