/**
 * Drives a LangChain.js run traced by LangChainTracer through a langsmith
 * Client that posts to a LangSmith stand-in on 127.0.0.1, which writes each
 * run it receives as one JSON line. Only the model is scripted (no network,
 * no API key); everything that shapes the trace is the packages'.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { awaitAllCallbacks } from '@langchain/core/callbacks/promises';
import type { BaseMessage } from '@langchain/core/messages';
import { RunnableLambda, type RunnableConfig } from '@langchain/core/runnables';
import { tool as lcTool } from '@langchain/core/tools';
import { LangChainTracer } from '@langchain/core/tracers/tracer_langchain';
import { Client as LangSmithClient } from 'langsmith';
import { expect } from 'vitest';
import { z } from 'zod';
import { obj, type Obj } from './preset-map.js';
import { REFUND_PROMPT, refundModel } from './langchain-models.js';

export interface LangChainRun {
  /** one JSON line per run, as the LangSmith server stores it */
  runs: string;
  /** every request the stand-in got, as "METHOD /path" */
  requests: string[];
  /** whatever the stand-in did not expect: should stay empty */
  problems: string[];
  /** every run operation posted, in order */
  operations: Array<{ op: string; run: Obj }>;
}

/**
 * What the LangSmith API needs to take traces from the langsmith Client:
 * GET /info (which tells the client to use multipart ingest) and
 * POST /runs/multipart. Each run operation arrives as parts `post.<id>` (the
 * run) and `post.<id>.<field>` (inputs, outputs, events, extra, error,
 * serialized, each its own JSON part); the stand-in puts each operation back
 * together as the server stores it and writes it as one JSON line.
 */
class LangSmithStandIn {
  readonly requests: string[] = [];
  readonly problems: string[] = [];
  readonly operations: Array<{ op: string; run: Obj }> = [];
  private readonly server = http.createServer((req, res) => {
    this.handle(req, res).catch((err: unknown) => {
      this.problems.push(`${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });

  /** @param file where each run received is appended as one JSON line */
  constructor(private readonly file: string) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    this.requests.push(`${req.method} ${req.url}`);
    if (req.headers['content-encoding']) this.problems.push(`${req.url} came ${req.headers['content-encoding']}-encoded`);
    if (req.method === 'GET' && req.url === '/info') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: '0.10.0', batch_ingest_config: { use_multipart_endpoint: true } }));
      return;
    }
    if (req.method === 'POST' && req.url === '/runs/multipart') {
      const form = await new Response(body, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
      const ops = new Map<string, Obj>();
      for (const [name, value] of form.entries()) {
        const text = typeof value === 'string' ? value : await value.text();
        const [op, id, field, ...more] = name.split('.');
        if ((op !== 'post' && op !== 'patch') || !id || more.length > 0) {
          this.problems.push(`unexpected part ${name}`);
          continue;
        }
        const key = `${op}.${id}`;
        const run = ops.get(key) ?? {};
        ops.set(key, run);
        if (field === undefined) Object.assign(run, obj(JSON.parse(text)));
        else run[field] = JSON.parse(text) as unknown;
      }
      for (const [key, run] of ops) {
        this.operations.push({ op: key.slice(0, key.indexOf('.')), run });
        appendFileSync(this.file, `${JSON.stringify(run)}\n`);
      }
      res.writeHead(202, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    this.problems.push(`unexpected request ${req.method} ${req.url}`);
    res.writeHead(404);
    res.end();
  }
}

/** A small tool-calling agent loop (prompt, model, tool, model), and a tool run that fails. */
export async function runLangChain(dir: string): Promise<LangChainRun> {
  const runs = join(dir, 'langchain', 'runs.jsonl');
  mkdirSync(join(runs, '..'), { recursive: true });
  const langsmith = new LangSmithStandIn(runs);
  const apiUrl = await langsmith.start();
  try {
    // manualFlushMode: the client queues every run operation until flush(), so
    // a run's create and its update always leave in one batch, merged into one
    // operation, however slowly the chain runs; with the default timer a slow
    // machine could split them.
    // Sampling and hiding are stated too, so no LANGSMITH_* variable of the
    // environment changes what is sent.
    const client = new LangSmithClient({ apiUrl, apiKey: 'test-key', manualFlushMode: true, tracingSamplingRate: 1, hideInputs: false, hideOutputs: false });
    const tracer = new LangChainTracer({ client, projectName: 'sealtrail-tests' });
    const config: RunnableConfig = { callbacks: [tracer], metadata: { thread_id: 'thread-8812' } };

    const refundStatus = lcTool(async ({ order_id }) => `refund for ${order_id}: issued`, {
      name: 'refund_status',
      description: 'Look up the refund of an order',
      schema: z.object({ order_id: z.string() }),
    });
    const sqlQuery = lcTool(
      async (): Promise<string> => {
        throw new Error('database is locked');
      },
      { name: 'sql_db_query', description: 'Run a SQL query', schema: z.object({ query: z.string() }) },
    );
    const model = refundModel();
    const prompt = REFUND_PROMPT;
    const agent = RunnableLambda.from(async (input: { order: string }, cfg?: RunnableConfig): Promise<string> => {
      // a copy: the prompt run's outputs are serialised when the batch is sent, not now
      const messages: BaseMessage[] = [...(await prompt.invoke(input, cfg)).toChatMessages()];
      const ai = await model.invoke(messages, cfg);
      messages.push(ai);
      for (const call of ai.tool_calls ?? []) messages.push(await refundStatus.invoke({ ...call, type: 'tool_call' }, cfg));
      const final = await model.invoke(messages, cfg);
      return typeof final.content === 'string' ? final.content : JSON.stringify(final.content);
    }).withConfig({ runName: 'RefundAgent' });

    const answer = await agent.invoke({ order: '551902' }, config);
    expect(answer).toBe('The refund of order 551902 was issued.');
    await expect(sqlQuery.invoke({ query: 'SELECT status FROM refunds' }, config)).rejects.toThrow('database is locked');
    // callbacks may run in the background; the tracer must have queued every run before the flush
    await awaitAllCallbacks();
    await client.flush();
    await client.awaitPendingTraceBatches();
  } finally {
    // every batch has been answered: the stand-in has seen all it will see
    await langsmith.stop();
  }
  return { runs, requests: langsmith.requests, problems: langsmith.problems, operations: langsmith.operations };
}
