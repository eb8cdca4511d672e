/**
 * Process to process: the OpenTelemetry JS SDK's own OTLP/HTTP exporters,
 * run in a child process (test/fixtures/otlp-sdk/export.mjs), send GenAI
 * spans and log events to a real OtlpSource committing into a real buffer.
 * The exporters must report SUCCESS, and the stored records must carry
 * every mapped field.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar } from '../../src/sidecar/sidecar.js';
import { OtlpSource, type OtlpSourceOptions } from '../../src/sidecar/sources/otlp-source.js';
import { freePort, procOf, ROOT } from '../helpers/procs.js';
import { otlpEnvs, type OtlpEnv } from '../helpers/otlp-env.js';
import { tempDir } from '../helpers/sidecar-fixtures.js';

const SCRIPT = fileURLToPath(new URL('../fixtures/otlp-sdk/export.mjs', import.meta.url));
const SUCCESS = 0;
const FAILED = 1;

type Env = OtlpEnv;

const envs = otlpEnvs({ name: 'otlp-sdk', maxBodyBytes: 16 * 1024 * 1024, maxItems: 100_000 });
afterEach(() => envs.cleanup());
const startEnv = (o: Partial<OtlpSourceOptions> = {}): Promise<Env> => envs.start(o);

interface ExportResult {
  code: number;
  error?: string;
}
interface ChildOutput {
  traces?: { result: ExportResult; spans: Array<{ name: string; traceId: string; spanId: string; parentSpanId?: string }> };
  logs?: { result: ExportResult; records: number; traceId: string; spanId: string };
}

async function runExporter(opts: { base: string; protocol: 'proto' | 'json'; compression: 'gzip' | 'none'; signals: string[]; timeoutMillis?: number }): Promise<ChildOutput> {
  const p = procOf(spawn(process.execPath, [SCRIPT, JSON.stringify(opts)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  const { code } = await p.exited;
  expect(code, p.stderr()).toBe(0);
  return JSON.parse(p.stdout().trim().split('\n').at(-1)!) as ChildOutput;
}

type Rec = Record<string, any>;

function records(env: Pick<Env, 'buffer'>): Rec[] {
  return (env.buffer.db.prepare('SELECT canonical FROM records ORDER BY seq').all() as Array<{ canonical: string }>).map((r) => JSON.parse(r.canonical));
}

function bySpanName(recs: Rec[]): Record<string, Rec> {
  return Object.fromEntries(recs.filter((r) => r.details?.span_name).map((r) => [r.details.span_name, r]));
}

/** `redacted`: stored through the pii-basic rules, which rewrite the e-mail address; times and durations are kept in forms no rule mistakes for a number to redact. */
function checkTraces(env: Pick<Env, 'buffer'>, out: ChildOutput, redacted = false): void {
  expect(out.traces!.result).toEqual({ code: SUCCESS });
  const recs = records(env).filter((r) => r.details?.span_name !== undefined);
  expect(recs).toHaveLength(4);
  const ids = Object.fromEntries(out.traces!.spans.map((s) => [s.name, s]));
  const r = bySpanName(recs);
  const agent = r['invoke_agent helper']!;
  const chat = r['chat gpt-4o']!;
  const tool = r['execute_tool get_weather']!;
  const failed = r['execute_tool book_flight']!;

  for (const [name, rec] of Object.entries(r)) {
    expect(rec.trace_id).toBe(ids[name]!.traceId);
    expect(rec.span_id).toBe(ids[name]!.spanId);
    expect(rec.source).toBe('otel');
    expect(rec.tenant).toBe('acme');
    expect(rec.details.resource).toMatchObject({ 'service.name': 'support-agent', 'service.version': '2.4.0' });
    expect(rec.details.scope).toMatchObject({ name: 'agent-sdk', version: '3.1.0' });
  }
  expect(chat.details.parent_span_id).toBe(ids['invoke_agent helper']!.spanId);
  expect(tool.details.parent_span_id).toBe(ids['invoke_agent helper']!.spanId);

  expect(agent).toMatchObject({
    event_type: 'agent_invoked',
    action: 'invoke_agent',
    time: '2025-10-09T08:53:20.123Z',
    agent: { id: 'agent-42', name: 'helper' },
    session_id: 'conv-9',
    actor: { id: 'user-7', type: 'user' },
    outcome: 'success',
  });
  expect(agent.details).toMatchObject({ start_time: '2025-10-09T08:53:20.123456789Z', end_time: '2025-10-09T08:53:29.000000000Z' });
  expect(agent.details.duration).toBe('8.876543211s');
  expect(chat.details.duration).toBe('1.000000000s');

  expect(chat).toMatchObject({
    event_type: 'model_called',
    action: 'chat',
    time: '2025-10-09T08:53:21.000Z',
    model: { provider: 'openai', name: 'gpt-4o-2024-08-06', request_name: 'gpt-4o', response_name: 'gpt-4o-2024-08-06' },
    session_id: 'conv-9',
    outcome: 'success',
  });
  expect(chat.details.usage).toMatchObject({ input_tokens: 120, output_tokens: 40 });
  const content = redacted ? 'What is the weather in Paris? Mail [REDACTED:email]' : 'What is the weather in Paris? Mail jane.doe@example.com';
  expect(chat.details.events).toEqual([expect.objectContaining({ name: 'gen_ai.user.message', attributes: { 'gen_ai.message.content': content } })]);

  expect(tool).toMatchObject({
    event_type: 'tool_invoked',
    action: 'execute_tool',
    tool: { name: 'get_weather', call_id: 'call_abc', arguments: { city: 'Paris' }, type: 'function' },
    model: { provider: 'openai' },
    outcome: 'success',
    time: '2025-10-09T08:53:22.250Z',
  });

  expect(failed).toMatchObject({ event_type: 'tool_invoked', tool: { name: 'book_flight', call_id: 'call_def' }, outcome: 'error' });
  expect(failed.details).toMatchObject({ error_type: 'timeout', status_code: 'error', status_message: 'the tool timed out' });
}

function checkLogs(env: Pick<Env, 'buffer'>, out: ChildOutput): void {
  expect(out.logs!.result).toEqual({ code: SUCCESS });
  const recs = records(env).filter((r) => r.details?.span_name === undefined);
  expect(recs).toHaveLength(out.logs!.records);
  expect(recs).toHaveLength(4);
  const byType = Object.fromEntries(recs.map((r) => [r.event_type, r]));
  expect(byType['gen_ai.user.message']).toMatchObject({
    time: '2025-10-09T08:53:21.100Z',
    model: { provider: 'openai' },
    session_id: 'conv-9',
    trace_id: out.logs!.traceId,
    span_id: out.logs!.spanId,
    tenant: 'acme',
  });
  expect(byType['gen_ai.user.message']!.details).toMatchObject({ body: { content: 'What is the weather in Paris?' }, severity_number: 9 });
  expect(byType['gen_ai.choice']).toMatchObject({ model: { name: 'gpt-4o-2024-08-06' } });
  expect(byType['gen_ai.choice']!.details.body).toEqual({ index: 0, finish_reason: 'tool_calls', message: { tool_calls: [{ id: 'call_abc', function: { name: 'get_weather' } }] } });
  expect(byType['gen_ai.system.message']).toMatchObject({ time: '2025-10-09T08:53:20.050Z', model: { provider: 'openai' } });
  expect(byType['gen_ai.system.message']!.details.body).toBe('You are a helpful assistant.');
  expect(byType['log']).toMatchObject({ outcome: 'error', time: '2025-10-09T08:53:24.000Z' });
  expect(byType['log']!.details).toMatchObject({ error_type: 'timeout', severity_text: 'ERROR', body: 'tool failed' });
}

describe('otlp source with the OpenTelemetry JS SDK exporters', () => {
  for (const protocol of ['proto', 'json'] as const) {
    for (const compression of ['none', 'gzip'] as const) {
      it(`${protocol === 'proto' ? 'http/protobuf' : 'http/json'}, compression ${compression}: SUCCESS, every mapped field stored`, async () => {
        const env = await startEnv();
        const out = await runExporter({ base: env.url, protocol, compression, signals: ['traces', 'logs'] });
        checkTraces(env, out);
        checkLogs(env, out);
        const enc = protocol === 'proto' ? 'protobuf' : 'json';
        const gz = compression === 'gzip';
        expect(env.summaries.map((s) => [s.path, s.status, s.encoding, s.gzip, s.items, s.accepted, s.rejected])).toEqual([
          ['POST /v1/traces', 200, enc, gz, 4, 4, 0],
          ['POST /v1/logs', 200, enc, gz, 4, 4, 0],
        ]);
        expect(env.buffer.quarantineCount()).toBe(0);
        expect(env.errors).toEqual([]);
      });
    }
  }

  it('the exporter honours Retry-After on 503 while the buffer is full, and succeeds once it is not', async () => {
    const env = await startEnv({ retryAfterFullSeconds: 1 });
    env.source.pause();
    const running = runExporter({ base: env.url, protocol: 'proto', compression: 'gzip', signals: ['traces'] });
    // resumed once the exporter has been refused at least once
    const until = Date.now() + 15_000;
    while (!env.summaries.some((s) => s.status === 503) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    env.source.resume();
    const out = await running;
    checkTraces(env, out);
    const statuses = env.summaries.map((s) => [s.status, s.code]);
    expect(statuses[0]).toEqual([503, 'buffer_full']);
    expect(statuses.at(-1)).toEqual([200, undefined]);
    // the refused attempts stored nothing: exactly one copy of each span
    expect(env.buffer.stats().records).toBe(4);
  });

  it('a request refused for its data (too many items) is a FAILED export, not retried, and leaves one quarantine row', async () => {
    const env = await startEnv({ maxItems: 3 });
    const out = await runExporter({ base: env.url, protocol: 'json', compression: 'none', signals: ['traces'] });
    expect(out.traces!.result.code).toBe(FAILED);
    expect(env.summaries).toHaveLength(1);
    expect(env.summaries[0]).toMatchObject({ status: 400, code: 'otlp_too_many_items' });
    expect(env.buffer.stats().records).toBe(0);
    const q = env.buffer.db.prepare('SELECT reason, path, offset FROM quarantine').all();
    expect(q).toEqual([{ reason: 'otlp_too_many_items', path: 'POST /v1/traces', offset: 0 }]);
  });

  it('a sidecar started from a config with `type: otlp` takes the exporters\' requests, redacted like any source', async () => {
    const tmp = tempDir('sealtrail-otlp-sidecar-');
    const keys = tmp.file('keys');
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'otlp');
    createHmacKeyFile(join(keys, 'hmac.key'));
    const port = await freePort();
    const yaml = [
      'sidecar:',
      '  stream: { name: otlp-e2e }',
      `  data_dir: ${tmp.file('sidecar')}`,
      '  sources:',
      '    - id: otel',
      '      type: otlp',
      `      listen: 127.0.0.1:${port}`,
      '      max_items: 1000',
      `  redaction: { rules: [${join(ROOT, 'config', 'redaction', 'pii-basic.yaml')}] }`,
      `  keys: { signing_key_file: ${join(keys, 's.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }`,
      // nobody listens there: records stay in the buffer, where this test reads them
      `  ship: { url: "http://127.0.0.1:${await freePort()}", backoff_initial: 1s, backoff_max: 5s }`,
      `  telemetry: { listen: "127.0.0.1:${await freePort()}" }`,
    ].join('\n');
    const cfg = parseConfigText(yaml, tmp.file('sealtrail.yaml'));
    expect(cfg.sidecar!.sources[0]).toMatchObject({ type: 'otlp', listen: `127.0.0.1:${port}`, max_items: 1000 });
    const sidecar = await startSidecar(cfg.sidecar!, { logger: createLogger('test', 'silent') });
    try {
      const out = await runExporter({ base: `http://127.0.0.1:${port}`, protocol: 'proto', compression: 'gzip', signals: ['traces', 'logs'] });
      checkTraces(sidecar, out, true);
      checkLogs(sidecar, out);
      expect(records(sidecar).every((r) => r.source === 'otel' && r.stream === sidecar.stream)).toBe(true);
      expect(JSON.stringify(records(sidecar))).not.toContain('jane.doe@example.com');
      const q = sidecar.buffer.db.prepare('SELECT COUNT(*) AS n FROM quarantine').get() as { n: number };
      expect(q.n).toBe(0);
    } finally {
      await sidecar.shutdown(Date.now() + 1000);
      tmp.cleanup();
    }
  });
});
