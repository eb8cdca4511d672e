/**
 * A stand-in for the OpenAI API on 127.0.0.1: a real node:http server that
 * answers `POST /v1/responses` and `POST /v1/chat/completions` with canned
 * bodies in the shapes the `openai` client (6.x) parses, as JSON or, for a
 * request with `stream: true`, as the server-sent events the API streams.
 * Every request it receives is recorded, so a test can check what the SDK
 * sent and that nothing went anywhere else.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const RESPONSES_PATH = '/v1/responses';
export const CHAT_PATH = '/v1/chat/completions';

/** what the fake API says served a call: a dated snapshot of the model asked for, so the two can be told apart */
export const CHAT_SERVED = 'gpt-4o-mini-2024-07-18';
export const RESPONSES_SERVED = 'gpt-4.1-mini-2025-04-14';

/** A request as the server received it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** the JSON body parsed, or the raw text when it is not JSON */
  body: unknown;
  /** what the server answered (as JSON; a streamed answer was sent as the events made of it) */
  answer?: CannedAnswer;
}

/** What to answer: a status (200 by default) and a JSON body. */
export interface CannedAnswer {
  status?: number;
  body: Record<string, unknown>;
}

/** Picks the answer to a request; `nth` counts the requests to the same path, from 1. */
export type Handler = (request: RecordedRequest, nth: number) => CannedAnswer;

/** the token counts a canned answer reports */
export interface Tokens {
  input: number;
  output: number;
}

/** A Responses API `function_call` output item. */
export function responsesFunctionCall(callId: string, name: string, args: Record<string, unknown>): Record<string, unknown> {
  return { type: 'function_call', id: `fc_${callId}`, call_id: callId, name, arguments: JSON.stringify(args), status: 'completed' };
}

/** A Responses API assistant `message` output item. */
export function responsesMessage(id: string, text: string): Record<string, unknown> {
  return { type: 'message', id, role: 'assistant', status: 'completed', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] };
}

/** A complete Responses API response object, as `POST /v1/responses` returns it. */
export function responseBody(id: string, model: string, output: Record<string, unknown>[], usage: Tokens): Record<string, unknown> {
  return {
    id,
    object: 'response',
    created_at: 1_767_225_600,
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: {
      input_tokens: usage.input,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: usage.output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: usage.input + usage.output,
    },
    user: null,
    metadata: {},
  };
}

export interface ChatToolCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
}

/** A complete Chat Completions response: tool calls, or a text answer. */
export function chatBody(id: string, model: string, answer: { toolCalls: ChatToolCall[] } | { text: string }, usage: Tokens): Record<string, unknown> {
  const calls = 'toolCalls' in answer ? answer.toolCalls : [];
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: 'text' in answer ? answer.text : null,
    refusal: null,
    annotations: [],
    ...(calls.length > 0
      ? { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.args) } })) }
      : {}),
  };
  return {
    id,
    object: 'chat.completion',
    created: 1_767_225_600,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop' }],
    usage: {
      prompt_tokens: usage.input,
      completion_tokens: usage.output,
      total_tokens: usage.input + usage.output,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    service_tier: 'default',
    system_fingerprint: 'fp_sealtrail_test',
  };
}

/** An error body as the API sends it with a 4xx or 5xx status. */
export function errorAnswer(status: number, message: string): CannedAnswer {
  return { status, body: { error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } } };
}

const sse = (event: Record<string, unknown>, named: boolean): string =>
  `${named ? `event: ${String(event['type'])}\n` : ''}data: ${JSON.stringify(event)}\n\n`;

/** The events the Responses API streams for a response: created, each item added and done, completed. */
function responsesEvents(body: Record<string, unknown>): string {
  const output = Array.isArray(body['output']) ? (body['output'] as Record<string, unknown>[]) : [];
  let seq = 0;
  const events: Record<string, unknown>[] = [{ type: 'response.created', response: { ...body, status: 'in_progress', output: [], usage: null } }];
  output.forEach((item, i) => {
    events.push({ type: 'response.output_item.added', output_index: i, item: { ...item, status: 'in_progress' } });
    events.push({ type: 'response.output_item.done', output_index: i, item });
  });
  events.push({ type: 'response.completed', response: body });
  return events.map((e) => sse({ ...e, sequence_number: seq++ }, true)).join('');
}

/** The chunks Chat Completions streams for a completion (with `stream_options.include_usage`), then [DONE]. */
function chatChunks(body: Record<string, unknown>): string {
  const choice = (body['choices'] as Array<{ message: Record<string, unknown>; finish_reason: string }>)[0]!;
  const head = { id: body['id'], object: 'chat.completion.chunk', created: body['created'], model: body['model'], system_fingerprint: body['system_fingerprint'] };
  const chunk = (delta: Record<string, unknown>, finish: string | null): Record<string, unknown> => ({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  const chunks = [chunk({ role: 'assistant', content: '', refusal: null }, null)];
  const content = choice.message['content'];
  if (typeof content === 'string') chunks.push(chunk({ content }, null));
  const calls = (choice.message['tool_calls'] as Array<{ id: string; function: { name: string; arguments: string } }> | undefined) ?? [];
  calls.forEach((c, index) => {
    chunks.push(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }, null));
    chunks.push(chunk({ tool_calls: [{ index, function: { arguments: c.function.arguments } }] }, null));
  });
  chunks.push(chunk({}, choice.finish_reason));
  // a provider that ignores stream_options.include_usage sends no usage chunk
  if (body['usage'] !== undefined) chunks.push({ ...head, choices: [], usage: body['usage'] });
  return `${chunks.map((c) => sse(c, false)).join('')}data: [DONE]\n\n`;
}

/**
 * The server. `handlers` answer by path; a request to any other path is
 * recorded and answered 404, so a test that checks `requests` sees it.
 */
export class FakeOpenAIServer {
  /** every request received, in order */
  readonly requests: RecordedRequest[] = [];
  private readonly counts = new Map<string, number>();

  private constructor(private readonly server: Server) {}

  static async start(handlers: Readonly<Record<string, Handler>>): Promise<FakeOpenAIServer> {
    const server = createServer();
    const fake = new FakeOpenAIServer(server);
    server.on('request', (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body: unknown = text;
        try {
          body = text.length > 0 ? (JSON.parse(text) as unknown) : undefined;
        } catch {
          // kept as text: the test sees what arrived
        }
        const path = (req.url ?? '').split('?')[0] ?? '';
        const recorded: RecordedRequest = { method: req.method ?? '', path, headers: req.headers, body };
        fake.requests.push(recorded);
        const handler = req.method === 'POST' ? handlers[path] : undefined;
        const nth = (fake.counts.get(path) ?? 0) + 1;
        fake.counts.set(path, nth);
        const answer = handler ? handler(recorded, nth) : errorAnswer(404, `fake server: no route ${req.method} ${path}`);
        recorded.answer = answer;
        const status = answer.status ?? 200;
        const streamed = status === 200 && typeof body === 'object' && body !== null && (body as { stream?: unknown }).stream === true;
        const headers = { 'x-request-id': `req_test_${fake.requests.length}` };
        if (streamed) {
          res.writeHead(200, { ...headers, 'content-type': 'text/event-stream' });
          res.end(path === CHAT_PATH ? chatChunks(answer.body) : responsesEvents(answer.body));
        } else {
          res.writeHead(status, { ...headers, 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.body));
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  /** `http://127.0.0.1:<port>/v1`, the client's baseURL */
  get baseURL(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/v1`;
  }

  /** the requests received on one path */
  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
