import { context, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type IdGenerator } from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { normaliseEvent } from '../../src/core/record.js';
import { decodeOtlpRequest, otlpEvents } from '../../src/sidecar/formats/otlp/index.js';
import type { DecodedEvent } from '../../src/sidecar/formats/format.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const OTHER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const T0 = 1760000000; // 2025-10-09T08:53:20Z

/** Span ids 0000000000000001, 0000000000000002, … so every id can be asserted. */
class SequentialIds implements IdGenerator {
  private next = 1;
  generateTraceId(): string {
    return TRACE;
  }
  generateSpanId(): string {
    return (this.next++).toString(16).padStart(16, '0');
  }
}
const id = (n: number): string => n.toString(16).padStart(16, '0');

const RESOURCE = { 'service.name': 'travel-agent', 'k8s.pod.name': 'travel-agent-0', 'tenant.id': 'acme-eu' };
const RESOURCE_JSON = { 'service.name': 'travel-agent', 'k8s.pod.name': 'travel-agent-0', 'tenant.id': 'acme-eu' };
const SCOPE = { name: 'travel-agent-instrumentation', version: '1.4.0' };

/** The same spans through the SDK's protobuf and JSON serialisers: both must map to the same events. */
function traceEvents(build: (tracer: ReturnType<TracerProvider['getTracer']>) => void): DecodedEvent[] {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes(RESOURCE),
    idGenerator: new SequentialIds(),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  build(provider.getTracer(SCOPE.name, SCOPE.version));
  const spans = exporter.getFinishedSpans();
  const fromPb = otlpEvents('traces', decodeOtlpRequest('traces', ProtobufTraceSerializer.serializeRequest(spans)!, 'protobuf'));
  const fromJson = otlpEvents('traces', decodeOtlpRequest('traces', JsonTraceSerializer.serializeRequest(spans)!, 'json'));
  expect(fromJson).toEqual(fromPb);
  return fromPb;
}

function span(
  tracer: ReturnType<TracerProvider['getTracer']>,
  name: string,
  attributes: Attributes,
  opts: { parent?: ReturnType<typeof tracer.startSpan>; kind?: SpanKind; start?: number; end?: number } = {},
): ReturnType<typeof tracer.startSpan> {
  const ctx = opts.parent ? trace.setSpan(context.active(), opts.parent) : context.active();
  return tracer.startSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes, startTime: [T0 + (opts.start ?? 0), 0] }, ctx);
}

/** Every mapped event must become a record: normaliseEvent accepts it and RFC 8785 can write it. */
function assertRecordable(events: DecodedEvent[]): void {
  for (const { event } of events) {
    for (const owned of ['id', 'stream', 'seq', 'received_at', 'source', 'redaction']) expect(Object.hasOwn(event, owned)).toBe(false);
    const normalised = normaliseEvent(event, '2026-01-01T00:00:00.000Z');
    expect(normalised.event_type).toBe(event.event_type);
    expect(() => canonicalize(normalised)).not.toThrow();
  }
}

const envelope = {
  resource: RESOURCE_JSON,
  scope: SCOPE,
};

describe('otlpEvents: spans under the GenAI semantic conventions (SDK-serialised)', () => {
  const events = traceEvents((tracer) => {
    const agent = span(tracer, 'invoke_agent Travel Planner', {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.provider.name': 'openai',
      'gen_ai.agent.id': 'asst_5j66',
      'gen_ai.agent.name': 'Travel Planner',
      'gen_ai.agent.description': 'Plans trips',
      'gen_ai.agent.version': '2.1.0',
      'gen_ai.conversation.id': 'conv_5j66',
      'gen_ai.request.model': 'gpt-4o',
      'enduser.id': 'u-1001',
    });
    const chat = span(
      tracer,
      'chat gpt-4o',
      {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.usage.input_tokens': 97,
        'gen_ai.usage.output_tokens': 52,
        'gen_ai.response.finish_reasons': ['tool_calls'],
        'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]',
        'gen_ai.system_instructions': '[{"type":"text","content":"You are a travel agent."}]',
        'gen_ai.conversation.id': 'conv_5j66',
        'error.type': '429',
        'server.address': 'api.openai.com',
      },
      { parent: agent, kind: SpanKind.CLIENT, start: 1 },
    );
    chat.addEvent('exception', { 'exception.type': 'RateLimitError', 'exception.message': 'slow down' }, [T0 + 2, 500]);
    chat.setStatus({ code: SpanStatusCode.ERROR, message: 'rate limited' });
    chat.end([T0 + 2, 750]);
    const tool = span(
      tracer,
      'execute_tool get_weather',
      {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'get_weather',
        'gen_ai.tool.call.id': 'call_mszu',
        'gen_ai.tool.type': 'function',
        'gen_ai.tool.description': 'Current weather for a city',
        'gen_ai.tool.call.arguments': '{"location":"Paris","units":["C"]}',
        'gen_ai.tool.call.result': 'cloudy, 18 degrees',
      },
      { parent: agent, start: 3 },
    );
    tool.addLink({ context: { traceId: OTHER_TRACE, spanId: 'b9c7c989f97918e1', traceFlags: 1 }, attributes: { 'link.reason': 'caused_by' } });
    tool.setStatus({ code: SpanStatusCode.OK });
    tool.end([T0 + 4, 0]);
    agent.setStatus({ code: SpanStatusCode.OK });
    agent.end([T0 + 5, 0]);
  });

  it('maps an execute_tool span to tool_invoked with the tool, its call id, parsed arguments and result', () => {
    const tool = events.find((e) => e.event.event_type === 'tool_invoked')!;
    expect(tool.path).toBe('resourceSpans[0].scopeSpans[0].spans[1]');
    expect(tool.event).toEqual({
      event_type: 'tool_invoked',
      time: '2025-10-09T08:53:23.000Z',
      tenant: 'acme-eu',
      action: 'execute_tool',
      tool: {
        name: 'get_weather',
        call_id: 'call_mszu',
        arguments: { location: 'Paris', units: ['C'] },
        result: 'cloudy, 18 degrees',
        type: 'function',
        description: 'Current weather for a city',
      },
      outcome: 'success',
      trace_id: TRACE,
      span_id: id(3),
      details: {
        span_name: 'execute_tool get_weather',
        span_kind: 'internal',
        parent_span_id: id(1),
        flags: 257,
        start_time: '2025-10-09T08:53:23.000000000Z',
        end_time: '2025-10-09T08:53:24.000000000Z',
        duration: '1.000000000s',
        status_code: 'ok',
        links: [{ trace_id: OTHER_TRACE, span_id: 'b9c7c989f97918e1', flags: 257, attributes: { 'link.reason': 'caused_by' } }],
        ...envelope,
      },
    });
  });

  it('maps a failed chat span to model_called with model names, usage, error and every other attribute kept', () => {
    const chat = events.find((e) => e.event.event_type === 'model_called')!;
    expect(chat.event).toEqual({
      event_type: 'model_called',
      time: '2025-10-09T08:53:21.000Z',
      tenant: 'acme-eu',
      action: 'chat',
      model: { provider: 'openai', name: 'gpt-4o-2024-08-06', request_name: 'gpt-4o', response_name: 'gpt-4o-2024-08-06' },
      session_id: 'conv_5j66',
      outcome: 'error',
      trace_id: TRACE,
      span_id: id(2),
      details: {
        span_name: 'chat gpt-4o',
        span_kind: 'client',
        parent_span_id: id(1),
        flags: 257,
        start_time: '2025-10-09T08:53:21.000000000Z',
        end_time: '2025-10-09T08:53:22.000000750Z',
        duration: '1.000000750s',
        status_code: 'error',
        status_message: 'rate limited',
        error_type: '429',
        usage: { input_tokens: 97, output_tokens: 52 },
        attributes: {
          'gen_ai.response.finish_reasons': ['tool_calls'],
          'gen_ai.input.messages': '[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]',
          'gen_ai.system_instructions': '[{"type":"text","content":"You are a travel agent."}]',
          'server.address': 'api.openai.com',
        },
        events: [
          {
            name: 'exception',
            time: '2025-10-09T08:53:22.000000500Z',
            attributes: { 'exception.type': 'RateLimitError', 'exception.message': 'slow down' },
          },
        ],
        ...envelope,
      },
    });
  });

  it('maps an invoke_agent span to agent_invoked with the agent, the end user and the conversation', () => {
    const agent = events.find((e) => e.event.event_type === 'agent_invoked')!;
    expect(agent.event).toEqual({
      event_type: 'agent_invoked',
      time: '2025-10-09T08:53:20.000Z',
      tenant: 'acme-eu',
      action: 'invoke_agent',
      actor: { id: 'u-1001', type: 'user' },
      agent: { id: 'asst_5j66', name: 'Travel Planner', description: 'Plans trips', version: '2.1.0' },
      model: { provider: 'openai', name: 'gpt-4o' },
      session_id: 'conv_5j66',
      outcome: 'success',
      trace_id: TRACE,
      span_id: id(1),
      details: {
        span_name: 'invoke_agent Travel Planner',
        span_kind: 'internal',
        flags: 257,
        start_time: '2025-10-09T08:53:20.000000000Z',
        end_time: '2025-10-09T08:53:25.000000000Z',
        duration: '5.000000000s',
        status_code: 'ok',
        ...envelope,
      },
    });
  });

  it('gives events that become records', () => {
    expect(events).toHaveLength(3);
    assertRecordable(events);
  });
});

describe('otlpEvents: older names, other operations, and values that do not fit a field', () => {
  const events = traceEvents((tracer) => {
    const ops: Array<[string, Attributes]> = [
      [
        'embeddings text-embedding-3',
        {
          'gen_ai.operation.name': 'embeddings',
          'gen_ai.system': 'cohere',
          'gen_ai.request.model': 'embed-v4',
          'gen_ai.response.model': 'embed-v4',
          'gen_ai.usage.prompt_tokens': 11,
          'gen_ai.usage.completion_tokens': 0,
          'session.id': 'sess-77',
          'user.id': 'alice',
        },
      ],
      ['text_completion', { 'gen_ai.operation.name': 'text_completion' }],
      ['generate_content', { 'gen_ai.operation.name': 'generate_content', 'gen_ai.provider.name': 'gcp.gemini', 'gen_ai.system': 'vertex_ai' }],
      ['create_agent', { 'gen_ai.operation.name': 'create_agent', 'gen_ai.agent.name': 'Math Tutor' }],
      ['retrieval', { 'gen_ai.operation.name': 'retrieval', 'gen_ai.data_source.id': 'kb-1' }],
      ['long op', { 'gen_ai.operation.name': 'x'.repeat(200) }],
      ['GET /health', { 'http.request.method': 'GET', 'http.response.status_code': 200 }],
      [
        'execute_tool without a name',
        { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.call.id': 'call_9', 'gen_ai.tool.call.arguments': '{"a":1}', 'enduser.id': 42, 'tenant.id': 'span-tenant' },
      ],
      [
        'execute_tool odd values',
        {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': 't'.repeat(70_000),
          'gen_ai.agent.id': '',
          'gen_ai.usage.input_tokens': 'many',
          'error.type': '',
        },
      ],
    ];
    ops.forEach(([name, attrs], i) => span(tracer, name, attrs, { start: i }).end([T0 + i, 1]));
  });
  const byName = (name: string): Record<string, unknown> => events.find((e) => (e.event.details as Record<string, unknown>).span_name === name)!.event;
  const detailsOf = (e: Record<string, unknown>): Record<string, unknown> => e.details as Record<string, unknown>;

  it('maps gen_ai.system, prompt/completion token counts, session.id and user.id', () => {
    const e = byName('embeddings text-embedding-3');
    expect(e.event_type).toBe('embeddings_created');
    expect(e.model).toEqual({ provider: 'cohere', name: 'embed-v4' });
    expect(e.session_id).toBe('sess-77');
    expect(e.actor).toEqual({ id: 'alice', type: 'user' });
    expect(detailsOf(e).usage).toEqual({ input_tokens: 11, output_tokens: 0 });
    expect(detailsOf(e).attributes).toBeUndefined();
  });

  it('prefers gen_ai.provider.name and keeps gen_ai.system in the attributes then', () => {
    const e = byName('generate_content');
    expect(e.event_type).toBe('model_called');
    expect(e.model).toEqual({ provider: 'gcp.gemini' });
    expect(detailsOf(e).attributes).toEqual({ 'gen_ai.system': 'vertex_ai' });
  });

  it('names event types for every operation, gen_ai.<op> for ones without a sealtrail name, span without one', () => {
    expect(byName('text_completion').event_type).toBe('model_called');
    expect(byName('create_agent')).toMatchObject({ event_type: 'agent_created', action: 'create_agent', agent: { name: 'Math Tutor' } });
    expect(byName('retrieval')).toMatchObject({ event_type: 'gen_ai.retrieval', action: 'retrieval' });
    expect(detailsOf(byName('retrieval')).attributes).toEqual({ 'gen_ai.data_source.id': 'kb-1' });
    expect(byName('long op')).toMatchObject({ event_type: 'gen_ai.other', action: 'x'.repeat(200) });
    const plain = byName('GET /health');
    expect(plain.event_type).toBe('span');
    expect(plain.action).toBeUndefined();
    expect(detailsOf(plain).attributes).toEqual({ 'http.request.method': 'GET', 'http.response.status_code': 200 });
    expect(plain.tenant).toBe('acme-eu');
  });

  it('leaves attributes that cannot fill a field where they are, instead of refusing the span', () => {
    const nameless = byName('execute_tool without a name');
    expect(nameless.event_type).toBe('tool_invoked');
    expect(nameless.tool).toBeUndefined();
    expect(nameless.actor).toBeUndefined();
    expect(nameless.tenant).toBe('span-tenant');
    expect(detailsOf(nameless).attributes).toEqual({ 'gen_ai.tool.call.id': 'call_9', 'gen_ai.tool.call.arguments': '{"a":1}', 'enduser.id': 42 });
    const odd = byName('execute_tool odd values');
    expect(odd.tool).toBeUndefined();
    expect(odd.agent).toBeUndefined();
    expect(odd.outcome).toBe('success');
    expect(detailsOf(odd).attributes).toEqual({
      'gen_ai.tool.name': 't'.repeat(70_000),
      'gen_ai.agent.id': '',
      'gen_ai.usage.input_tokens': 'many',
      'error.type': '',
    });
  });

  it('gives events that become records', () => {
    expect(events).toHaveLength(9);
    assertRecordable(events);
  });
});

describe('otlpEvents: tool arguments', () => {
  function argumentsOf(value: string): unknown {
    const req = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  name: 'execute_tool f',
                  attributes: [
                    { key: 'gen_ai.tool.name', value: { stringValue: 'f' } },
                    { key: 'gen_ai.tool.call.arguments', value: { stringValue: value } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    return (otlpEvents('traces', req)[0]!.event.tool as Record<string, unknown>).arguments;
  }

  it('parses JSON object and array text, keeps anything else as the text', () => {
    expect(JSON.stringify(argumentsOf(' [1, {"__proto__": 2}]'))).toBe('[1,{"__proto__":2}]');
    expect(Object.hasOwn((argumentsOf('{"__proto__": {"x": 1}}') as object), '__proto__')).toBe(true);
    expect(argumentsOf('"just text"')).toBe('"just text"');
    expect(argumentsOf('{not json')).toBe('{not json');
    expect(argumentsOf('42')).toBe('42');
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(argumentsOf(deep)).toBe(deep);
    const fine = '['.repeat(32) + ']'.repeat(32);
    expect(argumentsOf(fine)).toEqual(JSON.parse(fine));
  });

  it('takes structured arguments (a kvlist) as an object', () => {
    const req = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  attributes: [
                    { key: 'gen_ai.tool.name', value: { stringValue: 'f' } },
                    { key: 'gen_ai.tool.call.arguments', value: { kvlistValue: { values: [{ key: 'city', value: { stringValue: 'Paris' } }] } } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    expect(otlpEvents('traces', req)[0]!.event.tool).toEqual({ name: 'f', arguments: { city: 'Paris' } });
  });
});

describe('tool arguments holding a lone-surrogate escape', () => {
  it('stay the text they were sent as, so the record can be written; a surrogate pair escape is parsed', async () => {
    const { parseJsonText } = await import('../../src/sidecar/formats/otlp/genai.js');
    const lone = '{"q":"\\ud800 a@b.example"}';
    expect(parseJsonText(lone)).toBe(lone);
    expect(parseJsonText('{"q":"\\ud83d\\ude00"}')).toEqual({ q: '\u{1F600}' });
    expect(parseJsonText('{"\\udc00":1}')).toBe('{"\\udc00":1}');
  });
});
