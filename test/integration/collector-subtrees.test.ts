import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appendLeaves, completedSubtrees, subtreeKey } from '../../src/collector/proofs.js';
import { openPostgresStore } from '../../src/collector/store/postgres.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { appendInputOf, verifyBatch, type BatchKeys } from '../../src/collector/verify-batch.js';
import { Frontier, leafHash } from '../../src/core/merkle.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

/**
 * Verification hashes a batch's tree once, and the stores keep the complete
 * subtrees it produced (instead of hashing the batch again inside the
 * append). A store takes them only when they grew from the head it reads in
 * its own transaction; anything else is derived again from that head.
 */

describe('appendLeaves', () => {
  const leaves = Array.from({ length: 77 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

  it('gives completedSubtrees and the frontier Frontier.append reaches, for every split point', () => {
    for (let k = 0; k <= leaves.length; k++) {
      const before = Frontier.empty();
      for (const l of leaves.slice(0, k)) before.append(l);
      const want = before.clone();
      for (const l of leaves.slice(k)) want.append(l);
      const got = appendLeaves(before, leaves.slice(k));
      expect(got.frontier.size).toBe(want.size);
      expect(got.frontier.toBytes()).toEqual(want.toBytes());
      expect(got.frontier.root()).toEqual(want.root());
      expect(got.subtrees).toEqual(completedSubtrees(before, leaves.slice(k)));
      // The frontier passed in is not changed.
      expect(before.size).toBe(k);
    }
  });
});

interface Backend {
  name: string;
  open(): Promise<{ store: AuditStore; close(): Promise<void> }>;
}

const dbs: TestDatabase[] = [];
afterAll(async () => {
  for (const d of dbs) await d.drop();
});

const backends: Backend[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'sealtrail-subtrees-'));
      const store = new SqliteAuditStore(join(dir, 'c.db'));
      return {
        store,
        async close() {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      const db = await createTestDatabase();
      dbs.push(db);
      const store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 2 });
      return { store, close: () => store.close() };
    },
  },
];

for (const backend of backends) {
  describe(`${backend.name} store: subtrees from verification`, () => {
    it('stores what verification computed, and derives its own when they did not grow from its head', async () => {
      const { store, close } = await backend.open();
      try {
        const b = new BatchBuilder({ stream: `subtrees-${backend.name}` });
        const keys: BatchKeys = { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([[b.keyId, new Uint8Array(b.hmacKey)]]) };
        const leaves: Buffer[] = [];
        for (const [i, count] of [5, 8, 3, 16].entries()) {
          const verified = verifyBatch(b.next(count), await store.getStreamState(b.stream), keys);
          leaves.push(...verified.records.map((r) => r.leaf));
          const input = appendInputOf(verified);
          if (i % 2 === 1) {
            // Claimed to grow from another tree: the store must not take them.
            input.subtrees = {
              baseFrontier: Buffer.alloc(input.subtrees!.baseFrontier.length, 0xee),
              hashes: input.subtrees!.hashes.map((t) => ({ ...t, hash: Buffer.alloc(32, 0xab) })),
            };
          }
          if (i === 2) delete input.subtrees;
          await store.appendBatch(input);
        }
        const want = completedSubtrees(Frontier.empty(), leaves);
        expect(want.length).toBeGreaterThan(20);
        const got = await store.getSubtreeHashes(b.stream, want);
        expect(new Map(got.map((t) => [subtreeKey(t), t.hash.toString('hex')]))).toEqual(
          new Map(want.map((t) => [subtreeKey(t), t.hash.toString('hex')])),
        );
      } finally {
        await close();
      }
    });
  });
}
