/**
 * The spans the OTLP benchmarks send (bench/otlp.ts across processes,
 * bench/otlp-decode.ts in one): GenAI execute_tool spans of about 560 bytes
 * of protobuf each, one email each (for pii-basic), as OTLP/JSON requests
 * and as protobuf bodies encoded by protobufjs from the vendored
 * definitions.
 */
import { otlpTypes } from '../src/sidecar/formats/otlp/proto.js';
import type { OtlpRequest } from '../src/sidecar/formats/otlp/types.js';

const hex = (n: number, len: number): string => (n * 2654435761 + len).toString(16).padStart(len, '0').slice(-len);
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const int = (key: string, v: number) => ({ key, value: { intValue: String(v) } });

/** An execute_tool span as an instrumented agent sends it (about the size of the pipeline benchmark's event), ids as hex. */
function span(n: number): Record<string, unknown> {
  const start = BigInt(Date.UTC(2026, 10, 22)) * 1_000_000n + BigInt(n) * 1_000_000n;
  return {
    traceId: hex(n, 32),
    spanId: hex(n + 1, 16),
    parentSpanId: hex(n + 2, 16),
    name: 'execute_tool claims.search',
    kind: 1,
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: (start + BigInt(1_000_000 * (n % 900))).toString(),
    attributes: [
      str('gen_ai.operation.name', 'execute_tool'),
      str('gen_ai.tool.name', 'claims.search'),
      str('gen_ai.tool.call.id', `call-${n}`),
      str('gen_ai.tool.call.arguments', JSON.stringify({ claim_id: `CLM-${100000 + n}`, query: `status of claim for member ${n % 5000}, contact jane.doe${n % 97}@example.com` })),
      str('gen_ai.provider.name', 'anthropic'),
      str('gen_ai.request.model', 'claude-sonnet'),
      str('gen_ai.agent.id', 'agent-7'),
      str('gen_ai.agent.name', 'claims-assistant'),
      str('gen_ai.conversation.id', `sess-${n % 300}`),
      str('enduser.id', `user-${n % 1000}`),
      int('gen_ai.usage.input_tokens', 120 + (n % 400)),
    ],
    status: n % 20 === 0 ? { code: 2, message: 'denied by policy' } : { code: 1 },
  };
}

export function requestOf(from: number, count: number): OtlpRequest {
  const spans = [];
  for (let n = from; n < from + count; n++) spans.push(span(n));
  return {
    resourceSpans: [
      {
        resource: { attributes: [str('service.name', 'claims-agent'), str('k8s.pod.name', 'claims-agent-7d9f8-abcde'), str('tenant.id', 'acme-health')] },
        scopeSpans: [{ scope: { name: 'opentelemetry.instrumentation.genai', version: '0.1.0' }, spans }],
      },
    ],
  } as unknown as OtlpRequest;
}

/** The same request with ids as bytes, encoded by protobufjs from the vendored definitions. */
export function protobufOf(req: OtlpRequest): Uint8Array {
  const idsToBytes = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) return v.map((x) => idsToBytes(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, idsToBytes(x, k)]));
    if (typeof v === 'string' && (key === 'traceId' || key === 'spanId' || key === 'parentSpanId')) return Buffer.from(v, 'hex');
    return v;
  };
  const t = otlpTypes().traceRequest;
  return t.encode(t.fromObject(idsToBytes(req) as Record<string, unknown>)).finish();
}
