import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCollectorApp, startCollector, type RunningCollector } from '../../src/collector/app.js';
import { defaultCollectorKeyFiles, readAuditFromConfig, startCollectorFromConfig } from '../../src/collector/from-config.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import type { ReadAuditOptions } from '../../src/collector/options.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { defaultCollectorConfig, parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { generateKeyPair, parseSignerKeyPair, parseVerifierKey } from '../../src/core/note.js';
import { createLogger } from '../../src/log.js';
import { verifyStreamAsync } from '../../src/verify/verify-stream.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, auditedCollectorOptions, getJson, memoryLogger, postJson } from '../helpers/collector-server.js';

const READER_TOKEN = 'reader-token-acme-0123456789abcdef';
const OWN = 'collector-test';
const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);

function readAuditKeys(stream = OWN): ReadAuditOptions & { hmacKey: Buffer } {
  const { skey } = generateKeyPair('test-collector');
  const { signer, vkey } = parseSignerKeyPair(skey);
  const key = Buffer.alloc(32, 9);
  return { stream, signer, vkey, hmac_key: { id: 'collector', key }, hmacKey: key };
}

/** The real SQLite store with one switch: appendBatch throws while `failing` is set. */
function failableStore(inner: SqliteAuditStore): { store: AuditStore; fail(on: boolean): void } {
  let failing = false;
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'appendBatch' && failing) {
        return async () => {
          throw new Error('SQLITE_IOERR: disk I/O error (injected)');
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as AuditStore;
  return { store, fail: (on) => void (failing = on) };
}

interface Own {
  seq: number;
  record: Record<string, any>;
}

/** The collector's own stream as stored, parsed. */
async function ownRecords(store: AuditStore, stream = OWN): Promise<Own[]> {
  const out: Own[] = [];
  for await (const r of store.iterateStreamRecords(stream)) out.push({ seq: r.seq, record: JSON.parse(r.canonical) });
  return out;
}

async function verifyOwn(store: AuditStore, keys: { vkey: string; hmacKey: Buffer; hmacId?: string }, stream = OWN) {
  const cps = (await store.listCheckpoints(stream, 0, 100_000)).map((c) => ({ note: c.note, label: `batch ${c.batch}` }));
  const records = (async function* () {
    for await (const r of store.iterateStreamRecords(stream)) {
      yield { seq: r.seq, canonical: r.canonical, mac: Buffer.from(r.mac, 'hex'), keyId: r.keyId, leaf: r.leaf };
    }
  })();
  return verifyStreamAsync(stream, records, cps, {
    verifiers: [parseVerifierKey(keys.vkey)],
    hmac: new Map([[keys.hmacId ?? 'collector', keys.hmacKey]]),
  });
}

describe('read auditing: every query API read is recorded in the collector\'s own stream', () => {
  let dir: string;
  let inner: SqliteAuditStore;
  let failable: ReturnType<typeof failableStore>;
  let running: RunningCollector;
  let url: string;
  const keys = readAuditKeys();
  const sidecar = new BatchBuilder({ stream: 'agents-a', baseTime: BASE });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-read-audit-'));
    inner = new SqliteAuditStore(join(dir, 'audit.db'));
    failable = failableStore(inner);
    running = await startCollector(auditedCollectorOptions(sidecar, READER_TOKEN, keys), failable.store, memoryLogger().logger);
    url = running.url;
    const batch = sidecar.next(10, {
      fields: (seq) => ({ time: new Date(BASE + seq * 1000).toISOString(), tenant: seq % 2 === 0 ? 'acme' : 'globex', event_type: 'tool_invoked' }),
    });
    expect((await postJson(url, batch)).status).toBe(200);
  });

  afterAll(async () => {
    await running.close();
    await inner.close();
    rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => failable.fail(false));

  it('records who, which filter and how many rows before answering a query, in a verifiable stream', async () => {
    const before = (await ownRecords(inner)).length;
    const res = await getJson(url, '/v1/audit?event_type=tool_invoked&tenant=globex&limit=3');
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(3);
    const own = await ownRecords(inner);
    expect(own).toHaveLength(before + 1);
    const r = own[own.length - 1]!.record;
    expect(r).toMatchObject({
      stream: OWN,
      seq: before,
      event_type: 'data_accessed',
      source: 'collector',
      actor: { id: 'admin_tokens[0]', type: 'admin' },
      action: 'audit.query',
      resource: { type: 'audit_log', id: '/v1/audit' },
      outcome: 'success',
      details: { role: 'admin', filters: { event_type: 'tool_invoked', tenant: 'globex', limit: '3' }, rows: 3, status: 200 },
    });
    expect(r.tenant).toBeUndefined();
    // The token itself is never recorded.
    expect(JSON.stringify(own)).not.toContain(ADMIN_TOKEN);

    const report = await verifyOwn(inner, keys);
    expect(report).toMatchObject({ ok: true, chainChecked: true, treeSize: own.length });
  });

  it('the collector\'s stream is listed, verifies server-side, and no sidecar can write to it', async () => {
    const streams = await getJson(url, '/v1/streams');
    expect(streams.status).toBe(200);
    const names = (streams.body.streams as Array<{ stream: string }>).map((s) => s.stream);
    expect(names).toEqual(expect.arrayContaining(['agents-a', OWN]));

    const v = await getJson(url, `/v1/verify?stream=${OWN}`);
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ stream: OWN, ok: true, chain_checked: true });

    // A batch for the collector's stream is refused over HTTP whoever signed
    // it; so is one for a peer replica's stream and a not yet existing one,
    // which a "*" key entry would otherwise have let a sidecar claim.
    const state = await inner.getStreamState(OWN);
    for (const stream of [OWN, 'collector-peer-b', 'collector-future']) {
      const forger = new BatchBuilder({ stream, skey: sidecar.skey, baseTime: BASE });
      const forged = forger.next(1);
      if (stream === OWN) forged.batch = state!.nextBatch;
      const res = await postJson(url, forged);
      expect(res.status, stream).toBe(403);
      expect(res.body.error.code, stream).toBe('stream_reserved');
      if (stream !== OWN) expect(await inner.getStreamState(stream), stream).toBeUndefined();
    }
    expect((await inner.getStreamState(OWN))?.nextBatch).toBe(state!.nextBatch);

    // Reading the collector's own stream is audited too (the audit write is not a read).
    const before = (await ownRecords(inner)).length;
    const page = await getJson(url, `/v1/streams/${OWN}/records?from_seq=0&limit=5`);
    expect(page.status).toBe(200);
    const own = await ownRecords(inner);
    expect(own).toHaveLength(before + 1);
    expect(own[own.length - 1]!.record).toMatchObject({
      action: 'streams.records',
      resource: { id: '/v1/streams/:stream/records' },
      details: { filters: { stream: OWN, from_seq: 0, limit: 5 }, rows: Math.min(before, 5) },
    });
    expect((await verifyOwn(inner, keys)).ok).toBe(true);
  });

  it('every read route is audited', async () => {
    const cp = await getJson(url, '/v1/streams/agents-a/checkpoints');
    expect(cp.status).toBe(200);
    const item = (await getJson(url, '/v1/audit?limit=1&stream=agents-a')).body.items[0];
    const byId = await getJson(url, `/v1/audit/${encodeURIComponent(item.record.id)}`);
    expect(byId.status).toBe(200);
    const missing = await getJson(url, '/v1/audit/no-such-id');
    expect(missing.status).toBe(404);
    const cons = await getJson(url, '/v1/streams/agents-a/consistency?from=10&to=10');
    expect(cons.status).toBe(200);
    const verify = await getJson(url, '/v1/verify?stream=agents-a');
    expect(verify.status).toBe(200);
    const report = await getJson(url, `/v1/report?from=${new Date(BASE - 1000).toISOString()}&to=${new Date(BASE + 3600_000).toISOString()}`);
    expect(report.status).toBe(200);

    const tail = (await ownRecords(inner)).slice(-7).map((o) => [o.record.action, o.record.details.rows, o.record.details.status]);
    expect(tail).toEqual([
      ['streams.checkpoints', 1, 200],
      ['audit.query', 1, 200],
      ['audit.get', 1, 200],
      ['audit.get', 0, 404],
      ['streams.consistency', 0, 200],
      ['streams.verify', 10, 200],
      ['report.generate', report.body.totals.records, 200],
    ]);
    expect((await verifyOwn(inner, keys)).ok).toBe(true);
  });

  it('an export is recorded before its first byte, and its total at its end; a failed first write fails the export', async () => {
    const res = await getJson(url, '/v1/export?stream=agents-a');
    expect(res.status).toBe(200);
    const lines = res.text.trim().split('\n');
    const tail = (await ownRecords(inner)).slice(-2).map((o) => [o.record.action, o.record.details.rows, o.record.details.filters]);
    expect(tail).toEqual([
      ['audit.export', lines.length, { stream: 'agents-a' }],
      ['audit.export.completed', lines.length, { stream: 'agents-a' }],
    ]);
    failable.fail(true);
    try {
      const refused = await getJson(url, '/v1/export?stream=agents-a');
      expect(refused.status).toBe(503);
      expect(refused.text).not.toContain('tool_invoked');
    } finally {
      failable.fail(false);
    }
    expect((await verifyOwn(inner, keys)).ok).toBe(true);
  });

  it('a reader token\'s read records its id and tenant', async () => {
    const res = await getJson(url, '/v1/audit?event_type=tool_invoked', READER_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(5);
    const own = await ownRecords(inner);
    expect(own[own.length - 1]!.record).toMatchObject({
      tenant: 'acme',
      actor: { id: 'acme-reader', type: 'user' },
      details: { role: 'reader', filters: { event_type: 'tool_invoked', tenant: 'acme' }, rows: 5 },
    });
    // A reader's own tenant now holds that record: the reader can see who read its tenant's data.
    const again = await getJson(url, `/v1/audit?stream=${OWN}&event_type=data_accessed`, READER_TOKEN);
    expect(again.status).toBe(200);
    expect(again.body.items.every((i: any) => i.record.tenant === 'acme')).toBe(true);
    expect(again.body.items.length).toBeGreaterThanOrEqual(1);
  });

  it('if the audit write fails, the read fails with 503 and returns no data', async () => {
    const before = await ownRecords(inner);
    failable.fail(true);
    for (const path of ['/v1/audit?limit=5', '/v1/streams', '/v1/streams/agents-a/records', `/v1/verify?stream=agents-a`]) {
      const res = await getJson(url, path);
      expect(res.status, path).toBe(503);
      expect(res.body).toEqual({ error: { code: 'read_audit_failed', message: expect.any(String) } });
      expect(res.headers['retry-after']).toBe('1');
      expect(res.text).not.toContain('tool_invoked');
      expect(res.text).not.toContain('agents-a');
    }
    const reader = await getJson(url, '/v1/audit', READER_TOKEN);
    expect(reader.status).toBe(503);
    failable.fail(false);
    // Nothing was written while failing, and the stream continues cleanly afterwards.
    expect(await ownRecords(inner)).toHaveLength(before.length);
    expect((await getJson(url, '/v1/audit?limit=1')).status).toBe(200);
    const after = await ownRecords(inner);
    expect(after).toHaveLength(before.length + 1);
    expect((await verifyOwn(inner, keys)).ok).toBe(true);
  });

  it('concurrent reads are all recorded, with contiguous seqs, each before its answer', async () => {
    const before = (await ownRecords(inner)).length;
    const N = 40;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        getJson(url, `/v1/audit?limit=${(i % 10) + 1}`, i % 2 === 0 ? ADMIN_TOKEN : READER_TOKEN),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
    const own = (await ownRecords(inner)).slice(before);
    expect(own).toHaveLength(N);
    expect(own.map((o) => o.seq)).toEqual(Array.from({ length: N }, (_, i) => before + i));
    const limits = own.map((o) => Number(o.record.details.filters.limit)).sort((a, b) => a - b);
    expect(limits).toEqual(Array.from({ length: N }, (_, i) => (i % 10) + 1).sort((a, b) => a - b));
    expect(own.filter((o) => o.record.tenant === 'acme')).toHaveLength(N / 2);
    const report = await verifyOwn(inner, keys);
    expect(report).toMatchObject({ ok: true, treeSize: before + N });
  });
});

describe('read auditing from config', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('reserves the collector- prefix: read_audit.stream must carry it, and no streams entry may claim it', async () => {
    const err = (() => {
      try {
        parseConfigText('collector:\n  read_audit:\n    stream: audit-eu-1\n', 'c.yaml', {});
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.code).toBe('config_schema');
    expect(err!.message).toMatch(/^c\.yaml:3:\d+/);
    expect(parseConfigText('collector:\n  read_audit:\n    stream: collector-eu-1\n', 'c.yaml', {}).collector?.read_audit.stream).toBe('collector-eu-1');

    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-read-audit-reserved-'));
    dirs.push(dir);
    const store = new SqliteAuditStore(join(dir, 'audit.db'));
    try {
      const { vkey } = generateKeyPair('sidecars');
      for (const match of ['collector-*', 'collector-eu-1', 'collector-eu*']) {
        const opts: CollectorOptions = {
          listen: { host: '127.0.0.1', port: 0 },
          max_body_bytes: 1 << 20,
          admin_tokens: [ADMIN_TOKEN],
          streams: [{ match, vkey }],
          trust_on_first_use: false,
          hmac_keys: [],
        };
        expect(() => buildCollectorApp(opts, store, createLogger('test', 'silent')), match).toThrow(/read-audit streams/);
      }
    } finally {
      await store.close();
    }
  });

  it('a SQLite collector without collector.keys generates them beside its store once and keeps its stream verifiable across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-read-audit-cfg-'));
    dirs.push(dir);
    const storePath = join(dir, 'collector', 'audit.db');
    const cfg = defaultCollectorConfig({
      listen: '127.0.0.1:0',
      store: { type: 'sqlite', path: storePath },
      auth: { admin_tokens: [ADMIN_TOKEN] },
      read_audit: { stream: 'collector-cfg' },
    });
    const logger = createLogger('test', 'silent');
    for (let run = 0; run < 2; run++) {
      const h = await startCollectorFromConfig(cfg, logger);
      try {
        expect((await getJson(h.running.url, '/v1/streams')).status).toBe(200);
        expect((await getJson(h.running.url, '/v1/audit?limit=1')).status).toBe(200);
      } finally {
        await h.shutdown();
      }
    }
    const files = defaultCollectorKeyFiles(storePath);
    for (const f of Object.values(files)) expect(existsSync(f)).toBe(true);
    const store = new SqliteAuditStore(storePath);
    try {
      const own = await ownRecords(store, 'collector-cfg');
      expect(own.map((o) => o.record.action)).toEqual(['streams.list', 'audit.query', 'streams.list', 'audit.query']);
      const hmacKey = Buffer.from(readFileSync(files.hmac, 'utf8').trim(), 'base64');
      const report = await verifyOwn(store, { vkey: readFileSync(files.vkey, 'utf8').trim(), hmacKey }, 'collector-cfg');
      expect(report).toMatchObject({ ok: true, treeSize: 4, chainChecked: true });
    } finally {
      await store.close();
    }
  });

  it('postgres without collector.keys is refused; read_audit.enabled false and the null store audit nothing', () => {
    const pg = defaultCollectorConfig({ store: { type: 'postgres', url: 'postgres://app@127.0.0.1:5432/x' } });
    expect(() => readAuditFromConfig(pg)).toThrow(/collector\.keys\.signing_key_file is required/);
    const off = defaultCollectorConfig({ store: { type: 'postgres', url: 'postgres://app@127.0.0.1:5432/x' }, read_audit: { enabled: false } });
    expect(readAuditFromConfig(off)).toBeUndefined();
    expect(readAuditFromConfig(defaultCollectorConfig({ store: { type: 'null' } }))).toBeUndefined();
  });
});
