/**
 * Scripted models for @openai/agents-core runs: no network, no API key.
 */
import {
  Usage,
  withGenerationSpan,
  withResponseSpan,
  type AgentOutputItem,
  type Model,
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
  type StreamEvent,
} from '@openai/agents-core';

/**
 * A Model as the SDK's own OpenAI models are written: the call runs inside the
 * model span the SDK's helpers create, and fills it the way
 * OpenAIChatCompletionsModel (generation span: model, config, input, output,
 * usage) or OpenAIResponsesModel (response span: response_id, and the private
 * _input/_response the exporter drops: a Responses API response, with its
 * model and usage) do. Only the answers are canned; a call's input tokens are
 * `inputTokens(call)` (1-based), 40 per call so far by default.
 */
export class ScriptedModel implements Model {
  private turn = 0;
  constructor(
    private readonly name: string,
    private readonly api: 'chat_completions' | 'responses',
    private readonly turns: Array<(request: ModelRequest) => AgentOutputItem[]>,
    private readonly inputTokens: (call: number) => number = (call) => 40 * call,
  ) {}

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    const script = this.turns[this.turn];
    const n = ++this.turn;
    if (!script) throw new Error(`${this.name}: no answer scripted for call ${n}`);
    const output = script(request);
    const tokens = this.inputTokens(n);
    const usage = new Usage({ requests: 1, inputTokens: tokens, outputTokens: 7, totalTokens: tokens + 7 });
    if (this.api === 'responses') {
      const responseId = `resp_${this.name.replace(/\W/g, '')}_${n}`;
      return withResponseSpan(async (span) => {
        if (request.tracing) {
          span.spanData.response_id = responseId;
          span.spanData._input = request.input;
          span.spanData._response = { id: responseId, model: this.name, output, usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens } };
        }
        return { usage, output, responseId };
      });
    }
    return withGenerationSpan(async (span) => {
      span.spanData.model = this.name;
      span.spanData.model_config = { temperature: request.modelSettings.temperature, top_p: request.modelSettings.topP };
      if (request.tracing === true) {
        span.spanData.input = typeof request.input === 'string' ? [{ role: 'user', content: request.input }] : request.input;
        span.spanData.output = output;
      }
      span.spanData.usage = { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens };
      return { usage, output };
    });
  }

  async *getStreamedResponse(): AsyncIterable<StreamEvent> {
    throw new Error(`${this.name}: this test runs without streaming`);
  }
}

/** A ModelProvider serving `models` by name; an unknown name fails the run. */
export function scriptedProvider(models: ReadonlyMap<string, Model>): ModelProvider {
  return {
    getModel(name) {
      const m = models.get(name ?? '');
      if (!m) throw new Error(`no scripted model named ${String(name)}`);
      return m;
    },
  };
}

