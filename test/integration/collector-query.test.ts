import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';

const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

interface Item {
  stream: string;
  seq: number;
  record: RecordFields;
}

describe('collector GET /v1/audit', () => {
  let c: TestCollector;
  /** every record we sent, as the parsed record */
  const sent: RecordFields[] = [];

  beforeAll(async () => {
    const a = new BatchBuilder({ stream: 'q-a', baseTime: BASE });
    const b = new BatchBuilder({ stream: 'q-b', baseTime: BASE });
    c = await startTestCollector({
      streams: [
        { match: 'q-a', vkey: a.vkey },
        { match: 'q-b', vkey: b.vkey },
      ],
    });
    // Varied index fields; times repeat within a stream (every 10 seqs) and
    // across streams, so ordering ties are broken by stream, then seq.
    const fields = (stream: string) => (seq: number): RecordFields => ({
      time: iso(BASE + Math.floor(seq / 10) * 1000),
      tenant: seq % 2 === 0 ? 'acme' : 'globex',
      actor: { id: `user-${seq % 3}`, type: 'user' },
      event_type: seq % 5 === 0 ? 'policy_violation' : 'tool_invoked',
      tool: { name: seq % 4 === 0 ? 'shell' : 'search' },
      outcome: seq % 7 === 0 ? 'denied' : 'success',
      model: { provider: 'x', name: seq % 2 === 0 ? 'model-a' : 'model-b' },
      trace_id: `trace-${stream}-${Math.floor(seq / 100)}`,
      session_id: `session-${seq % 6}`,
    });
    for (const [builder, total] of [
      [a, 1300],
      [b, 1200],
    ] as const) {
      while (builder.seq < total) {
        const batch = builder.next(Math.min(500, total - builder.seq), { fields: fields(builder.stream) });
        const res = await postJson(c.url, batch);
        expect(res.status).toBe(200);
        for (const r of batch.records) sent.push(JSON.parse(r.canonical));
      }
    }
  });
  afterAll(async () => {
    await c.close();
  });

  const sortKey = (r: RecordFields) => `${r.time as string}|${r.stream as string}|${String(r.seq).padStart(8, '0')}`;
  const expected = (pred: (r: any) => boolean) =>
    sent.filter(pred).sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : 1)).map((r) => `${r.stream}/${r.seq}`);

  async function all(query: string): Promise<Item[]> {
    const out: Item[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const sep = query ? '&' : '';
      const res = await getJson(c.url, `/v1/audit?${query}${sep}limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, res.text).toBe(200);
      out.push(...(res.body.items as Item[]));
      cursor = res.body.next_cursor;
      if (cursor === null) return out;
    }
    throw new Error('pagination did not end');
  }
  const ids = (items: Item[]) => items.map((i) => `${i.stream}/${i.seq}`);

  it('pages through 2,500 records with limit 1000, each exactly once, in order', async () => {
    const pages: number[] = [];
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await getJson(c.url, `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      pages.push(res.body.items.length);
      seen.push(...ids(res.body.items));
      cursor = res.body.next_cursor;
    } while (cursor !== null);
    expect(pages).toEqual([1000, 1000, 500]);
    expect(new Set(seen).size).toBe(2500);
    expect(seen).toEqual(expected(() => true));
  });

  it('defaults to 100 items', async () => {
    const res = await getJson(c.url, '/v1/audit');
    expect(res.body.items.length).toBe(100);
    expect(typeof res.body.next_cursor).toBe('string');
  });

  it.each([
    ['tenant=globex', (r: any) => r.tenant === 'globex'],
    ['actor=user-2', (r: any) => r.actor.id === 'user-2'],
    ['event_type=policy_violation', (r: any) => r.event_type === 'policy_violation'],
    ['tool=shell', (r: any) => r.tool.name === 'shell'],
    ['outcome=denied', (r: any) => r.outcome === 'denied'],
    ['model=model-a', (r: any) => r.model.name === 'model-a'],
    ['trace_id=trace-q-b-3', (r: any) => r.trace_id === 'trace-q-b-3'],
    ['session_id=session-5', (r: any) => r.session_id === 'session-5'],
    ['stream=q-b', (r: any) => r.stream === 'q-b'],
    ['stream=q-a&tenant=acme&outcome=denied', (r: any) => r.stream === 'q-a' && r.tenant === 'acme' && r.outcome === 'denied'],
  ])('filters by %s', async (query, pred) => {
    const got = ids(await all(query));
    const want = expected(pred);
    expect(want.length).toBeGreaterThan(0);
    expect(got).toEqual(want);
  });

  it('filters by time: from inclusive, to exclusive, any offset', async () => {
    const from = BASE + 5000;
    const to = BASE + 8000;
    const want = expected((r) => Date.parse(r.time) >= from && Date.parse(r.time) < to);
    expect(want.length).toBe(60);
    expect(ids(await all(`from=${iso(from)}&to=${iso(to)}`))).toEqual(want);
    // the same instants written with an offset
    const plus1 = (ms: number) => iso(ms + 3600_000).replace('Z', '+01:00');
    expect(ids(await all(`from=${encodeURIComponent(plus1(from))}&to=${encodeURIComponent(plus1(to))}`))).toEqual(want);
    expect(ids(await all(`from=${iso(BASE + 1000 * 1000)}`))).toEqual([]);
  });

  it('returns the canonical record with its proof material', async () => {
    const res = await getJson(c.url, '/v1/audit?stream=q-a&limit=1');
    const item = res.body.items[0];
    expect(Object.keys(item).sort()).toEqual(['batch', 'key_id', 'leaf_hash', 'mac', 'record', 'seq', 'stream']);
    expect(item.record).toEqual(sent.find((r) => r.stream === 'q-a' && r.seq === 0));
    expect(item.leaf_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=-1', 'limit'],
    ['from=2026-03-01', 'from'],
    ['from=2026-02-30T00:00:00Z', 'from'],
    ['to=yesterday', 'to'],
    ['colour=red', 'colour'],
    ['tenant=a&tenant=b', 'tenant'],
    ['tenant=', 'tenant'],
    ['cursor=abc', 'cursor'],
  ])('answers 400 naming the parameter for %s', async (query, name) => {
    const res = await getJson(c.url, `/v1/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('query_invalid');
    expect(res.body.error.message).toContain(`"${name}"`);
  });

  it('refuses tampered cursors and cursors of another query', async () => {
    const first = await getJson(c.url, '/v1/audit?limit=10&tenant=acme');
    const cursor = first.body.next_cursor as string;
    const [payload, tag] = cursor.split('.') as [string, string];
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...decoded, q: decoded.q + 5 })).toString('base64url');
    const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    for (const bad of [`${forged}.${tag}`, `${payload}.${flip(tag)}`, `${flip(payload)}.${tag}`, payload, 'x'.repeat(5000), `${payload}..${tag}`]) {
      const res = await getJson(c.url, `/v1/audit?limit=10&tenant=acme&cursor=${encodeURIComponent(bad)}`);
      expect(res.status, bad.slice(0, 40)).toBe(400);
      expect(res.body.error.message).toContain('"cursor"');
    }
    const other = await getJson(c.url, `/v1/audit?limit=10&tenant=globex&cursor=${cursor}`);
    expect(other.status).toBe(400);
    const ok = await getJson(c.url, `/v1/audit?limit=10&tenant=acme&cursor=${cursor}`);
    expect(ok.status).toBe(200);
  });

  it('treats SQL injection strings as plain values', async () => {
    const hostile = [
      "' OR 1=1 --",
      "x'; DROP TABLE records; --",
      '" OR ""="',
      'acme\' UNION SELECT * FROM batches --',
      '%',
      '_',
      '\\',
      'acme\u0000',
    ];
    for (const h of hostile) {
      for (const p of ['tenant', 'actor', 'stream', 'tool', 'trace_id']) {
        const res = await getJson(c.url, `/v1/audit?${p}=${encodeURIComponent(h)}`);
        expect(res.status, `${p}=${h}`).toBe(200);
        expect(res.body.items).toEqual([]);
      }
    }
    expect((await getJson(c.url, '/v1/audit?limit=1000')).body.items.length).toBe(1000);
  });

  describe('authentication', () => {
    const call = async (authorization?: string) => {
      const headers: Record<string, string> = {};
      if (authorization !== undefined) headers.authorization = authorization;
      const res = await request(`${c.url}/v1/audit?limit=1`, { headers });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    };

    it('401 without credentials', async () => {
      const res = await call();
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(res.text).error.code).toBe('unauthorized');
      expect((await call(`Basic ${Buffer.from('a:b').toString('base64')}`)).status).toBe(401);
      expect((await call('Bearer')).status).toBe(401);
      expect((await call('Bearer ')).status).toBe(401);
    });

    it('403 for wrong, short, prefix and very long tokens', async () => {
      for (const t of ['wrong', 'a', ADMIN_TOKEN.slice(0, -1), `${ADMIN_TOKEN}x`, 'z'.repeat(10_000)]) {
        const res = await call(`Bearer ${t}`);
        expect(res.status, t.slice(0, 20)).toBe(403);
        expect(JSON.parse(res.text).error.code).toBe('forbidden');
      }
      // beyond Node's header size limit the server refuses before routing
      const huge = await call(`Bearer ${'z'.repeat(100_000)}`);
      expect(huge.status).toBeGreaterThanOrEqual(400);
      expect(huge.status).toBeLessThan(500);
    });

    it('accepts the token case-insensitively on the scheme only', async () => {
      expect((await call(`bearer ${ADMIN_TOKEN}`)).status).toBe(200);
      expect((await call(`Bearer ${ADMIN_TOKEN.toUpperCase()}`)).status).toBe(403);
    });

    it('guards every admin route', async () => {
      for (const path of ['/v1/audit', '/v1/streams', '/v1/streams/q-a/checkpoints', '/v1/streams/q-a/records']) {
        expect((await getJson(c.url, path, null)).status, path).toBe(401);
        expect((await getJson(c.url, path, 'nope')).status, path).toBe(403);
        expect((await getJson(c.url, path)).status, path).toBe(200);
      }
      expect((await getJson(c.url, '/healthz', null)).status).toBe(200);
    });

    it('never logs tokens or filter values', async () => {
      await getJson(c.url, '/v1/audit?actor=secret-actor-id', 'wrong-token-zzz');
      await getJson(c.url, '/v1/audit?actor=secret-actor-id');
      const text = c.logText();
      expect(text).not.toContain(ADMIN_TOKEN);
      expect(text).not.toContain('wrong-token-zzz');
      expect(text).not.toContain('secret-actor-id');
      expect(text).not.toContain('query 1'); // record content
    });
  });

  it('serves stream records and checkpoints with strict parameters', async () => {
    const recs = await getJson(c.url, '/v1/streams/q-b/records?from_seq=1190&limit=100');
    expect(recs.body.records.map((r: any) => r.seq)).toEqual([...Array(10).keys()].map((i) => 1190 + i));
    expect(recs.body.next_from_seq).toBeNull();
    expect((await getJson(c.url, '/v1/streams/q-b/records?from_seq=x')).status).toBe(400);
    expect((await getJson(c.url, '/v1/streams/q-b/records?limit=10001')).status).toBe(400);
    expect((await getJson(c.url, '/v1/streams/q-b/records?seq=1')).status).toBe(400);
    expect((await getJson(c.url, '/v1/streams/nope/records')).status).toBe(404);
    expect((await getJson(c.url, `/v1/streams/${encodeURIComponent('a b')}/records`)).status).toBe(400);
    const cps = await getJson(c.url, '/v1/streams/q-a/checkpoints?from_batch=1&limit=1');
    expect(cps.body.checkpoints.map((x: any) => [x.batch, x.tree_size])).toEqual([[1, 1000]]);
    expect(cps.body.next_from_batch).toBe(2);
    expect((await getJson(c.url, '/v1/streams/nope/checkpoints')).status).toBe(404);
    expect((await getJson(c.url, '/v1/nothing')).body.error.code).toBe('not_found');
  });
});
