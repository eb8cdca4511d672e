import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, type RunningCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import {
  buildConsistencyProof,
  buildInclusionProof,
  completedSubtrees,
  subtreeKey,
  type SubtreeHash,
  type SubtreeReader,
} from '../../src/collector/proofs.js';
import { NullAuditStore } from '../../src/collector/store/null.js';
import { openPostgresStore } from '../../src/collector/store/postgres.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { canonicalize } from '../../src/core/canonical.js';
import { parseCheckpoint } from '../../src/core/checkpoint.js';
import {
  Frontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/core/merkle.js';
import { openNote, parseVerifierKey } from '../../src/core/note.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, memoryLogger, postJson } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { prng } from '../helpers/prng.js';

const HMAC_KEY = Buffer.alloc(32, 9);
const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);
/** Batch sizes of stream A: odd sizes, powers of two and a big one, so checkpoints land on every kind of boundary. */
const SIZES_A = [1, 2, 5, 8, 13, 1, 31, 64, 3, 100, 27];
const SIZES_B = [7, 9, 16];

function b64(h: string): Buffer {
  return Buffer.from(h, 'base64');
}

function options(a: BatchBuilder, b: BatchBuilder): CollectorOptions {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    max_body_bytes: 8 * 1024 * 1024,
    admin_tokens: [ADMIN_TOKEN],
    streams: [
      { match: a.stream, vkey: a.vkey },
      { match: b.stream, vkey: b.vkey },
    ],
    trust_on_first_use: false,
    hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
  };
}

function builders(): { a: BatchBuilder; b: BatchBuilder } {
  return {
    a: new BatchBuilder({ stream: 'proof-a', hmacKey: HMAC_KEY, baseTime: BASE }),
    b: new BatchBuilder({ stream: 'proof-b', hmacKey: HMAC_KEY, baseTime: BASE }),
  };
}

/** Opens a checkpoint note with the stream's key: the signature must verify. */
function openCheckpoint(note: string, vkey: string): { size: number; root: Buffer } {
  const cp = parseCheckpoint(openNote(note, [parseVerifierKey(vkey)]).text);
  return { size: cp.size, root: cp.root };
}

interface Sent {
  /** leaf hashes in seq order */
  leaves: Buffer[];
  /** tree size after each batch */
  sizes: number[];
  /** record ids by seq */
  ids: string[];
}

async function ship(url: string, builder: BatchBuilder, sizes: readonly number[], sent: Sent): Promise<void> {
  for (const n of sizes) {
    const batch = builder.next(n);
    const res = await postJson(url, batch);
    expect(res.status, res.text).toBe(200);
    for (const r of batch.records) {
      sent.leaves.push(leafHash(Buffer.from(r.canonical, 'utf8')));
      sent.ids.push((JSON.parse(r.canonical) as { id: string }).id);
    }
    sent.sizes.push(builder.seq);
  }
}

function emptySent(): Sent {
  return { leaves: [], sizes: [], ids: [] };
}

interface Backend {
  name: string;
  open(): Promise<AuditStore>;
  cleanup(): Promise<void>;
}

/** Everything that must hold on any backend that keeps records. */
function proofSuite(backend: Backend): void {
  describe(`proofs on ${backend.name}`, () => {
    let store: AuditStore;
    let running: RunningCollector;
    let url: string;
    const { a, b } = builders();
    const sentA = emptySent();
    const sentB = emptySent();

    beforeAll(async () => {
      store = await backend.open();
      running = await startCollector(options(a, b), store, memoryLogger().logger);
      url = running.url;
      // Interleaved, so the subtree tables hold two streams side by side.
      await ship(url, a, SIZES_A.slice(0, 4), sentA);
      await ship(url, b, SIZES_B.slice(0, 2), sentB);
      await ship(url, a, SIZES_A.slice(4), sentA);
      await ship(url, b, SIZES_B.slice(2), sentB);
    });
    afterAll(async () => {
      await running?.close();
      await store?.close();
      await backend.cleanup();
    });

    it('proof=true on /v1/audit: every item proves against its batch checkpoint, and matches merkle.ts', async () => {
      const res = await getJson(url, `/v1/audit?stream=${a.stream}&limit=1000&proof=true`);
      expect(res.status, res.text).toBe(200);
      const items = res.body.items as any[];
      expect(items.length).toBe(sentA.leaves.length);
      for (const item of items) {
        const seq = item.seq as number;
        const p = item.proof;
        expect(p.leaf_index).toBe(seq);
        // The covering checkpoint is the one of the record's batch.
        const batchSize = sentA.sizes.find((s) => s > seq)!;
        expect(p.tree_size).toBe(batchSize);
        const cp = openCheckpoint(p.checkpoint, a.vkey);
        expect(cp.size).toBe(p.tree_size);
        const leaf = leafHash(Buffer.from(canonicalize(item.record), 'utf8'));
        expect(leaf.toString('hex')).toBe(item.leaf_hash);
        const hashes = (p.hashes as string[]).map(b64);
        expect(verifyInclusion(leaf, seq, p.tree_size, hashes, cp.root), `seq ${seq}`).toBe(true);
        expect(hashes).toEqual(inclusionProof(sentA.leaves.slice(0, p.tree_size), seq));
      }
      // Without proof=true, no proof member.
      const plain = await getJson(url, `/v1/audit?stream=${a.stream}&limit=5`);
      expect(plain.body.items[0].proof).toBeUndefined();
    });

    it('GET /v1/audit/:id for random seqs: the record with a verifying proof', async () => {
      const rnd = prng(41);
      for (let i = 0; i < 40; i++) {
        const seq = Math.floor(rnd() * sentA.leaves.length);
        const res = await getJson(url, `/v1/audit/${sentA.ids[seq]}?proof=true`);
        expect(res.status, res.text).toBe(200);
        const [item, ...more] = res.body.items as any[];
        // Both streams' builders number ids by seq, so a low seq's id exists in both.
        for (const it of more) expect(it.stream).toBe(b.stream);
        expect(item.stream).toBe(a.stream);
        expect(item.seq).toBe(seq);
        const cp = openCheckpoint(item.proof.checkpoint, a.vkey);
        const ok = verifyInclusion(sentA.leaves[seq]!, seq, cp.size, (item.proof.hashes as string[]).map(b64), cp.root);
        expect(ok, `seq ${seq}`).toBe(true);
      }
      const noProof = await getJson(url, `/v1/audit/${sentA.ids[3]}`);
      expect(noProof.status).toBe(200);
      expect(noProof.body.items[0].proof).toBeUndefined();
    });

    it('stream B proofs are independent of stream A', async () => {
      const res = await getJson(url, `/v1/audit?stream=${b.stream}&limit=1000&proof=true`);
      expect(res.status, res.text).toBe(200);
      for (const item of res.body.items as any[]) {
        const cp = openCheckpoint(item.proof.checkpoint, b.vkey);
        expect(verifyInclusion(sentB.leaves[item.seq]!, item.seq, cp.size, item.proof.hashes.map(b64), cp.root)).toBe(true);
      }
    });

    it('unknown ids and SQL-injection strings are 404, and the store still answers', async () => {
      const bad = [
        '00000000-0000-7000-8000-000000000000',
        "' OR '1'='1",
        "x'; DROP TABLE records; --",
        '1 OR 1=1',
        '%',
        '_',
        'x'.repeat(290),
      ];
      for (const id of bad) {
        const res = await getJson(url, `/v1/audit/${encodeURIComponent(id)}`);
        expect(res.status, id).toBe(404);
        expect(res.body.error.code).toBe('record_not_found');
      }
      expect((await getJson(url, `/v1/audit/${sentA.ids[0]}`)).status).toBe(200);
      expect((await getJson(url, `/v1/audit/${sentA.ids[0]}?proof=maybe`)).status).toBe(400);
      expect((await getJson(url, `/v1/audit/${sentA.ids[0]}?limit=1`)).status).toBe(400);
      expect((await getJson(url, `/v1/audit?proof=1`)).status).toBe(400);
      expect((await getJson(url, `/v1/audit/${sentA.ids[0]}`, null)).status).toBe(401);
      expect((await getJson(url, `/v1/audit/${sentA.ids[0]}`, 'wrong-token-0123456789')).status).toBe(403);
    });

    it('consistency proofs between every pair of stored checkpoints verify', async () => {
      const sizes = sentA.sizes;
      let checked = 0;
      for (let i = 0; i < sizes.length; i++) {
        for (let j = i; j < sizes.length; j++) {
          const from = sizes[i]!;
          const to = sizes[j]!;
          const res = await getJson(url, `/v1/streams/${a.stream}/consistency?from=${from}&to=${to}`);
          expect(res.status, res.text).toBe(200);
          expect(res.body.from).toBe(from);
          expect(res.body.to).toBe(to);
          const old = openCheckpoint(res.body.from_checkpoint, a.vkey);
          const neu = openCheckpoint(res.body.to_checkpoint, a.vkey);
          expect([old.size, neu.size]).toEqual([from, to]);
          const hashes = (res.body.hashes as string[]).map(b64);
          expect(verifyConsistency(from, to, old.root, neu.root, hashes), `${from}..${to}`).toBe(true);
          expect(hashes).toEqual(consistencyProof(sentA.leaves.slice(0, to), from));
          checked++;
        }
      }
      expect(checked).toBe((sizes.length * (sizes.length + 1)) / 2);
    });

    it('consistency: bad parameters are 400, unknown stream 404', async () => {
      const sizes = sentA.sizes;
      const path = `/v1/streams/${a.stream}/consistency`;
      const cases = [
        `from=${sizes[3]}&to=${sizes[1]}`, // from > to
        `from=4&to=${sizes[3]}`, // 4 is no checkpoint size
        `from=${sizes[1]}&to=${sizes[sizes.length - 1]! + 1}`, // beyond the tree
        `from=${sizes[1]}&to=${sizes[2]! + 1}`, // inside the tree, not a checkpoint
        'from=abc&to=3',
        'from=1&to=99999999999999999999',
        'from=1&to=9007199254740993',
        'from=-1&to=3',
        'from=0&to=3',
        'from=1.5&to=3',
        `from=${sizes[1]}`,
        `to=${sizes[1]}`,
        '',
        `from=${sizes[0]}&to=${sizes[1]}&x=1`,
        `from=${sizes[0]}&from=${sizes[0]}&to=${sizes[1]}`,
        "from=1'%20OR%201=1&to=3",
      ];
      for (const qs of cases) {
        const res = await getJson(url, `${path}?${qs}`);
        expect(res.status, qs).toBe(400);
      }
      expect((await getJson(url, `/v1/streams/nope/consistency?from=1&to=3`)).status).toBe(404);
      expect((await getJson(url, `${path}?from=1&to=3`, null)).status).toBe(401);
    });

    it('GET /v1/verify re-verifies the whole stream server-side', async () => {
      const res = await getJson(url, `/v1/verify?stream=${a.stream}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({
        stream: a.stream,
        ok: true,
        tree_size: sentA.leaves.length,
        checked_records: sentA.leaves.length,
        checked_checkpoints: SIZES_A.length,
        chain_checked: true,
      });
      const rb = await getJson(url, `/v1/verify?stream=${b.stream}`);
      expect(rb.body.ok).toBe(true);
      expect(rb.body.tree_size).toBe(sentB.leaves.length);
      expect((await getJson(url, '/v1/verify')).status).toBe(400);
      expect((await getJson(url, '/v1/verify?stream=a%20b')).status).toBe(400);
      expect((await getJson(url, '/v1/verify?stream=unknown-stream')).status).toBe(404);
      expect((await getJson(url, `/v1/verify?stream=${a.stream}`, null)).status).toBe(401);
    });
  });
}

// ---------------------------------------------------------------- pure

describe('proofs.ts against merkle.ts', () => {
  function storeOf(leaves: Buffer[], keepSubtrees: boolean): SubtreeReader {
    const map = new Map<string, Buffer>();
    leaves.forEach((l, i) => map.set(subtreeKey({ level: 0, index: i }), l));
    if (keepSubtrees) {
      // Appended in uneven batches, as a store would.
      let f = Frontier.empty();
      for (let i = 0; i < leaves.length; ) {
        const n = 1 + (i % 5);
        const part = leaves.slice(i, i + n);
        for (const t of completedSubtrees(f, part)) map.set(subtreeKey(t), t.hash);
        for (const l of part) f.append(l);
        i += part.length;
      }
    }
    return async (refs) =>
      refs.flatMap((r): SubtreeHash[] => {
        const h = map.get(subtreeKey(r));
        return h ? [{ ...r, hash: h }] : [];
      });
  }

  const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

  it('completedSubtrees yields exactly the complete subtrees, with the right roots', () => {
    const all = completedSubtrees(Frontier.empty(), leaves);
    for (const t of all) {
      const span = 2 ** t.level;
      const part = leaves.slice(t.index * span, (t.index + 1) * span);
      expect(part.length).toBe(span);
      expect(t.hash).toEqual(rootFromLeafHashes(part));
    }
    // A tree of n leaves has n - popcount(n) complete subtrees above the leaves (70 = 64 + 4 + 2).
    expect(all.length).toBe(70 - 3);
    expect(new Set(all.map(subtreeKey)).size).toBe(all.length);
  });

  for (const keep of [true, false]) {
    it(`inclusion and consistency proofs equal merkle.ts for every index and size (subtrees ${keep ? 'stored' : 'rebuilt from leaves'})`, async () => {
      const read = storeOf(leaves, keep);
      for (let n = 1; n <= leaves.length; n++) {
        const prefix = leaves.slice(0, n);
        for (let m = 0; m < n; m++) {
          expect(await buildInclusionProof(m, n, read), `inclusion ${m}/${n}`).toEqual(inclusionProof(prefix, m));
        }
        for (let m = 0; m <= n; m++) {
          expect(await buildConsistencyProof(m, n, read), `consistency ${m}..${n}`).toEqual(consistencyProof(prefix, m));
        }
      }
    });
  }

  it('a proof needs O(log n) stored hashes', async () => {
    const n = 1000;
    const many = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`x ${i}`)));
    const inner = storeOf(many, true);
    let reads = 0;
    const counting: SubtreeReader = async (refs) => {
      reads += refs.length;
      return inner(refs);
    };
    for (const m of [0, 1, 499, 511, 512, 998, 999]) {
      reads = 0;
      await buildInclusionProof(m, n, counting);
      expect(reads).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n)));
    }
    for (const m of [1, 3, 100, 512, 777, 999]) {
      reads = 0;
      await buildConsistencyProof(m, n, counting);
      expect(reads).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n)));
    }
  });
});

// ---------------------------------------------------------------- sqlite

const sqliteDir = mkdtempSync(join(tmpdir(), 'sealtrail-proofs-'));
afterAll(() => rmSync(sqliteDir, { recursive: true, force: true }));

proofSuite({
  name: 'sqlite',
  open: async () => new SqliteAuditStore(join(sqliteDir, 'main.db')),
  cleanup: async () => {},
});

describe('sqlite: tampering found by /v1/verify', () => {
  const { a, b } = builders();
  const sent = emptySent();
  let master: string;

  beforeAll(async () => {
    master = join(sqliteDir, 'tamper-master.db');
    const store = new SqliteAuditStore(master);
    const c = await startCollector(options(a, b), store, memoryLogger().logger);
    await ship(c.url, a, SIZES_A, sent);
    await c.close();
    await store.close();
  });

  /** A copy of the store with the append-only triggers dropped and `sql` applied. */
  function tamperedCopy(name: string, sql: string): string {
    const path = join(sqliteDir, `${name}.db`);
    const src = new Database(master, { readonly: true });
    src.exec(`VACUUM INTO '${path}'`);
    src.close();
    const db = new Database(path);
    db.exec(`DROP TRIGGER records_no_update; DROP TRIGGER subtrees_no_update; ${sql}`);
    db.close();
    return path;
  }

  async function verifyCopy(path: string, stream = a.stream): Promise<any> {
    const store = new SqliteAuditStore(path);
    const c = await startCollector(options(a, b), store, memoryLogger().logger);
    try {
      const res = await getJson(c.url, `/v1/verify?stream=${stream}`);
      expect(res.status, res.text).toBe(200);
      return res.body;
    } finally {
      await c.close();
      await store.close();
    }
  }

  it('the untouched copy verifies', async () => {
    // Every complete subtree above the leaves is stored: n - popcount(n) rows (255 = 0b11111111).
    const db = new Database(master, { readonly: true });
    const n = (db.prepare('SELECT count(*) AS n FROM subtrees WHERE stream = ?').get(a.stream) as { n: number }).n;
    db.close();
    expect(sent.leaves.length).toBe(255);
    expect(n).toBe(255 - 8);
    const body = await verifyCopy(tamperedCopy('clean', 'SELECT 1;'));
    expect(body.ok).toBe(true);
  });

  it('an edited record is reported at its seq (leaf mismatch)', async () => {
    const seq = 77;
    const path = tamperedCopy(
      'edited',
      `UPDATE records SET canonical = replace(canonical, '"query ${seq}"', '"query 0"') WHERE stream = '${a.stream}' AND seq = ${seq};`,
    );
    const body = await verifyCopy(path);
    expect(body.ok).toBe(false);
    expect(body.first_failure).toMatchObject({ code: 'leaf_mismatch', seq });
    expect(body.checked_records).toBe(seq);
  });

  it('an edited record with a recomputed leaf hash breaks the chain', async () => {
    const seq = 40;
    const db = new Database(master, { readonly: true });
    const row = db.prepare('SELECT canonical FROM records WHERE stream = ? AND seq = ?').get(a.stream, seq) as { canonical: string };
    db.close();
    const forged = canonicalize({ ...JSON.parse(row.canonical), outcome: 'denied' });
    const leaf = leafHash(Buffer.from(forged, 'utf8')).toString('hex');
    const path = tamperedCopy(
      'forged',
      `UPDATE records SET canonical = '${forged.replace(/'/g, "''")}', leaf = X'${leaf}' WHERE stream = '${a.stream}' AND seq = ${seq};`,
    );
    const body = await verifyCopy(path);
    expect(body.ok).toBe(false);
    // The HMAC chain (key held) fails at the record itself.
    expect(body.first_failure).toMatchObject({ code: 'chain_broken', seq });
  });

  it('an altered stored subtree hash is reported', async () => {
    const path = tamperedCopy(
      'subtree',
      `UPDATE subtrees SET hash = zeroblob(32) WHERE stream = '${a.stream}' AND level = 3 AND idx = 5;`,
    );
    const body = await verifyCopy(path);
    expect(body.ok).toBe(false);
    expect(body.first_failure).toMatchObject({ code: 'subtree_mismatch', seq: 40 });
  });
});

describe('sqlite: a store written before subtrees were kept still gives proofs', () => {
  it('proofs over old (rebuilt) and new (stored) parts verify', async () => {
    const { a, b } = builders();
    const sent = emptySent();
    const path = join(sqliteDir, 'legacy.db');
    const first = new SqliteAuditStore(path);
    let c = await startCollector(options(a, b), first, memoryLogger().logger);
    await ship(c.url, a, SIZES_A.slice(0, 6), sent);
    await c.close();
    await first.close();
    // As if written before schema version 3: no subtree rows for this part.
    const raw = new Database(path);
    raw.exec(`DROP TRIGGER subtrees_no_delete; DELETE FROM subtrees;
      CREATE TRIGGER subtrees_no_delete BEFORE DELETE ON subtrees BEGIN SELECT RAISE(ABORT, 'append-only'); END;`);
    raw.close();

    const store = new SqliteAuditStore(path);
    c = await startCollector(options(a, b), store, memoryLogger().logger);
    try {
      await ship(c.url, a, SIZES_A.slice(6), sent);
      const res = await getJson(c.url, `/v1/audit?stream=${a.stream}&limit=1000&proof=true`);
      expect(res.status, res.text).toBe(200);
      for (const item of res.body.items as any[]) {
        const cp = openCheckpoint(item.proof.checkpoint, a.vkey);
        expect(verifyInclusion(sent.leaves[item.seq]!, item.seq, cp.size, item.proof.hashes.map(b64), cp.root)).toBe(true);
      }
      const from = sent.sizes[2]!;
      const to = sent.sizes[sent.sizes.length - 1]!;
      const cons = await getJson(c.url, `/v1/streams/${a.stream}/consistency?from=${from}&to=${to}`);
      expect(cons.status, cons.text).toBe(200);
      const o = openCheckpoint(cons.body.from_checkpoint, a.vkey);
      const n = openCheckpoint(cons.body.to_checkpoint, a.vkey);
      expect(verifyConsistency(from, to, o.root, n.root, cons.body.hashes.map(b64))).toBe(true);
      const v = await getJson(c.url, `/v1/verify?stream=${a.stream}`);
      expect(v.body.ok).toBe(true);
    } finally {
      await c.close();
      await store.close();
    }
  });
});

// ---------------------------------------------------------------- postgres

let pgDb: TestDatabase | undefined;
proofSuite({
  name: 'postgres',
  open: async () => {
    pgDb = await createTestDatabase();
    return openPostgresStore({ url: pgDb.appUrl, migrateUrl: pgDb.ownerUrl, poolSize: 4 });
  },
  cleanup: async () => {
    if (!pgDb) return;
    const admin = await pgDb.connect('admin');
    try {
      // The app role may read and append the subtree table, never change it.
      const { rows } = await admin.query(
        `SELECT has_table_privilege($1, 'sealtrail.subtrees', 'SELECT') AS s,
                has_table_privilege($1, 'sealtrail.subtrees', 'INSERT') AS i,
                has_table_privilege($1, 'sealtrail.subtrees', 'UPDATE') AS u,
                has_table_privilege($1, 'sealtrail.subtrees', 'DELETE') AS d,
                (SELECT count(*)::int FROM sealtrail.subtrees) AS n`,
        [pgDb.app],
      );
      expect(rows[0]).toMatchObject({ s: true, i: true, u: false, d: false });
      expect(rows[0].n).toBeGreaterThan(0);
      // Even the owner cannot change a stored subtree: the trigger refuses.
      const owner = await pgDb.connect('owner');
      try {
        await expect(owner.query('UPDATE sealtrail.subtrees SET hash = hash')).rejects.toThrow(/append-only/);
        await expect(owner.query('DELETE FROM sealtrail.subtrees')).rejects.toThrow(/append-only/);
      } finally {
        await owner.end();
      }
    } finally {
      await admin.end();
      await pgDb.drop();
    }
  },
});

// ---------------------------------------------------------------- null store

describe('null store: proofs unavailable', () => {
  it('record, consistency and verify routes answer 501 proofs_unavailable', async () => {
    const { a, b } = builders();
    const store = new NullAuditStore();
    const c = await startCollector(options(a, b), store, memoryLogger().logger);
    try {
      const batch = a.next(3);
      expect((await postJson(c.url, batch)).status).toBe(200);
      for (const path of [
        `/v1/audit/${(JSON.parse(batch.records[0]!.canonical) as { id: string }).id}`,
        `/v1/streams/${a.stream}/consistency?from=3&to=3`,
        `/v1/verify?stream=${a.stream}`,
      ]) {
        const res = await getJson(c.url, path);
        expect(res.status, path).toBe(501);
        expect(res.body.error.code).toBe('proofs_unavailable');
      }
      // proof=true over an empty page has nothing to prove.
      expect((await getJson(c.url, '/v1/audit?proof=true')).status).toBe(200);
    } finally {
      await c.close();
      await store.close();
    }
  });
});
