import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import type { ReadAuditOptions } from '../../src/collector/options.js';
import { openPostgresStore, type PostgresAuditStore } from '../../src/collector/store/postgres.js';
import { generateKeyPair, parseSignerKeyPair, parseVerifierKey } from '../../src/core/note.js';
import { verifyStreamAsync } from '../../src/verify/verify-stream.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, auditedCollectorOptions, getJson, memoryLogger, postJson } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

/**
 * Read auditing (docs/read-audit.md) on the real Postgres store: the
 * collector runs as the app role (SELECT and INSERT only), its migrations as
 * the owner. Every read's data_accessed record must be committed to Postgres
 * before the read answers; when Postgres refuses the write (the app role
 * loses INSERT on sealtrail.records), the read answers 503 read_audit_failed
 * with no data, and once the privilege is back the stream continues without
 * a gap and verifies.
 */

const READER_TOKEN = 'reader-token-acme-pg-0123456789abcdef';
const OWN = 'collector-pg-test';
const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);

interface OwnRow {
  seq: number;
  batch: number;
  canonical: string;
  mac: string;
  key_id: string;
  leaf: Buffer;
  record: Record<string, any>;
}

describe('read auditing on the Postgres store', () => {
  let db: TestDatabase;
  let su: pg.Client; // superuser on the test database: reads what Postgres holds, independent of the store code
  let store: PostgresAuditStore;
  let running: RunningCollector;
  let url: string;
  let logs: string[];
  const { skey } = generateKeyPair('pg-collector');
  const { signer, vkey } = parseSignerKeyPair(skey);
  const hmacKey = Buffer.alloc(32, 11);
  const readAudit: ReadAuditOptions = { stream: OWN, signer, vkey, hmac_key: { id: 'collector', key: hmacKey } };
  const sidecar = new BatchBuilder({ stream: 'agents-pg', baseTime: BASE });

  /** The collector's own stream exactly as stored in Postgres. */
  async function ownRows(): Promise<OwnRow[]> {
    const r = await su.query<Omit<OwnRow, 'record'> & { seq: string; batch: string }>(
      'SELECT seq, batch, canonical, mac, key_id, leaf FROM sealtrail.records WHERE stream = $1 ORDER BY seq',
      [OWN],
    );
    return r.rows.map((x) => ({ ...x, seq: Number(x.seq), batch: Number(x.batch), record: JSON.parse(x.canonical) }));
  }

  async function ownBatches(): Promise<{ batch: number; first_seq: number; last_seq: number }[]> {
    const r = await su.query<{ batch: string; first_seq: string; last_seq: string }>(
      'SELECT batch, first_seq, last_seq FROM sealtrail.batches WHERE stream = $1 ORDER BY batch',
      [OWN],
    );
    return r.rows.map((x) => ({ batch: Number(x.batch), first_seq: Number(x.first_seq), last_seq: Number(x.last_seq) }));
  }

  /** Verifies the collector's stream from what Postgres holds (records and checkpoints read by SQL), offline. */
  async function verifyFromPostgres() {
    const rows = await ownRows();
    const cps = await su.query<{ batch: string; note: string }>(
      'SELECT batch, note FROM sealtrail.checkpoints WHERE stream = $1 ORDER BY batch',
      [OWN],
    );
    return verifyStreamAsync(
      OWN,
      rows.map((r) => ({ seq: r.seq, canonical: r.canonical, mac: Buffer.from(r.mac, 'hex'), keyId: r.key_id, leaf: r.leaf })),
      cps.rows.map((c) => ({ note: c.note, label: `batch ${c.batch}` })),
      { verifiers: [parseVerifierKey(vkey)], hmac: new Map([['collector', hmacKey]]) },
    );
  }

  /** Batches of the stream are numbered 0..n-1 and their seq ranges tile 0..size-1. */
  function expectContiguous(batches: { batch: number; first_seq: number; last_seq: number }[], rows: OwnRow[]): void {
    expect(batches.map((b) => b.batch)).toEqual(batches.map((_, i) => i));
    let next = 0;
    for (const b of batches) {
      expect(b.first_seq, `batch ${b.batch}`).toBe(next);
      expect(b.last_seq).toBeGreaterThanOrEqual(b.first_seq);
      next = b.last_seq + 1;
    }
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: next }, (_, i) => i));
    for (const r of rows) {
      const b = batches.find((x) => x.first_seq <= r.seq && r.seq <= x.last_seq);
      expect(b?.batch, `seq ${r.seq}`).toBe(r.batch);
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    su = await db.connect('admin');
    store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 4 });
    const mem = memoryLogger();
    logs = mem.lines;
    running = await startCollector(auditedCollectorOptions(sidecar, READER_TOKEN, readAudit), store, mem.logger);
    url = running.url;
    const batch = sidecar.next(10, {
      fields: (seq) => ({
        time: new Date(BASE + seq * 1000).toISOString(),
        tenant: seq % 2 === 0 ? 'acme' : 'globex',
        event_type: 'tool_invoked',
      }),
    });
    const res = await postJson(url, batch);
    expect(res.status, res.text).toBe(200);
  });

  afterAll(async () => {
    await running?.close();
    await store?.close();
    await su?.end();
    await db?.drop();
  });

  it('the collector really runs as the app role, which may only SELECT and INSERT the records', async () => {
    expect(await store.currentRole()).toBe(db.app);
    const c = await db.connect('app');
    try {
      const r = await c.query(
        `SELECT has_table_privilege('sealtrail.records', 'INSERT') AS ins, has_table_privilege('sealtrail.records', 'UPDATE') AS upd`,
      );
      expect(r.rows[0]).toEqual({ ins: true, upd: false });
    } finally {
      await c.end();
    }
  });

  it('an admin read and a tenant reader read each commit a data_accessed record to Postgres before answering', async () => {
    const before = await ownRows();

    const adminRead = await getJson(url, '/v1/audit?event_type=tool_invoked&tenant=globex&limit=3');
    expect(adminRead.status, adminRead.text).toBe(200);
    expect(adminRead.body.items).toHaveLength(3);
    // Committed before the answer: it is in Postgres the moment the response is here.
    let own = await ownRows();
    expect(own).toHaveLength(before.length + 1);
    expect(own[own.length - 1]!.record).toMatchObject({
      stream: OWN,
      seq: before.length,
      source: 'collector',
      event_type: 'data_accessed',
      actor: { id: 'admin_tokens[0]', type: 'admin' },
      action: 'audit.query',
      resource: { type: 'audit_log', id: '/v1/audit' },
      outcome: 'success',
      details: { role: 'admin', filters: { event_type: 'tool_invoked', tenant: 'globex', limit: '3' }, rows: 3, status: 200 },
    });
    expect(own[own.length - 1]!.record.tenant).toBeUndefined();
    expect(own[own.length - 1]!.key_id).toBe('collector');

    const readerRead = await getJson(url, '/v1/audit?event_type=tool_invoked', READER_TOKEN);
    expect(readerRead.status, readerRead.text).toBe(200);
    expect(readerRead.body.items).toHaveLength(5);
    expect(readerRead.body.items.every((i: any) => i.record.tenant === 'acme')).toBe(true);
    own = await ownRows();
    expect(own).toHaveLength(before.length + 2);
    expect(own[own.length - 1]!.record).toMatchObject({
      seq: before.length + 1,
      event_type: 'data_accessed',
      tenant: 'acme',
      actor: { id: 'acme-reader', type: 'user' },
      action: 'audit.query',
      resource: { type: 'audit_log', id: '/v1/audit' },
      details: { role: 'reader', filters: { event_type: 'tool_invoked', tenant: 'acme' }, rows: 5, status: 200 },
    });

    // The filter columns were extracted at ingest, so the reader finds the
    // record of its own read through the query API (served from Postgres).
    const mine = await getJson(url, `/v1/audit?stream=${OWN}&event_type=data_accessed&actor=acme-reader`, READER_TOKEN);
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((i: any) => i.record.seq)).toContain(before.length + 1);
    expect(mine.body.items.every((i: any) => i.record.tenant === 'acme')).toBe(true);
    // ... and the admin's read is not in the reader's tenant.
    expect(mine.body.items.map((i: any) => i.record.seq)).not.toContain(before.length);

    // Never a token, nor the reader token's hash, anywhere in the database's records or the logs.
    const leaked = await su.query<{ n: string }>(
      `SELECT count(*) AS n FROM sealtrail.records WHERE strpos(canonical, $1) > 0 OR strpos(canonical, $2) > 0 OR strpos(canonical, $3) > 0`,
      [ADMIN_TOKEN, READER_TOKEN, createHash('sha256').update(READER_TOKEN).digest('hex')],
    );
    expect(Number(leaked.rows[0]!.n)).toBe(0);
    expect(logs.join('')).not.toContain(ADMIN_TOKEN);
    expect(logs.join('')).not.toContain(READER_TOKEN);
  });

  it('the collector\'s stream verifies: server-side (GET /v1/verify) and offline from the rows in Postgres', async () => {
    const rows = await ownRows();
    expect(rows.length).toBeGreaterThanOrEqual(3);
    const v = await getJson(url, `/v1/verify?stream=${OWN}`);
    expect(v.status, v.text).toBe(200);
    expect(v.body).toMatchObject({ stream: OWN, ok: true, chain_checked: true, tree_size: rows.length, checked_records: rows.length });
    expect(v.body.first_failure).toBeUndefined();

    // The verify read itself was recorded (rows = records checked).
    const after = await ownRows();
    expect(after).toHaveLength(rows.length + 1);
    expect(after[after.length - 1]!.record).toMatchObject({
      action: 'streams.verify',
      details: { filters: { stream: OWN }, rows: rows.length, status: 200 },
    });

    const report = await verifyFromPostgres();
    expect(report).toMatchObject({ ok: true, chainChecked: true, treeSize: after.length, records: after.length });
    expectContiguous(await ownBatches(), after);
  });

  it('concurrent reads by both tokens are all committed, one record each, with contiguous seqs', async () => {
    const before = (await ownRows()).length;
    const N = 30;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => getJson(url, `/v1/audit?limit=${(i % 10) + 1}`, i % 2 === 0 ? ADMIN_TOKEN : READER_TOKEN)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(N).fill(200));
    const own = (await ownRows()).slice(before);
    expect(own).toHaveLength(N);
    expect(own.map((o) => o.seq)).toEqual(Array.from({ length: N }, (_, i) => before + i));
    const limits = own.map((o) => Number(o.record.details.filters.limit)).sort((a, b) => a - b);
    expect(limits).toEqual(Array.from({ length: N }, (_, i) => (i % 10) + 1).sort((a, b) => a - b));
    expect(own.filter((o) => o.record.actor.id === 'acme-reader' && o.record.tenant === 'acme')).toHaveLength(N / 2);
    expect(own.filter((o) => o.record.actor.id === 'admin_tokens[0]' && o.record.tenant === undefined)).toHaveLength(N / 2);
    const report = await verifyFromPostgres();
    expect(report).toMatchObject({ ok: true, treeSize: before + N });
    expectContiguous(await ownBatches(), await ownRows());
  });

  it('when the app role loses INSERT on sealtrail.records, reads answer 503 read_audit_failed with no data; after GRANT they work and the stream has no gap', async () => {
    const before = await ownRows();
    const batchesBefore = await ownBatches();
    const headsBefore = await su.query<{ n: string }>('SELECT count(*) AS n FROM sealtrail.stream_heads WHERE stream = $1', [OWN]);
    const logsBefore = logs.length;

    const owner = await db.connect('owner');
    try {
      await owner.query(`REVOKE INSERT ON sealtrail.records FROM ${db.app}`);
      try {
        const reads: [string, string | null][] = [
          ['/v1/audit?limit=5', ADMIN_TOKEN],
          ['/v1/audit?event_type=tool_invoked', READER_TOKEN],
          ['/v1/streams', ADMIN_TOKEN],
          ['/v1/streams/agents-pg/records', ADMIN_TOKEN],
          ['/v1/verify?stream=agents-pg', ADMIN_TOKEN],
        ];
        for (const [path, token] of reads) {
          const res = await getJson(url, path, token);
          expect(res.status, `${path}: ${res.text}`).toBe(503);
          expect(res.body).toEqual({ error: { code: 'read_audit_failed', message: expect.any(String) } });
          expect(res.headers['retry-after']).toBe('1');
          expect(res.text).not.toContain('tool_invoked');
          expect(res.text).not.toContain('agents-pg');
          expect(res.text).not.toContain('acme');
        }
        // Concurrent reads while refused: every one is refused, none answers data.
        const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => getJson(url, `/v1/audit?limit=${i + 1}`)));
        expect(burst.map((r) => r.status)).toEqual(Array(10).fill(503));
        expect(burst.every((r) => r.body?.error?.code === 'read_audit_failed')).toBe(true);

        // Nothing of the refused reads reached Postgres: no record, no batch, no head.
        expect(await ownRows()).toHaveLength(before.length);
        expect(await ownBatches()).toEqual(batchesBefore);
        const heads = await su.query<{ n: string }>('SELECT count(*) AS n FROM sealtrail.stream_heads WHERE stream = $1', [OWN]);
        expect(heads.rows[0]!.n).toBe(headsBefore.rows[0]!.n);

        // An operator sees why: an alert line with Postgres' insufficient_privilege.
        const alerts = logs.slice(logsBefore).map((l) => JSON.parse(l)).filter((l) => l.alert === 'read_audit_failed');
        expect(alerts.length).toBeGreaterThanOrEqual(1);
        expect(alerts[0]).toMatchObject({ stream: OWN, err: { code: '42501' } });
      } finally {
        await owner.query(`GRANT INSERT ON sealtrail.records TO ${db.app}`);
      }
    } finally {
      await owner.end();
    }

    // Privilege back: reads answer again, each recorded, the stream continuing from where it stopped.
    const ok = await getJson(url, '/v1/audit?event_type=tool_invoked&limit=2', READER_TOKEN);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.items).toHaveLength(2);
    const again = await Promise.all(Array.from({ length: 5 }, () => getJson(url, '/v1/streams')));
    expect(again.map((r) => r.status)).toEqual(Array(5).fill(200));

    const after = await ownRows();
    expect(after).toHaveLength(before.length + 6);
    expect(after[before.length]!.record).toMatchObject({
      seq: before.length,
      tenant: 'acme',
      actor: { id: 'acme-reader' },
      details: { filters: { event_type: 'tool_invoked', tenant: 'acme', limit: '2' }, rows: 2 },
    });
    expect(after.slice(before.length + 1).map((r) => r.record.action)).toEqual(Array(5).fill('streams.list'));
    expectContiguous(await ownBatches(), after);

    const report = await verifyFromPostgres();
    expect(report).toMatchObject({ ok: true, chainChecked: true, treeSize: after.length });
    const v = await getJson(url, `/v1/verify?stream=${OWN}`);
    expect(v.status).toBe(200);
    expect(v.body).toMatchObject({ ok: true, chain_checked: true, checked_records: after.length });
  });
});
