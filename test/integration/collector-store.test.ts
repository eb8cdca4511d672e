import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SQLITE_MIGRATIONS } from '../../src/collector/store/sqlite-migrations.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import { StoreConflictError, StoreError } from '../../src/collector/store/types.js';
import { appendInputOf, verifyBatch, type BatchKeys } from '../../src/collector/verify-batch.js';
import { batchDigest } from '../../src/core/wire-batch.js';
import { timeKey } from '../../src/core/time-key.js';
import { canonicalize } from '../../src/core/canonical.js';
import { createHash } from 'node:crypto';
import { parseVerifierKey } from '../../src/core/note.js';
import { HttpError } from '../../src/core/errors.js';
import { BatchBuilder } from '../helpers/collector-batches.js';

const HMAC_KEY = Buffer.alloc(32, 7);

describe('SqliteAuditStore', () => {
  let dir: string;
  let path: string;
  let store: SqliteAuditStore;
  let b: BatchBuilder;
  let keys: BatchKeys;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-store-'));
    path = join(dir, 'audit.db');
    store = new SqliteAuditStore(path);
    b = new BatchBuilder({ stream: 's1', hmacKey: HMAC_KEY });
    keys = { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([['k1', HMAC_KEY]]) };
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function ingest(count: number): Promise<void> {
    const state = await store.getStreamState(b.stream);
    await store.appendBatch(appendInputOf(verifyBatch(b.next(count), state, keys)));
  }

  it('opens in WAL with synchronous=FULL and records its migrations', async () => {
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const rows = db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
      expect(rows).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      db.close();
    }
    // synchronous is per connection: check the store's own
    expect((store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true })).toBe(2);
    // reopening is a no-op
    await ingest(3);
    await store.close();
    store = new SqliteAuditStore(path);
    expect((await store.getStreamState('s1'))?.treeSize).toBe(3);
  });

  it('refuses a database with a newer schema', async () => {
    await store.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, ?)').run('future', 'now');
    db.close();
    expect(() => new SqliteAuditStore(path)).toThrow(StoreError);
    store = new SqliteAuditStore(path, { migrations: [...SQLITE_MIGRATIONS, { version: 99, name: 'future', sql: '' }] });
  });

  it('refuses UPDATE and DELETE on every table through triggers', async () => {
    await ingest(3);
    await ingest(2);
    await store.close();
    const db = new Database(path);
    try {
      const attempts = [
        "UPDATE records SET canonical = '{}' WHERE seq = 0",
        "UPDATE records SET tenant = 'x'",
        'DELETE FROM records WHERE seq = 4',
        'DELETE FROM records',
        "UPDATE batches SET digest = 'x'",
        'DELETE FROM batches',
        "UPDATE checkpoints SET note = 'x'",
        'DELETE FROM checkpoints',
        'UPDATE stream_heads SET tree_size = 0',
        'DELETE FROM stream_heads',
      ];
      for (const sql of attempts) {
        expect(() => db.exec(sql), sql).toThrow(/append-only/);
      }
      expect(db.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: 5 });
    } finally {
      db.close();
    }
    store = new SqliteAuditStore(path);
  });

  it('detects a concurrent writer with the optimistic check', async () => {
    const state = await store.getStreamState('s1');
    const alt = b.clone();
    const v0 = verifyBatch(b.next(3), state, keys);
    const v0alt = verifyBatch(alt.next(4), state, keys);
    // A second process (another connection on the same file) appends first.
    const other = new SqliteAuditStore(path);
    try {
      await other.appendBatch(appendInputOf(v0alt));
    } finally {
      await other.close();
    }
    await expect(store.appendBatch(appendInputOf(v0))).rejects.toBeInstanceOf(StoreConflictError);
    expect((await store.getStreamState('s1'))?.treeSize).toBe(4);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: 4 });
    db.close();
  });

  it('keeps the head history append-only and serves the latest head', async () => {
    await ingest(2);
    await ingest(3);
    const s = await store.getStreamState('s1');
    expect(s).toMatchObject({ stream: 's1', treeSize: 5, nextBatch: 2, chainKeyId: 'k1', pinnedVkey: null });
    expect(s?.lastCheckpoint).toBe(b.prevCheckpoint);
    expect(s?.chainHead).toBe(b.chainHead.toString('hex'));
    expect(await store.getBatch('s1', 1)).toMatchObject({ firstSeq: 2, lastSeq: 4 });
    expect(await store.getBatch('s1', 2)).toBeUndefined();
    expect((await store.listCheckpoints('s1', 0, 10)).map((x) => x.treeSize)).toEqual([2, 5]);
    expect(await store.listStreams()).toEqual([
      { stream: 's1', treeSize: 5, nextBatch: 2, lastCheckpoint: b.prevCheckpoint, chainKeyId: 'k1', pinned: false },
    ]);
  });

  it('verifyBatch is pure and names stream, batch and seq in errors', () => {
    const batch = b.next(2);
    const bad = { ...batch, records: [batch.records[0], { ...batch.records[1], canonical: '{"secret":"pii"}' }] };
    try {
      verifyBatch(bad, undefined, keys);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HttpError);
      expect((err as HttpError).status).toBe(422);
      expect((err as Error).message).toMatch(/^stream s1 batch 0 seq 1: /);
      expect((err as Error).message).not.toContain('pii');
    }
  });

  it('computes the batch digest as SHA-256 of the canonical wire JSON', () => {
    const batch = b.next(3, { fields: () => ({ details: { note: 'quote " backslash \\ line\n \u2028 \ud83d\ude00' } }) });
    const withVkey = { ...batch, vkey: b.vkey };
    const want = createHash('sha256').update(canonicalize(batch)).digest('hex');
    expect(batchDigest(withVkey)).toBe(want);
    expect(verifyBatch(withVkey, undefined, keys).digest).toBe(want);
  });

  it('orders times as instants across offsets and precisions', () => {
    const t = (s: string) => timeKey(s)!;
    expect(t('2026-01-01T00:00:00Z')).toBe(Date.UTC(2026, 0, 1) * 1000);
    expect(t('2026-01-01T01:00:00+01:00')).toBe(t('2026-01-01T00:00:00Z'));
    expect(t('2026-01-01T00:00:00.000001Z')).toBe(t('2026-01-01T00:00:00Z') + 1);
    expect(t('2026-01-01T00:00:00.1234567Z')).toBe(t('2026-01-01T00:00:00Z') + 123456);
    expect(t('1969-12-31T23:59:59.9995Z')).toBe(-500);
    expect(t('2026-01-01T00:00:00.5Z')).toBeLessThan(t('2026-01-01T00:00:00.50001Z'));
    for (const bad of ['2026-01-01', '2026-02-30T00:00:00Z', '2026-01-01T00:00:00', '2026-01-01 00:00:00Z', 'x']) {
      expect(timeKey(bad), bad).toBeUndefined();
    }
  });

  it('verifies and stores 50,000 records in 1000-record batches (speed is measured in bench/, not here)', async () => {
    const total = 50_000;
    const perBatch = 1000;
    for (let i = 0; i < total / perBatch; i++) {
      const state = await store.getStreamState('s1');
      await store.appendBatch(appendInputOf(verifyBatch(b.next(perBatch), state, keys)));
    }
    const state = await store.getStreamState('s1');
    expect(state?.treeSize).toBe(total);
    expect(state?.nextBatch).toBe(total / perBatch);
    const last = await store.readStreamRecords('s1', total - 1, 10);
    expect(last.map((r) => r.seq)).toEqual([total - 1]);
  });
});
