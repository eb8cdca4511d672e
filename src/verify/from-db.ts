import type Database from 'better-sqlite3';
import { BufferError } from '../core/errors.js';
import { Frontier } from '../core/merkle.js';
import { openDatabase } from '../sqlite/open.js';
import type { EvidenceRecord, StreamBase } from './verify-stream.js';

export interface StreamEvidence {
  stream: string;
  records: Iterable<EvidenceRecord>;
  checkpoints: { note: string; label: string }[];
  base?: StreamBase;
}

export type DbKind = 'sidecar-buffer' | 'collector-store';

function tables(db: Database.Database): Set<string> {
  const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

/**
 * Reads verification evidence out of a sidecar buffer or a collector SQLite
 * store, read-only. Record rows are streamed (iterate), so a large store does
 * not have to fit in memory.
 */
export function openEvidenceDb(path: string): { kind: DbKind; streams: StreamEvidence[]; close(): void } {
  const db = openDatabase(path, { readonly: true });
  const t = tables(db);
  if (t.has('acks') && t.has('meta')) return { kind: 'sidecar-buffer', streams: [bufferEvidence(db)], close: () => db.close() };
  if (t.has('stream_heads') && t.has('records')) return { kind: 'collector-store', streams: storeEvidence(db), close: () => db.close() };
  db.close();
  throw new BufferError('db_unknown', `${path} is neither a sealtrail sidecar buffer nor a collector store`);
}

function bufferEvidence(db: Database.Database): StreamEvidence {
  const stream = (db.prepare("SELECT value FROM meta WHERE key = 'stream'").get() as { value: string }).value;
  const batches = db.prepare('SELECT * FROM batches ORDER BY batch').all() as Array<{
    batch: number;
    last_seq: number;
    tree_size: number;
    frontier: Buffer;
    chain_head: Buffer;
    checkpoint: string;
  }>;
  // Records of acknowledged batches have left the buffer; the oldest batch row
  // still here carries the frontier and chain head to continue from.
  const first = db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number | null };
  let base: StreamBase | undefined;
  const startSeq = first.s ?? (batches.length ? batches[batches.length - 1]!.last_seq + 1 : 0);
  const anchor = batches.filter((b) => b.last_seq === startSeq - 1).pop();
  if (startSeq > 0) {
    if (!anchor) {
      throw new BufferError('buffer_no_anchor', `buffer starts at seq ${startSeq} but holds no batch ending at ${startSeq - 1}`);
    }
    base = { size: anchor.tree_size, frontier: Frontier.fromBytes(anchor.tree_size, anchor.frontier), prevMac: anchor.chain_head };
  }
  const stmt = db.prepare('SELECT seq, canonical, leaf, mac, key_id FROM records ORDER BY seq');
  const records: Iterable<EvidenceRecord> = {
    *[Symbol.iterator]() {
      for (const r of stmt.iterate() as Iterable<{ seq: number; canonical: string; leaf: Buffer; mac: Buffer; key_id: string }>) {
        yield { seq: r.seq, canonical: r.canonical, leaf: r.leaf, mac: r.mac, keyId: r.key_id };
      }
    },
  };
  const ev: StreamEvidence = {
    stream,
    records,
    checkpoints: batches.map((b) => ({ note: b.checkpoint, label: `checkpoint of batch ${b.batch}` })),
  };
  if (base) ev.base = base;
  return ev;
}

function storeEvidence(db: Database.Database): StreamEvidence[] {
  const streams = db.prepare('SELECT DISTINCT stream FROM stream_heads ORDER BY stream').all() as { stream: string }[];
  const recordStmt = db.prepare('SELECT seq, canonical, leaf, mac, key_id FROM records WHERE stream = ? ORDER BY seq');
  const cpStmt = db.prepare('SELECT batch, note FROM checkpoints WHERE stream = ? ORDER BY batch');
  return streams.map(({ stream }) => ({
    stream,
    records: {
      *[Symbol.iterator]() {
        for (const r of recordStmt.iterate(stream) as Iterable<{ seq: number; canonical: string; leaf: Buffer; mac: string; key_id: string }>) {
          yield { seq: r.seq, canonical: r.canonical, leaf: r.leaf, mac: Buffer.from(r.mac, 'hex'), keyId: r.key_id };
        }
      },
    },
    checkpoints: (cpStmt.all(stream) as { batch: number; note: string }[]).map((c) => ({
      note: c.note,
      label: `checkpoint of batch ${c.batch}`,
    })),
  }));
}
