import { context, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { normaliseEvent } from '../../src/core/record.js';
import { decodeOtlpRequest, otlpEvents } from '../../src/sidecar/formats/otlp/index.js';
import type { DecodedEvent } from '../../src/sidecar/formats/format.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const T0 = 1760000000; // 2025-10-09T08:53:20Z
const id = (n: number): string => n.toString(16).padStart(16, '0');
const RESOURCE = { 'service.name': 'travel-agent', 'k8s.pod.name': 'travel-agent-0', 'tenant.id': 'acme-eu' };
const SCOPE = { name: 'travel-agent-instrumentation', version: '1.4.0' };
const envelope = { resource: RESOURCE, scope: SCOPE };

/** Every mapped event must become a record: normaliseEvent accepts it and RFC 8785 can write it. */
function assertRecordable(events: DecodedEvent[]): void {
  for (const { event } of events) {
    for (const owned of ['id', 'stream', 'seq', 'received_at', 'source', 'redaction']) expect(Object.hasOwn(event, owned)).toBe(false);
    const normalised = normaliseEvent(event, '2026-01-01T00:00:00.000Z');
    expect(normalised.event_type).toBe(event.event_type);
    expect(() => canonicalize(normalised)).not.toThrow();
  }
}

describe('otlpEvents: log records (SDK-serialised)', () => {
  it('maps gen_ai events by eventName or event.name, with time, severity, body, trace context', async () => {
    const exporter = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(RESOURCE),
      processors: [new SimpleLogRecordProcessor({ exporter })],
    });
    const logger = provider.getLogger(SCOPE.name, SCOPE.version);
    const spanContext = { traceId: TRACE, spanId: id(2), traceFlags: 1 };
    logger.emit({
      eventName: 'gen_ai.client.inference.operation.details',
      timestamp: [T0 + 10, 123456],
      observedTimestamp: [T0 + 11, 0],
      severityNumber: SeverityNumber.INFO,
      context: trace.setSpanContext(context.active(), spanContext),
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': 'claude-sonnet-4',
        'gen_ai.response.model': 'claude-sonnet-4',
        'gen_ai.conversation.id': 'conv-1',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.output.messages': [{ role: 'assistant', parts: [{ type: 'text', content: 'Bonjour' }], finish_reason: 'stop' }],
      },
    });
    logger.emit({
      timestamp: [1700000000, 0],
      severityNumber: SeverityNumber.INFO,
      attributes: { 'event.name': 'gen_ai.user.message', 'gen_ai.system': 'openai' },
      body: { content: 'What is the weather in Paris?' },
    });
    logger.emit({
      timestamp: [T0 + 20, 0],
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: 'tool registry unavailable',
      attributes: { 'error.type': 'ConnectionError', 'enduser.id': 'u-7' },
    });
    await provider.forceFlush();
    const records = exporter.getFinishedLogRecords();
    const events = otlpEvents('logs', decodeOtlpRequest('logs', ProtobufLogsSerializer.serializeRequest(records)!, 'protobuf'));
    expect(otlpEvents('logs', decodeOtlpRequest('logs', JsonLogsSerializer.serializeRequest(records)!, 'json'))).toEqual(events);
    expect(events.map((e) => e.path)).toEqual([0, 1, 2].map((i) => `resourceLogs[0].scopeLogs[0].logRecords[${i}]`));

    expect(events[0]!.event).toEqual({
      event_type: 'gen_ai.client.inference.operation.details',
      time: '2025-10-09T08:53:30.000Z',
      tenant: 'acme-eu',
      action: 'chat',
      model: { provider: 'anthropic', name: 'claude-sonnet-4' },
      session_id: 'conv-1',
      trace_id: TRACE,
      span_id: id(2),
      details: {
        time: '2025-10-09T08:53:30.000123456Z',
        observed_time: '2025-10-09T08:53:31.000000000Z',
        severity_number: 9,
        flags: 1,
        usage: { input_tokens: 10 },
        attributes: {
          'gen_ai.output.messages': [{ role: 'assistant', parts: [{ type: 'text', content: 'Bonjour' }], finish_reason: 'stop' }],
        },
        ...envelope,
      },
    });
    const user = events[1]!.event;
    expect(user).toMatchObject({ event_type: 'gen_ai.user.message', time: '2023-11-14T22:13:20.000Z', model: { provider: 'openai' } });
    expect((user.details as Record<string, unknown>).body).toEqual({ content: 'What is the weather in Paris?' });
    expect((user.details as Record<string, unknown>).attributes).toBeUndefined();
    expect(user.trace_id).toBeUndefined();
    const failure = events[2]!.event;
    expect(failure).toMatchObject({ event_type: 'log', outcome: 'error', actor: { id: 'u-7', type: 'user' } });
    expect(failure.details).toMatchObject({ severity_number: 17, severity_text: 'ERROR', body: 'tool registry unavailable', error_type: 'ConnectionError' });
    assertRecordable(events);
  });

  it('leaves time out when both timestamps are 0, and keeps an over-long event name in details', () => {
    const req = {
      resourceLogs: [
        {
          scopeLogs: [
            {
              logRecords: [
                { timeUnixNano: '0', observedTimeUnixNano: 0, body: { stringValue: 'x' } },
                { observedTimeUnixNano: '1700000000000000001', eventName: 'e'.repeat(129), attributes: [{ key: 'event.name', value: { stringValue: 'ignored' } }] },
              ],
            },
          ],
        },
      ],
    };
    const [a, b] = otlpEvents('logs', req);
    expect(a!.event).toEqual({ event_type: 'log', details: { body: 'x' } });
    expect(b!.event).toEqual({
      event_type: 'log',
      time: '2023-11-14T22:13:20.000Z',
      details: {
        event_name: 'e'.repeat(129),
        observed_time: '2023-11-14T22:13:20.000000001Z',
        attributes: { 'event.name': 'ignored' },
      },
    });
    assertRecordable([a!, b!]);
  });
});
