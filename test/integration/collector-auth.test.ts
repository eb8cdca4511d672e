import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startCollector } from '../../src/collector/app.js';
import { AdminAuth } from '../../src/collector/auth.js';
import { collectorOptionsFromConfig } from '../../src/collector/from-config.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import { DEFAULT_RATE_LIMITS } from '../../src/collector/rate-limit.js';
import { openNullStore } from '../../src/collector/store/null.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, memoryLogger, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { codeOf } from '../helpers/errors.js';

const sha = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
const HASHED_ADMIN = 'hashed-admin-token-0123456789abcdef';
const ACME = 'reader-acme-token-0123456789abcdef';
const GLOBEX = 'reader-globex-token-0123456789abcd';
const TENANTS = ['acme', 'globex', 'initech'];
const BASE = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

const TOKENS: CollectorOptions['tokens'] = [
  { id: 'ops', sha256: sha(HASHED_ADMIN).toUpperCase(), role: 'admin' },
  { id: 'acme-dash', sha256: sha(ACME), role: 'reader', tenant: 'acme' },
  { id: 'globex-dash', sha256: sha(GLOBEX), role: 'reader', tenant: 'globex' },
];

async function get(url: string, path: string, authorization?: string) {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await request(`${url}${path}`, { headers });
  const text = await res.body.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body, text };
}

/** Stores 30 records of stream t-1, tenants in turn acme, globex, initech. */
async function seed(c: TestCollector, b: BatchBuilder): Promise<void> {
  const fields = (seq: number): RecordFields => ({ tenant: TENANTS[seq % 3]!, time: iso(BASE + seq * 60_000) });
  for (let i = 0; i < 3; i++) expect((await postJson(c.url, b.next(10, { fields }))).status).toBe(200);
}

describe('collector access control', () => {
  let c: TestCollector;

  beforeAll(async () => {
    const b = new BatchBuilder({ stream: 't-1' });
    c = await startTestCollector({ streams: [{ match: 't-*', vkey: b.vkey }], tokens: TOKENS });
    await seed(c, b);
  });
  afterAll(async () => {
    await c.close();
  });

  describe('tokens', () => {
    it('401 for missing or malformed credentials', async () => {
      for (const h of [undefined, 'Basic YTpi', 'Bearer', 'Bearer ', `Bearer ${ACME} extra`, `Token ${ACME}`]) {
        const res = await get(c.url, '/v1/audit', h);
        expect(res.status, String(h)).toBe(401);
        expect(res.body.error.code).toBe('unauthorized');
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    });

    it('403 for wrong, short and long tokens, and for the hash used as a token', async () => {
      for (const t of ['short', ACME.slice(0, -1), `${ACME}x`, 'x'.repeat(5000), sha(ACME), sha(HASHED_ADMIN), 'a'.repeat(16)]) {
        const res = await get(c.url, '/v1/audit', `Bearer ${t}`);
        expect(res.status, t.slice(0, 20)).toBe(403);
        expect(res.body.error.code).toBe('forbidden');
      }
    });

    it('hashed and plain admin tokens see every tenant', async () => {
      for (const t of [HASHED_ADMIN, ADMIN_TOKEN]) {
        const res = await get(c.url, '/v1/audit?limit=1000', `Bearer ${t}`);
        expect(res.status).toBe(200);
        expect(res.body.items).toHaveLength(30);
        expect(new Set(res.body.items.map((i: any) => i.record.tenant))).toEqual(new Set(TENANTS));
        expect((await get(c.url, '/v1/streams', `Bearer ${t}`)).status).toBe(200);
      }
    });
  });

  describe('tenant scope', () => {
    it('a reader sees only its tenant without asking for it', async () => {
      for (const [token, tenant] of [
        [ACME, 'acme'],
        [GLOBEX, 'globex'],
      ] as const) {
        const res = await get(c.url, '/v1/audit?limit=1000', `Bearer ${token}`);
        expect(res.status).toBe(200);
        expect(res.body.items).toHaveLength(10);
        for (const i of res.body.items) expect(i.record.tenant).toBe(tenant);
        // an explicit filter on its own tenant is the same query
        const own = await get(c.url, `/v1/audit?limit=1000&tenant=${tenant}`, `Bearer ${token}`);
        expect(own.body.items).toEqual(res.body.items);
      }
    });

    it('pages stay inside the tenant', async () => {
      const seen: number[] = [];
      let path = '/v1/audit?limit=3';
      for (;;) {
        const res = await get(c.url, path, `Bearer ${ACME}`);
        expect(res.status).toBe(200);
        for (const i of res.body.items) {
          expect(i.record.tenant).toBe('acme');
          seen.push(i.seq);
        }
        if (res.body.next_cursor === null) break;
        path = `/v1/audit?limit=3&cursor=${encodeURIComponent(res.body.next_cursor)}`;
      }
      expect(seen).toEqual([0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    });

    it('403 when a reader asks for another tenant, however it is spelt', async () => {
      const tries = [
        'globex',
        'ACME',
        'acme ',
        "acme' OR '1'='1",
        "x' OR tenant IS NOT NULL --",
        'acme%00',
        '%',
        '*',
        'acme\\',
      ];
      for (const t of tries) {
        const res = await get(c.url, `/v1/audit?tenant=${encodeURIComponent(t)}`, `Bearer ${ACME}`);
        expect(res.status, t).toBe(403);
        expect(res.body.error.code, t).toBe('tenant_forbidden');
      }
      // repeating the parameter to smuggle a second value is refused too
      expect((await get(c.url, '/v1/audit?tenant=acme&tenant=globex', `Bearer ${ACME}`)).status).toBe(400);
      // other filters cannot widen the scope either
      const byStream = await get(c.url, '/v1/audit?stream=t-1&limit=1000', `Bearer ${ACME}`);
      expect(byStream.body.items).toHaveLength(10);
    });

    it('a reader cursor does not continue an admin query, nor the reverse', async () => {
      const r = await get(c.url, '/v1/audit?limit=2', `Bearer ${ACME}`);
      const a = await get(c.url, '/v1/audit?limit=2', `Bearer ${HASHED_ADMIN}`);
      const asAdmin = await get(c.url, `/v1/audit?limit=2&cursor=${encodeURIComponent(r.body.next_cursor)}`, `Bearer ${HASHED_ADMIN}`);
      expect(asAdmin.status).toBe(400);
      const asReader = await get(c.url, `/v1/audit?limit=2&cursor=${encodeURIComponent(a.body.next_cursor)}`, `Bearer ${ACME}`);
      expect(asReader.status).toBe(400);
    });

    it('403 admin_required on routes that span tenants', async () => {
      for (const path of ['/v1/streams', '/v1/streams/t-1/checkpoints', '/v1/streams/t-1/records']) {
        const res = await get(c.url, path, `Bearer ${ACME}`);
        expect(res.status, path).toBe(403);
        expect(res.body.error.code, path).toBe('admin_required');
        expect((await get(c.url, path, `Bearer ${HASHED_ADMIN}`)).status, path).toBe(200);
      }
    });
  });

  describe('bounds', () => {
    it('limit=1000000000 is refused', async () => {
      for (const l of ['1000000000', '1001', '0', '-1', '1e9', '99999999999999999999']) {
        const res = await get(c.url, `/v1/audit?limit=${l}`, `Bearer ${ACME}`);
        expect(res.status, l).toBe(400);
        expect(res.body.error.code).toBe('query_invalid');
      }
    });

    it('a huge time range is refused, one within max_query_range answered', async () => {
      const huge = await get(c.url, '/v1/audit?from=1970-01-01T00:00:00Z&to=2999-01-01T00:00:00Z', `Bearer ${ACME}`);
      expect(huge.status).toBe(400);
      expect(huge.body.error.code).toBe('range_too_large');
      const justOver = await get(c.url, '/v1/audit?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00.000001Z', `Bearer ${ACME}`);
      expect(justOver.body.error.code).toBe('range_too_large');
      const ok = await get(c.url, '/v1/audit?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&limit=1000', `Bearer ${ACME}`);
      expect(ok.status).toBe(200);
      expect(ok.body.items).toHaveLength(10);
    });
  });
});

describe('collector rate limits', () => {
  it('429 with Retry-After once a token spends its burst; other tokens unaffected; recovers', async () => {
    const b = new BatchBuilder({ stream: 't-r' });
    const c = await startTestCollector({
      streams: [{ match: 't-*', vkey: b.vkey }],
      tokens: TOKENS,
      rate_limit: { ...DEFAULT_RATE_LIMITS, reader: { requests_per_second: 20, burst: 3 } },
    });
    try {
      await seed(c, b);
      const statuses: number[] = [];
      let limited: Awaited<ReturnType<typeof get>> | undefined;
      // Back-to-back requests spend the burst faster than 20/s refills it.
      for (let i = 0; i < 50 && !limited; i++) {
        const res = await get(c.url, '/v1/audit?limit=1', `Bearer ${ACME}`);
        statuses.push(res.status);
        if (res.status === 429) limited = res;
      }
      expect(limited, 'never limited').toBeDefined();
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
      expect(limited!.body.error.code).toBe('rate_limited');
      expect(Number(limited!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // budgets are per token
      expect((await get(c.url, '/v1/audit?limit=1', `Bearer ${GLOBEX}`)).status).toBe(200);
      // and the bucket refills: poll until answered again (bounded by attempts, not time)
      let recovered = false;
      for (let i = 0; i < 200 && !recovered; i++) {
        await sleep(50);
        recovered = (await get(c.url, '/v1/audit?limit=1', `Bearer ${ACME}`)).status === 200;
      }
      expect(recovered).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('failed authentications are limited per client address, before the token is checked', async () => {
    const c = await startTestCollector({
      tokens: TOKENS,
      rate_limit: { ...DEFAULT_RATE_LIMITS, failures: { requests_per_second: 0.001, burst: 3 } },
    });
    try {
      for (let i = 0; i < 3; i++) expect((await get(c.url, '/v1/audit', `Bearer wrong-token-${i}-0123456789`)).status).toBe(403);
      const blocked = await get(c.url, '/v1/audit', `Bearer wrong-token-x-0123456789`);
      expect(blocked.status).toBe(429);
      expect(blocked.body.error.code).toBe('rate_limited');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(1);
      // a right guess is not even looked at while the address is limited
      expect((await get(c.url, '/v1/audit', `Bearer ${HASHED_ADMIN}`)).status).toBe(429);
      // health stays open
      expect((await getJson(c.url, '/healthz', null)).status).toBe(200);
    } finally {
      await c.close();
    }
  });
});

describe('token configuration', () => {
  const yaml = (tokens: string) => `collector:\n  auth:\n    tokens:\n${tokens}`;

  it('loads hashed tokens, rate limits and max_query_range', async () => {
    const cfg = parseConfigText(
      yaml(`      - { id: ops, sha256: "${sha(HASHED_ADMIN).toUpperCase()}", role: admin }
      - { sha256: "${sha(ACME)}", role: reader, tenant: acme }
    rate_limit: { reader: { burst: 5 } }
    max_query_range: 24h
`),
      'auth.yaml',
      {},
    ).collector!;
    expect(cfg.auth.tokens).toEqual([
      { id: 'ops', sha256: sha(HASHED_ADMIN), role: 'admin' },
      { id: 'tokens[1]', sha256: sha(ACME), role: 'reader', tenant: 'acme' },
    ]);
    const opts = collectorOptionsFromConfig(cfg);
    expect(opts.rate_limit).toEqual({ ...DEFAULT_RATE_LIMITS, reader: { requests_per_second: 20, burst: 5 } });
    expect(opts.max_query_range).toBe(86_400_000);
    const c = await startTestCollector({ ...opts, listen: { host: '127.0.0.1', port: 0 } });
    try {
      expect((await get(c.url, '/v1/audit', `Bearer ${ACME}`)).status).toBe(200);
      const wide = await get(c.url, '/v1/audit?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z', `Bearer ${HASHED_ADMIN}`);
      expect(wide.body.error.code).toBe('range_too_large');
    } finally {
      await c.close();
    }
  });

  it('refuses readers without a tenant, admins with one, duplicates and non-hashes', () => {
    const bad = (t: string) => codeOf(() => parseConfigText(yaml(t), 'bad.yaml', {}), ConfigError);
    expect(bad(`      - { sha256: "${sha(ACME)}", role: reader }\n`)).toBe('config_schema');
    expect(bad(`      - { sha256: "${sha(ACME)}", role: admin, tenant: acme }\n`)).toBe('config_schema');
    expect(bad(`      - { sha256: "${ACME}", role: admin }\n`)).toBe('config_schema');
    expect(bad(`      - { sha256: "${sha(ACME)}", role: root }\n`)).toBe('config_schema');
    expect(
      bad(`      - { sha256: "${sha(ACME)}", role: admin }\n      - { sha256: "${sha(ACME).toUpperCase()}", role: reader, tenant: a }\n`),
    ).toBe('config_schema');
    expect(bad(`      - { id: a, sha256: "${sha(ACME)}", role: admin }\n      - { id: a, sha256: "${sha(GLOBEX)}", role: admin }\n`)).toBe(
      'config_schema',
    );
    // the same rules hold when the app is built from options directly
    expect(() => new AdminAuth({ admin_tokens: [], tokens: [{ id: 'r', sha256: sha(ACME), role: 'reader' }] })).toThrow(/tenant/);
    expect(() => new AdminAuth({ admin_tokens: ['too-short'] })).toThrow(/16/);
  });
});

describe('store timeouts', () => {
  it('a read the store gave up on answers 503 with Retry-After, not 500', async () => {
    const inner = openNullStore();
    // What pg raises when statement_timeout cancels a query (SQLSTATE 57014).
    const timeout = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    const store = new Proxy(inner, {
      get: (t, k) => (k === 'queryRecords' ? async () => Promise.reject(timeout) : Reflect.get(t, k)),
    }) as AuditStore;
    const { logger } = memoryLogger();
    const running = await startCollector(
      { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1 << 20, admin_tokens: [ADMIN_TOKEN], streams: [], trust_on_first_use: false, hmac_keys: [] },
      store,
      logger,
    );
    try {
      const res = await get(running.url, '/v1/audit', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('store_unavailable');
      expect(res.headers['retry-after']).toBe('1');
      expect(res.text).not.toContain('canceling');
    } finally {
      await running.close();
      await inner.close();
    }
  });
});
