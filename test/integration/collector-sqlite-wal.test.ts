import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAuditStore, WAL_AUTOCHECKPOINT_PAGES } from '../../src/collector/store/sqlite.js';
import { appendInputOf, verifyBatch } from '../../src/collector/verify-batch.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { BatchBuilder } from '../helpers/collector-batches.js';

/**
 * The collector's SQLite store checkpoints its WAL less often than SQLite's
 * default (1,000 pages), so that index pages changed by consecutive batches
 * are copied into the database once. What must not change: every committed
 * batch is readable, by this connection, another one, and after a reopen.
 */
describe('collector SQLite store: WAL checkpoints', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-wal-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps more than the default 1,000 pages in the WAL, and every batch stays readable', async () => {
    const path = join(dir, 'collector.db');
    const store = new SqliteAuditStore(path);
    const b = new BatchBuilder({ stream: 'wal-test' });
    const keys = { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([[b.keyId, new Uint8Array(b.hmacKey)]]) };
    // About 2 KiB a record, so the batches below need some 3,000 WAL pages:
    // more than the default would keep, fewer than this store's threshold.
    const filler = 'x'.repeat(2000);
    const batches = 5;
    const perBatch = 1000;
    for (let i = 0; i < batches; i++) {
      const batch = b.next(perBatch, { fields: (seq) => ({ details: { filler, seq } }) });
      const state = await store.getStreamState(b.stream);
      await store.appendBatch(appendInputOf(verifyBatch(batch, state, keys)));
    }
    const total = batches * perBatch;

    const other = new Database(path);
    try {
      // Another connection sees every commit (they are in the WAL) ...
      expect(other.prepare('SELECT count(*) AS n FROM records').get()).toEqual({ n: total });
      // ... and the WAL still holds them: no checkpoint ran at 1,000 pages.
      const [cp] = other.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      expect(cp!.log).toBeGreaterThan(2000);
      expect(cp!.log).toBeLessThan(WAL_AUTOCHECKPOINT_PAGES);
    } finally {
      other.close();
    }

    expect((await store.readStreamRecords(b.stream, 0, total + 1)).length).toBe(total);
    await store.close();
    const reopened = new SqliteAuditStore(path);
    try {
      expect((await reopened.getStreamState(b.stream))?.treeSize).toBe(total);
      const rows = await reopened.readStreamRecords(b.stream, 0, total + 1);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
    } finally {
      await reopened.close();
    }
  });
});
