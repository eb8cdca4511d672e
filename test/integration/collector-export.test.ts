import { createHash } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import { openNullStore } from '../../src/collector/store/null.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { leafHash } from '../../src/core/merkle.js';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, memoryLogger, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';

const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
const ACME = 'reader-acme-token-0123456789abcdef';
const BASE = Date.UTC(2026, 5, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
/** More than two pages of the route's 1000 rows. */
const A_BATCHES = [700, 600, 300];
const B_BATCHES = [500, 350];

async function get(url: string, path: string, token: string | null = ADMIN_TOKEN) {
  const res = await request(`${url}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, body };
}

function lines(text: string): string[] {
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

describe('GET /v1/export', () => {
  let c: TestCollector;
  /** canonical text of every record sent, keyed "stream/seq" */
  const sent = new Map<string, string>();
  /** every record sent in (time, stream, seq) order */
  let ordered: { stream: string; seq: number; time: number; canonical: string; tenant: string; event: string }[] = [];

  beforeAll(async () => {
    const a = new BatchBuilder({ stream: 'x-a', baseTime: BASE });
    const b = new BatchBuilder({ stream: 'x-b', baseTime: BASE });
    c = await startTestCollector({
      streams: [
        { match: 'x-a', vkey: a.vkey },
        { match: 'x-b', vkey: b.vkey },
      ],
      tokens: [{ id: 'acme', sha256: sha(ACME), role: 'reader', tenant: 'acme' }],
    });
    const fields = (seq: number): RecordFields => ({
      time: iso(BASE + Math.floor(seq / 3) * 1000),
      tenant: seq % 2 === 0 ? 'acme' : 'globex',
      event_type: seq % 5 === 0 ? 'tool_denied' : 'tool_invoked',
    });
    for (const [builder, sizes] of [
      [a, A_BATCHES],
      [b, B_BATCHES],
    ] as const) {
      for (const n of sizes) {
        const batch = builder.next(n, { fields });
        expect((await postJson(c.url, batch)).status).toBe(200);
        for (const r of batch.records) {
          const rec = JSON.parse(r.canonical);
          sent.set(`${builder.stream}/${r.seq}`, r.canonical);
          ordered.push({
            stream: builder.stream,
            seq: r.seq,
            time: Date.parse(rec.time),
            canonical: r.canonical,
            tenant: rec.tenant,
            event: rec.event_type,
          });
        }
      }
    }
    ordered = ordered.sort((x, y) =>
      x.time !== y.time ? x.time - y.time : x.stream !== y.stream ? (x.stream < y.stream ? -1 : 1) : x.seq - y.seq,
    );
  });
  afterAll(async () => {
    await c.close();
  });

  it('jsonl: every stored canonical record, one per line, in query order, across pages, chunked', async () => {
    const res = await get(c.url, '/v1/export');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const got = lines(res.text);
    expect(got).toHaveLength(ordered.length);
    expect(got).toEqual(ordered.map((r) => r.canonical));
    const explicit = await get(c.url, '/v1/export?format=jsonl&order=asc');
    expect(explicit.text).toBe(res.text);
    const desc = await get(c.url, '/v1/export?order=desc');
    expect(lines(desc.text)).toEqual(ordered.map((r) => r.canonical).reverse());
  });

  it('filters as on /v1/audit: stream, tenant, event_type, from/to', async () => {
    const check = async (q: string, pred: (r: (typeof ordered)[number]) => boolean) => {
      const res = await get(c.url, `/v1/export?${q}`);
      expect(res.status, q).toBe(200);
      const want = ordered.filter(pred).map((r) => r.canonical);
      expect(want.length, q).toBeGreaterThan(0);
      expect(lines(res.text), q).toEqual(want);
    };
    await check('stream=x-b', (r) => r.stream === 'x-b');
    await check('tenant=globex&event_type=tool_denied', (r) => r.tenant === 'globex' && r.event === 'tool_denied');
    const from = BASE + 100_000;
    const to = BASE + 200_000;
    await check(`from=${iso(from)}&to=${iso(to)}`, (r) => r.time >= from && r.time < to);
    const none = await get(c.url, '/v1/export?tenant=nobody');
    expect(none.status).toBe(200);
    expect(none.text).toBe('');
  });

  it('cloudevents: CloudEvents 1.0 envelopes with the canonical record as data', async () => {
    const res = await get(c.url, '/v1/export?format=cloudevents&stream=x-a&event_type=tool_denied');
    expect(res.status).toBe(200);
    const evs = lines(res.text);
    const want = ordered.filter((r) => r.stream === 'x-a' && r.event === 'tool_denied');
    expect(evs).toHaveLength(want.length);
    for (const [i, line] of evs.entries()) {
      const ev = JSON.parse(line);
      const r = want[i]!;
      const rec = JSON.parse(r.canonical);
      expect(ev).toMatchObject({
        specversion: '1.0',
        id: rec.id,
        source: 'sealtrail/x-a',
        type: 'io.sealtrail.audit.tool_denied',
        time: rec.time,
        datacontenttype: 'application/json',
        sealtrailseq: r.seq,
        sealtrailleaf: leafHash(Buffer.from(r.canonical)).toString('hex'),
      });
      expect(ev.data).toEqual(rec);
      // data is spliced in byte for byte
      expect(line.endsWith(`"data":${r.canonical}}`)).toBe(true);
    }
  });

  it('a reader gets its own tenant only; 403 for another tenant; 401 without a token', async () => {
    const res = await get(c.url, '/v1/export', ACME);
    expect(res.status).toBe(200);
    expect(lines(res.text)).toEqual(ordered.filter((r) => r.tenant === 'acme').map((r) => r.canonical));
    const other = await get(c.url, '/v1/export?tenant=globex', ACME);
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('tenant_forbidden');
    expect((await get(c.url, '/v1/export', null)).status).toBe(401);
  });

  it('400 for unknown or bad parameters', async () => {
    for (const q of ['format=csv', 'limit=10', 'cursor=abc', 'proof=true', 'from=yesterday', 'order=up', 'stream=a&stream=b', 'bogus=1']) {
      const res = await get(c.url, `/v1/export?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.code, q).toBe('query_invalid');
    }
    const wide = await get(c.url, `/v1/export?from=${iso(BASE)}&to=${iso(BASE + 400 * 86_400_000)}`);
    expect(wide.status).toBe(400);
    expect(wide.body.error.code).toBe('range_too_large');
  });

  it('a client that hangs up mid-stream does not hurt the collector', async () => {
    // node:http rather than undici: destroying the request closes the socket at once.
    await new Promise<void>((resolve, reject) => {
      const req = httpGet(`${c.url}/v1/export`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', (chunk: Buffer) => {
          expect(chunk.length).toBeGreaterThan(0);
          req.destroy();
          resolve();
        });
      });
      req.on('error', reject);
    });
    const again = await get(c.url, '/v1/export?stream=x-b');
    expect(lines(again.text)).toHaveLength(B_BATCHES.reduce((n, x) => n + x, 0));
  });
});

describe('GET /v1/export on other stores', () => {
  it('null store: 200 and empty', async () => {
    const { logger } = memoryLogger();
    const store = openNullStore();
    const running = await startCollector(
      { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1 << 20, admin_tokens: [ADMIN_TOKEN], streams: [], trust_on_first_use: false, hmac_keys: [] },
      store,
      logger,
    );
    try {
      const res = await get(running.url, '/v1/export?format=cloudevents');
      expect(res.status).toBe(200);
      expect(res.text).toBe('');
    } finally {
      await running.close();
      await store.close();
    }
  });

  it('a store that fails on the first page answers 503, not a truncated 200', async () => {
    const { logger } = memoryLogger();
    const inner = openNullStore();
    const timeout = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    const store = new Proxy(inner, {
      get: (t, k) => (k === 'queryRecords' ? async () => Promise.reject(timeout) : Reflect.get(t, k)),
    }) as AuditStore;
    const opts: CollectorOptions = { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1 << 20, admin_tokens: [ADMIN_TOKEN], streams: [], trust_on_first_use: false, hmac_keys: [] };
    const running = await startCollector(opts, store, logger);
    try {
      const res = await get(running.url, '/v1/export');
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('store_unavailable');
    } finally {
      await running.close();
      await inner.close();
    }
  });

  it('a store failing after the first page cuts the connection: the export is never taken for complete', async () => {
    const { logger } = memoryLogger();
    const inner = openNullStore();
    let calls = 0;
    const row = (i: number) => ({
      stream: 's',
      seq: i,
      batch: 0,
      timeKey: i,
      canonical: `{"seq":${i},"stream":"s"}`,
      leaf: Buffer.alloc(32),
      mac: '00',
      keyId: 'k1',
    });
    const store = new Proxy(inner, {
      get: (t, k) =>
        k === 'queryRecords'
          ? async () => {
              calls++;
              if (calls === 1) return Array.from({ length: 1000 }, (_, i) => row(i));
              throw new Error('disk on fire');
            }
          : Reflect.get(t, k),
    }) as AuditStore;
    const opts: CollectorOptions = { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1 << 20, admin_tokens: [ADMIN_TOKEN], streams: [], trust_on_first_use: false, hmac_keys: [] };
    const running = await startCollector(opts, store, logger);
    try {
      const res = await request(`${running.url}/v1/export`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.statusCode).toBe(200);
      await expect(res.body.text()).rejects.toThrow();
      expect(calls).toBe(2);
    } finally {
      await running.close();
      await inner.close();
    }
  });
});
