import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SQLITE_MIGRATIONS } from '../../src/collector/store/sqlite-migrations.js';
import { timeKey } from '../../src/core/time-key.js';
import { migrate } from '../../src/sqlite/open.js';
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

describe('collector GET /v1/audit: agent, resource, approval, data_classification, order', () => {
  let c: TestCollector;
  const sent: RecordFields[] = [];

  beforeAll(async () => {
    const a = new BatchBuilder({ stream: 'o-a', baseTime: BASE });
    const b = new BatchBuilder({ stream: 'o-b', baseTime: BASE });
    c = await startTestCollector({
      streams: [
        { match: 'o-a', vkey: a.vkey },
        { match: 'o-b', vkey: b.vkey },
      ],
    });
    const fields = (seq: number): RecordFields => {
      const f: RecordFields = { time: iso(BASE + Math.floor(seq / 5) * 1000) };
      if (seq % 3 !== 0) f.agent = { id: `agent-${seq % 2}`, name: 'n' };
      if (seq % 4 !== 0) f.resource = { type: seq % 2 ? 'patient' : 'file', id: `res-${seq % 5}` };
      if (seq % 5 !== 0) f.approval = { status: seq % 2 ? 'granted' : 'denied', approver: 'boss' };
      if (seq % 2 === 0) f.data_classification = seq % 4 ? 'phi' : 'public';
      if (seq === 1) f.agent = { id: 'agent\u0000nul' };
      return f;
    };
    for (const [builder, total] of [
      [a, 230],
      [b, 170],
    ] as const) {
      while (builder.seq < total) {
        const batch = builder.next(Math.min(100, total - builder.seq), { fields });
        expect((await postJson(c.url, batch)).status).toBe(200);
        for (const r of batch.records) sent.push(JSON.parse(r.canonical));
      }
    }
  });
  afterAll(async () => {
    await c.close();
  });

  const sortKey = (r: RecordFields) => `${r.time as string}|${r.stream as string}|${String(r.seq).padStart(8, '0')}`;
  const expected = (pred: (r: any) => boolean, order: 'asc' | 'desc' = 'asc') => {
    const out = sent.filter(pred).sort((x, y) => (sortKey(x) < sortKey(y) ? -1 : 1)).map((r) => `${r.stream}/${r.seq}`);
    return order === 'desc' ? out.reverse() : out;
  };
  const ids = (items: Item[]) => items.map((i) => `${i.stream}/${i.seq}`);

  async function all(query: string, limit = 37): Promise<Item[]> {
    const out: Item[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 1000; page++) {
      const res = await getJson(c.url, `/v1/audit?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, res.text).toBe(200);
      out.push(...(res.body.items as Item[]));
      cursor = res.body.next_cursor;
      if (cursor === null) return out;
    }
    throw new Error('pagination did not end');
  }

  it.each([
    ['agent=agent-1', (r: any) => r.agent?.id === 'agent-1'],
    ['resource=res-3', (r: any) => r.resource?.id === 'res-3'],
    ['resource_type=patient', (r: any) => r.resource?.type === 'patient'],
    ['approval=denied', (r: any) => r.approval?.status === 'denied'],
    ['data_classification=phi', (r: any) => r.data_classification === 'phi'],
    [
      'agent=agent-0&resource_type=file&approval=denied&data_classification=phi',
      (r: any) => r.agent?.id === 'agent-0' && r.resource?.type === 'file' && r.approval?.status === 'denied' && r.data_classification === 'phi',
    ],
    ['stream=o-b&approval=granted', (r: any) => r.stream === 'o-b' && r.approval?.status === 'granted'],
  ])('filters by %s in both orders', async (query, pred) => {
    const asc = expected(pred);
    expect(asc.length).toBeGreaterThan(3);
    expect(ids(await all(query))).toEqual(asc);
    expect(ids(await all(`${query}&order=asc`))).toEqual(asc);
    expect(ids(await all(`${query}&order=desc`))).toEqual(expected(pred, 'desc'));
  });

  it('pages every record newest first with order=desc, each exactly once', async () => {
    const got = ids(await all('order=desc', 1000));
    expect(got).toHaveLength(400);
    expect(got).toEqual(expected(() => true, 'desc'));
    const first = await getJson(c.url, '/v1/audit?order=desc&limit=2');
    expect(ids(first.body.items)).toEqual(expected(() => true, 'desc').slice(0, 2));
  });

  it('binds a cursor to its order: replaying it with the other order is a 400', async () => {
    const asc = await getJson(c.url, '/v1/audit?agent=agent-1&limit=5');
    const desc = await getJson(c.url, '/v1/audit?agent=agent-1&limit=5&order=desc');
    const ac = asc.body.next_cursor as string;
    const dc = desc.body.next_cursor as string;
    for (const [q, cur] of [
      ['agent=agent-1&order=desc', ac],
      ['agent=agent-1', dc],
      ['agent=agent-1&order=asc', dc],
      ['agent=agent-2&order=desc', dc],
    ] as const) {
      const res = await getJson(c.url, `/v1/audit?${q}&limit=5&cursor=${cur}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.message).toContain('"cursor"');
    }
    // Omitting order and order=asc are the same query.
    expect((await getJson(c.url, `/v1/audit?agent=agent-1&order=asc&limit=5&cursor=${ac}`)).status).toBe(200);
    const next = await getJson(c.url, `/v1/audit?agent=agent-1&order=desc&limit=5&cursor=${dc}`);
    expect(ids(next.body.items)).toEqual(expected((r) => r.agent?.id === 'agent-1', 'desc').slice(5, 10));
  });

  it.each([
    ['order', 'order=sideways'],
    ['order', 'order=DESC'],
    ['order', 'order=asc&order=desc'],
    ['order', 'order='],
    ['agent', 'agent='],
    ['resource', 'resource=a&resource=b'],
    ['approval', `approval=${'x'.repeat(1025)}`],
    ['resource_id', 'resource_id=x'],
    ['classification', 'classification=phi'],
  ])('answers 400 naming the parameter %s', async (name, query) => {
    const res = await getJson(c.url, `/v1/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('query_invalid');
    expect(res.body.error.message).toContain(name);
  });

  it('treats values that cannot be indexed (NUL, over 1024 bytes) as matching nothing, not as errors', async () => {
    for (const v of ['agent\u0000nul', '\u0000', 'é'.repeat(1000), 'x'.repeat(1024), "' OR 1=1 --"]) {
      for (const p of ['agent', 'resource', 'resource_type', 'approval', 'data_classification']) {
        const res = await getJson(c.url, `/v1/audit?${p}=${encodeURIComponent(v)}&order=desc`);
        expect(res.status, `${p}=${JSON.stringify(v).slice(0, 30)}`).toBe(200);
        expect(res.body.items).toEqual([]);
      }
    }
  });
});

describe('collector store written before the new filters existed (SQLite schema version 1)', () => {
  it('backfills agent, resource, approval and data_classification from the stored records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-v1-'));
    const path = join(dir, 'audit.db');
    const b = new BatchBuilder({ stream: 'v1-a', baseTime: BASE });
    const fields = (seq: number): RecordFields => ({
      agent: seq === 2 ? { id: 'has\u0000nul' } : seq === 3 ? { id: 42 } : { id: `agent-${seq % 2}` },
      resource: { type: 'patient', id: seq === 4 ? 'é'.repeat(600) : `r-${seq}` },
      approval: { status: 'granted' },
      data_classification: seq % 2 ? 'phi' : 'public',
    });
    const batch = b.next(8, { fields });
    // Written the way a build of schema version 1 wrote it.
    const db = new Database(path);
    migrate(db, [SQLITE_MIGRATIONS[0]!]);
    const ins = db.prepare(
      `INSERT INTO records (stream, seq, batch, id, time, time_key, received_at, tenant, actor_id, event_type, tool, outcome,
         model, trace_id, session_id, canonical, leaf, mac, key_id)
       VALUES (?, ?, 0, NULL, ?, ?, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, ?)`,
    );
    for (const r of batch.records) {
      const rec = JSON.parse(r.canonical);
      ins.run('v1-a', r.seq, rec.time, timeKey(rec.time)!, r.canonical, Buffer.alloc(32), r.mac, r.key_id);
    }
    db.close();

    const c = await startTestCollector({ streams: [{ match: 'v1-a', vkey: b.vkey }] }, path);
    try {
      const seqs = async (q: string) => ((await getJson(c.url, `/v1/audit?${q}`)).body.items as Item[]).map((i) => i.seq);
      expect(await seqs('agent=agent-0')).toEqual([0, 4, 6]);
      expect(await seqs('agent=agent-1')).toEqual([1, 5, 7]);
      expect(await seqs('agent=42')).toEqual([]);
      expect(await seqs('resource=r-5')).toEqual([5]);
      expect(await seqs('resource_type=patient')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(await seqs('approval=granted&data_classification=phi')).toEqual([1, 3, 5, 7]);
      expect(await seqs('data_classification=public&order=desc')).toEqual([6, 4, 2, 0]);
      expect(await seqs(`resource=${encodeURIComponent('é'.repeat(600))}`)).toEqual([]);
      // The history stayed append-only: the migration put its trigger back.
      const check = new Database(path);
      try {
        expect(() => check.exec("UPDATE records SET agent_id = 'x'")).toThrow(/append-only/);
        expect(check.prepare('SELECT agent_id FROM records WHERE seq = 2').get()).toEqual({ agent_id: null });
        expect(check.prepare('SELECT max(version) AS v FROM schema_migrations').get()).toEqual({ v: 3 });
      } finally {
        check.close();
      }
    } finally {
      await c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
