import net from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/types.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestLine, type LineOutcome } from '../../src/sidecar/ingest.js';
import { loadRuleset, type Ruleset } from '../../src/sidecar/redact/index.js';
import { createEventsHandler, type EventsHandlerOptions, type EventsRequestMeta } from '../../src/sidecar/sources/http-events.js';
import { SidecarMetrics } from '../../src/sidecar/telemetry/metrics.js';
import { startTelemetryServer } from '../../src/sidecar/telemetry/server.js';
import type { HttpLimits } from '../../src/http-limits.js';
import { HMAC_KEY, KEY_ID, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const PII_RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));
const CANARY = 'CANARY-jane.doe@example.com-4111111111111111';
const MAX_BODY = 6 * 1024 * 1024;
const MAX_EVENTS = 100_000;

let ruleset: Ruleset;
const logs: string[] = [];
// Logs the way the sidecar does: places, codes and counts from the hooks.
const logger = pino({ level: 'debug' }, { write: (s: string) => void logs.push(s) });

beforeAll(() => {
  ruleset = loadRuleset([PII_RULES]);
});

afterAll(() => {
  // Nothing any request carried reached a log line, whatever the test.
  expect(logs.join('')).not.toContain('CANARY');
  expect(logs.length).toBeGreaterThan(0);
});

interface Env {
  tmp: TempDir;
  buffer: AuditBuffer;
  url: string;
  close(): Promise<void>;
  /** throw from the sink on its next call(s) */
  failSink: number;
  /** answers of paused(), consumed one per call; then false */
  pausedAnswers: boolean[];
  sinkCalls: number;
}

async function startEnv(overrides: Partial<EventsHandlerOptions> = {}, server: { http?: Partial<HttpLimits> } = {}): Promise<Env> {
  const tmp = tempDir('sealtrail-http-');
  const buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => 'test-stream' });
  const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
  const env = { tmp, buffer, failSink: 0, pausedAnswers: [] as boolean[], sinkCalls: 0 } as Env;
  const handler = createEventsHandler({
    id: 'http',
    maxBodyBytes: MAX_BODY,
    maxEvents: MAX_EVENTS,
    sink: (lines: IngestLine[], meta: EventsRequestMeta): LineOutcome[] => {
      env.sinkCalls++;
      if (env.failSink > 0) {
        env.failSink--;
        throw new Error('database or disk is full');
      }
      return ingest.ingest({ source: 'http', path: '/v1/events', fileKey: meta.requestId, lines }).lines;
    },
    paused: () => env.pausedAnswers.shift() ?? false,
    onError: (err) => logger.error({ source: 'http', err: err.message }, 'http source: commit failed'),
    onResponse: (s) => logger.info({ ...s }, 'http source request'),
    ...overrides,
  });
  const probes = { healthy: () => true, ready: () => true, refresh: () => undefined };
  const t = await startTelemetryServer('127.0.0.1:0', new SidecarMetrics(), probes, {
    events: handler,
    timeoutCheckIntervalMs: 50,
    ...server,
  });
  env.url = t.url;
  env.close = async () => {
    await t.close();
    buffer.close();
    tmp.cleanup();
  };
  return env;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

async function post(env: Env, body: string | Buffer | AsyncIterable<Buffer> | undefined, headers: Record<string, string> = {}, method = 'POST', path = '/v1/events'): Promise<Reply> {
  const r = await request(`${env.url}${path}`, {
    method: method as 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : Readable.from(body) }),
  });
  const text = await r.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, headers: r.headers, text, json };
}

function records(env: Env): Array<AuditRecord & { details?: Record<string, unknown> }> {
  return (env.buffer.db.prepare('SELECT canonical FROM records ORDER BY seq').all() as Array<{ canonical: string }>).map((r) => JSON.parse(r.canonical));
}

function quarantine(env: Env): Array<{ source: string; path: string; file_key: string; offset: number; length: number; reason: string }> {
  return env.buffer.db.prepare('SELECT source, path, file_key, offset, length, reason FROM quarantine ORDER BY id').all() as never;
}

function nothingStored(env: Env): void {
  expect(env.buffer.stats().records).toBe(0);
  expect(env.buffer.quarantineCount()).toBe(0);
  expect(env.buffer.chainCursor().nextSeq).toBe(0);
}

const ev = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ event_type: 'tool_invoked', tool: { name: 'search', arguments: { i } }, ...extra });

/** Raw HTTP on a socket: for what a client library will not do (stall, expect 100-continue). */
function rawClient(env: Env): { socket: net.Socket; received: () => string; closed: Promise<void>; waitFor(s: string): Promise<void> } {
  const { port } = new URL(env.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  let data = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d) => {
    data += d.toString('latin1');
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return {
    socket,
    received: () => data,
    closed,
    waitFor: async (s) => {
      while (!data.includes(s)) {
        await Promise.race([new Promise<void>((r) => waiters.push(r)), closed]);
        if (socket.destroyed && !data.includes(s)) throw new Error(`connection closed before "${s.trim()}"`);
      }
    },
  };
}

describe('POST /v1/events', () => {
  let env: Env;
  beforeEach(async () => {
    env = await startEnv();
  });
  afterEach(async () => {
    await env.close();
  });

  describe('accepted bodies', () => {
    it('stores a single JSON object and answers 202 with its seq after the commit', async () => {
      const r = await post(env, JSON.stringify(ev(1, { actor: { id: 'u1' } })));
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 1, first_seq: 0, last_seq: 0, rejected: [] });
      expect(r.json.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.headers['x-request-id']).toBe(r.json.request_id);
      const recs = records(env);
      expect(recs).toHaveLength(1);
      expect(recs[0]).toMatchObject({ seq: 0, stream: 'test-stream', source: 'http', event_type: 'tool_invoked', actor: { id: 'u1', type: 'user' } });
    });

    it('stores an array in order; a second request continues the sequence', async () => {
      let r = await post(env, JSON.stringify([ev(0), ev(1), ev(2)]));
      expect(r.json).toMatchObject({ accepted: 3, first_seq: 0, last_seq: 2, rejected: [] });
      r = await post(env, JSON.stringify([ev(3), ev(4)]), { 'content-type': 'application/json; charset=utf-8' });
      expect(r.json).toMatchObject({ accepted: 2, first_seq: 3, last_seq: 4 });
      expect(records(env).map((x) => [x.seq, (x.tool?.arguments as { i: number }).i])).toEqual([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
    });

    it('reads NDJSON with blank lines and CRLF (x-ndjson and jsonl)', async () => {
      const body = `${JSON.stringify(ev(0))}\r\n\r\n${JSON.stringify(ev(1))}\n   \n${JSON.stringify(ev(2))}`;
      let r = await post(env, body, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 3, first_seq: 0, last_seq: 2, rejected: [] });
      r = await post(env, `${JSON.stringify(ev(3))}\n`, { 'content-type': 'application/jsonl' });
      expect(r.json).toMatchObject({ accepted: 1, first_seq: 3 });
      expect(records(env).map((x) => (x.tool?.arguments as { i: number }).i)).toEqual([0, 1, 2, 3]);
    });

    it('redacts before storing, as for any source', async () => {
      const r = await post(env, JSON.stringify(ev(0, { actor: { id: 'jane.doe@example.com' } })));
      expect(r.json.accepted).toBe(1);
      const stored = env.buffer.db.prepare('SELECT canonical FROM records').get() as { canonical: string };
      expect(stored.canonical).not.toContain('jane.doe@example.com');
    });

    it('reports per-event failures only Ingest can see, with index and line, and quarantines them', async () => {
      const deep = { event_type: 'deep', d: JSON.parse(`${'['.repeat(80)}${']'.repeat(80)}`) };
      const body = [JSON.stringify(ev(0)), JSON.stringify({ no_event_type: CANARY }), JSON.stringify(deep), JSON.stringify(ev(3))].join('\n');
      const r = await post(env, body, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({
        accepted: 2,
        first_seq: 0,
        last_seq: 1,
        rejected: [
          { index: 1, line: 2, code: 'record_invalid' },
          { index: 2, line: 3, code: 'redact_too_deep' },
        ],
      });
      expect(r.text).not.toContain('CANARY');
      expect(records(env).map((x) => (x.tool?.arguments as { i: number }).i)).toEqual([0, 3]);
      expect(quarantine(env)).toEqual([
        { source: 'http', path: '/v1/events', file_key: r.json.request_id, offset: 1, length: Buffer.byteLength(JSON.stringify({ no_event_type: CANARY })), reason: 'record_invalid' },
        { source: 'http', path: '/v1/events', file_key: r.json.request_id, offset: 2, length: Buffer.byteLength(JSON.stringify(deep)), reason: 'redact_too_deep' },
      ]);
    });

    it('accepts gzip-encoded bodies', async () => {
      const body = gzipSync(Buffer.from([ev(0), ev(1)].map((e) => JSON.stringify(e)).join('\n')));
      const r = await post(env, body, { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 2, first_seq: 0, last_seq: 1 });
    });

    it('answers "100 Continue" only once the request is acceptable', async () => {
      const body = JSON.stringify(ev(7));
      const c = rawClient(env);
      c.socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      await c.waitFor('HTTP/1.1 100 Continue\r\n\r\n');
      expect(env.buffer.stats().records).toBe(0);
      c.socket.write(body);
      await c.waitFor('"accepted":1');
      expect(c.received()).toMatch(/HTTP\/1\.1 202 /);
      c.socket.destroy();
      expect(records(env)).toHaveLength(1);

      const big = rawClient(env);
      big.socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY + 1}\r\nExpect: 100-continue\r\n\r\n`);
      await big.closed;
      expect(big.received()).toMatch(/^HTTP\/1\.1 413 /);
      expect(big.received()).not.toContain('100 Continue');
    });
  });

  describe('202 only after the durable commit', () => {
    it('a sink that throws gets 503 with Retry-After and stores nothing; the retry succeeds', async () => {
      env.failSink = 1;
      const body = JSON.stringify([ev(0), ev(1)]);
      let r = await post(env, body);
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json.error.code).toBe('commit_failed');
      expect(env.sinkCalls).toBe(1);
      nothingStored(env);
      r = await post(env, body);
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 2, first_seq: 0, last_seq: 1 });
      expect(records(env)).toHaveLength(2);
      expect(logs.some((l) => l.includes('commit failed'))).toBe(true);
    });

    it('while the buffer is full: 503 with Retry-After, the body is not read', async () => {
      env.pausedAnswers = [true];
      const r = await post(env, JSON.stringify(ev(0)));
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('buffer_full');
      expect(r.headers['retry-after']).toBe('5');
      expect(env.sinkCalls).toBe(0);
      nothingStored(env);
    });

    it('the buffer filling while a body arrives also gets 503, nothing stored', async () => {
      env.pausedAnswers = [false, true];
      const r = await post(env, JSON.stringify(ev(0)));
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('buffer_full');
      expect(env.sinkCalls).toBe(0);
      nothingStored(env);
      expect((await post(env, JSON.stringify(ev(0)))).status).toBe(202);
    });
  });

  describe('shutdown', () => {
    it('once stopping, requests get 503 shutting_down and nothing is committed, also for a body already arriving', async () => {
      let stopping = false;
      const env2 = await startEnv({ stopping: () => stopping });
      try {
        expect((await post(env2, JSON.stringify(ev(0)))).status).toBe(202);
        // a body that starts before shutdown and ends after it
        const body = (async function* (): AsyncGenerator<Buffer> {
          yield Buffer.from('[');
          stopping = true;
          yield Buffer.from(`${JSON.stringify(ev(1))}]`);
        })();
        const late = await post(env2, body);
        expect(late.status).toBe(503);
        expect(late.json.error.code).toBe('shutting_down');
        const after = await post(env2, JSON.stringify(ev(2)));
        expect(after.status).toBe(503);
        expect(after.json.error.code).toBe('shutting_down');
        expect(records(env2)).toHaveLength(1);
      } finally {
        await env2.close();
      }
    });
  });

  describe('refused requests commit nothing and quote nothing', () => {
    it('400 for malformed JSON, naming the line', async () => {
      const r = await post(env, `[\n${JSON.stringify(ev(0))},\n{"event_type":"x","secret":"${CANARY}",}\n]`);
      expect(r.status).toBe(400);
      expect(r.json.error).toEqual({ code: 'json_invalid', message: 'body is not valid JSON (line 3, event 1)', line: 3, index: 1 });
      expect(r.text).not.toContain('CANARY');
      nothingStored(env);
    });

    it('400 for a malformed NDJSON line even after good lines', async () => {
      const r = await post(env, `${JSON.stringify(ev(0))}\n${JSON.stringify(ev(1))}\n{"event_type":"${CANARY}"\n`, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'json_invalid', line: 3, index: 2 });
      expect(r.text).not.toContain('CANARY');
      nothingStored(env);
    });

    it('400 for an event that is not an object, naming its index', async () => {
      const r = await post(env, JSON.stringify([ev(0), CANARY, ev(2)]));
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'record_not_object', index: 1 });
      expect(r.text).not.toContain('CANARY');
      nothingStored(env);
    });

    it('400 for an empty body, blank body, chunked empty body or empty array', async () => {
      for (const [body, headers] of [
        ['', {}],
        [' \r\n ', {}],
        ['\n\n', { 'content-type': 'application/x-ndjson' }],
        ['[ ]', {}],
      ] as const) {
        const r = await post(env, body, headers);
        expect(r.status).toBe(400);
        expect(r.json.error.code).toBe('body_empty');
      }
      const chunked = await post(env, (async function* () {})());
      expect(chunked.status).toBe(400);
      expect(chunked.json.error.code).toBe('body_empty');
      nothingStored(env);
    });

    it('400 for bytes that are not UTF-8', async () => {
      const body = Buffer.concat([Buffer.from(`${JSON.stringify(ev(0))}\n{"event_type":"`), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`${CANARY}"}\n`)]);
      const r = await post(env, body, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ code: 'invalid_utf8', line: 2 });
      expect(r.text).not.toContain('CANARY');
      nothingStored(env);
    });

    it('413 as soon as Content-Length is over the limit', async () => {
      const r = await post(env, Buffer.alloc(MAX_BODY + 1, 0x20));
      expect(r.status).toBe(413);
      expect(r.json.error.code).toBe('body_too_large');
      nothingStored(env);
    });

    it('413 by Content-Length for a client that sends anyway: answered at once, cut off after the linger allowance', async () => {
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const total = 1024 * chunk.length;
      const body = Readable.from(
        (async function* (): AsyncGenerator<Buffer> {
          for (let i = 0; i < 1024; i++) {
            sent += chunk.length;
            yield chunk;
          }
        })(),
      );
      const r = await request(`${env.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(total) }, body });
      expect(r.statusCode).toBe(413);
      expect(((await r.body.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
      expect(sent).toBeLessThan(total / 2);
      nothingStored(env);
    });

    it('413 for a chunked body that grows past the limit, which stops being read', async () => {
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const endless = async function* (): AsyncGenerator<Buffer> {
        // 64 MiB offered, ten times the limit
        for (let i = 0; i < 1024; i++) {
          sent += chunk.length;
          yield chunk;
        }
      };
      const r = await post(env, endless());
      expect(r.status).toBe(413);
      expect(r.json.error.code).toBe('body_too_large');
      // read up to the limit, then discarded up to the same again (lingering close), then cut off
      expect(sent).toBeLessThan(32 * 1024 * 1024);
      nothingStored(env);
    });

    it('413 for more events than max_events', async () => {
      const body = Array.from({ length: MAX_EVENTS + 1 }, () => '{"event_type":"e"}').join('\n');
      const r = await post(env, body, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(413);
      expect(r.json.error.code).toBe('too_many_events');
      nothingStored(env);
    });

    it('413 for a gzip bomb, without inflating it', async () => {
      // 16 gzip members of 64 MiB of zeros each: 1 GiB once inflated, about 1 MiB on the wire
      const member = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
      const bomb = Buffer.concat(Array.from({ length: 16 }, () => member));
      expect(bomb.length).toBeLessThan(MAX_BODY);
      const r = await post(env, bomb, { 'content-encoding': 'gzip' });
      expect(r.status).toBe(413);
      expect(r.json.error.code).toBe('body_too_large');
      nothingStored(env);
    });

    it('400 for a body that is not gzip although it says so', async () => {
      const r = await post(env, `{"event_type":"${CANARY}"}`, { 'content-encoding': 'gzip' });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('gzip_invalid');
      expect(r.text).not.toContain('CANARY');
      nothingStored(env);
    });

    it('415 for other content types and codings', async () => {
      for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=iso-8859-1']) {
        const r = await post(env, JSON.stringify(ev(0)), { 'content-type': ct });
        expect(r.status).toBe(415);
        expect(r.json.error.code).toBe('content_type_unsupported');
      }
      const none = await request(`${env.url}/v1/events`, { method: 'POST', body: JSON.stringify(ev(0)) });
      expect(none.statusCode).toBe(415);
      await none.body.dump();
      const br = await post(env, JSON.stringify(ev(0)), { 'content-encoding': 'br' });
      expect(br.status).toBe(415);
      expect(br.json.error.code).toBe('content_encoding_unsupported');
      expect(br.headers['accept-encoding']).toBe('gzip');
      nothingStored(env);
    });

    it('405 with Allow for other methods; the telemetry paths are unchanged', async () => {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const r = await post(env, method === 'GET' ? undefined : '{}', {}, method);
        expect(r.status).toBe(405);
        expect(r.headers.allow).toBe('POST');
        expect(r.json.error.code).toBe('method_not_allowed');
      }
      const metricsPost = await post(env, '{}', {}, 'POST', '/metrics');
      expect(metricsPost.status).toBe(405);
      expect(metricsPost.headers.allow).toBe('GET, HEAD');
      const health = await request(`${env.url}/healthz`);
      expect(health.statusCode).toBe(200);
      expect(await health.body.text()).toBe('ok\n');
      const metrics = await request(`${env.url}/metrics`);
      expect(metrics.statusCode).toBe(200);
      await metrics.body.dump();
      nothingStored(env);
    });
  });

  describe('hostile input within the limits', () => {
    it('a 5 MB string in one event: answered, refused as record_too_large (a collector would refuse its batch), nothing stored', async () => {
      const big = 'x'.repeat(5_000_000);
      const r = await post(env, JSON.stringify([ev(0, { blob: big }), ev(1, { blob: 'x'.repeat(1_000_000) })]));
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 1, first_seq: 0, last_seq: 0, rejected: [{ index: 0, line: 1, code: 'record_too_large' }] });
      expect((records(env)[0]!.details!._unmapped as { blob: string }).blob).toHaveLength(1_000_000);
      expect(quarantine(env).map((q) => [q.offset, q.reason])).toEqual([[0, 'record_too_large']]);
    });

    it('nesting far deeper than any ruleset allows is quarantined without being parsed', async () => {
      const n = 1_000_000;
      const body = `[{"event_type":"deep","d":${'['.repeat(n)}${']'.repeat(n)}},${JSON.stringify(ev(1))}]`;
      const r = await post(env, body);
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: 1, first_seq: 0, last_seq: 0, rejected: [{ index: 0, line: 1, code: 'redact_too_deep' }] });
      expect(quarantine(env).map((q) => [q.offset, q.reason])).toEqual([[0, 'redact_too_deep']]);
    });

    it('lone surrogate escapes are stored as U+FFFD', async () => {
      const r = await post(env, '[{"event_type":"s","note":"a\\ud800b","\\udc00k":"v"}]');
      expect(r.json).toMatchObject({ accepted: 1, rejected: [] });
      const stored = env.buffer.db.prepare('SELECT canonical FROM records').get() as { canonical: string };
      expect(stored.canonical.isWellFormed()).toBe(true);
      const details = records(env)[0]!.details!._unmapped as Record<string, string>;
      expect(details.note).toBe('a\ufffdb');
      expect(details['\ufffdk']).toBe('v');
      expect(records(env)[0]!.redaction.repaired).toEqual({ lone_surrogates: 2 });
    });

    it('"__proto__" keys are kept as data and pollute nothing', async () => {
      const r = await post(env, '[{"event_type":"p","__proto__":{"polluted":true},"details":{"__proto__":{"x":1}}}]');
      expect(r.json).toMatchObject({ accepted: 1, rejected: [] });
      const rec = records(env)[0]!;
      expect(Object.hasOwn(rec.details!, '__proto__')).toBe(true);
      expect(Object.hasOwn(rec.details!._unmapped as object, '__proto__')).toBe(true);
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    });

    it('100,000 tiny events in one request', async () => {
      const body = Array.from({ length: MAX_EVENTS }, (_, i) => `{"event_type":"e","n":${i}}`).join('\n');
      const r = await post(env, body, { 'content-type': 'application/x-ndjson' });
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ accepted: MAX_EVENTS, first_seq: 0, last_seq: MAX_EVENTS - 1, rejected: [] });
      expect(env.buffer.stats().records).toBe(MAX_EVENTS);
    });
  });
});

describe('connection limits', () => {
  it('a client that stalls mid-body is cut off by the request timeout, nothing stored', async () => {
    const env = await startEnv({}, { http: { request_timeout: 500, header_timeout: 200 } });
    try {
      const c = rawClient(env);
      c.socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event_type":"${CANARY}`);
      await c.closed;
      expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
      const slowHeaders = rawClient(env);
      slowHeaders.socket.write('POST /v1/events HTTP/1.1\r\nHost: x\r\n');
      await slowHeaders.closed;
      expect(slowHeaders.received()).toMatch(/^HTTP\/1\.1 408 /);
      expect(env.sinkCalls).toBe(0);
      nothingStored(env);
    } finally {
      await env.close();
    }
  });

  it('more requests in flight than allowed get 503 busy; the first one still completes', async () => {
    const env = await startEnv({ maxInFlight: 1 });
    try {
      const body = JSON.stringify(ev(0));
      const c = rawClient(env);
      c.socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`);
      // the held request is being read once the server answers others with "busy"
      let busy: Reply | undefined;
      for (let i = 0; i < 100 && !busy; i++) {
        const r = await post(env, body);
        if (r.status === 503) busy = r;
        else await new Promise((res) => setTimeout(res, 10));
      }
      expect(busy?.json.error.code).toBe('busy');
      expect(busy?.headers['retry-after']).toBe('1');
      const before = env.buffer.stats().records;
      c.socket.write(body.slice(5));
      await c.waitFor('"accepted":1');
      expect(env.buffer.stats().records).toBe(before + 1);
      c.socket.destroy();
    } finally {
      await env.close();
    }
  });
});
