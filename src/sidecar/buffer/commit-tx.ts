/**
 * The transaction of AuditBuffer.commit(): records, their event keys,
 * quarantine rows and the source position, all or nothing (the buffer's
 * first contract, buffer.ts). Built once per buffer: better-sqlite3 builds
 * four wrapper functions on every db.transaction() call, and the commit
 * path runs once per group of lines.
 */
import type Database from 'better-sqlite3';
import { canonicalWireBytes } from '../../core/wire-limits.js';
import type { PositionRow, PreparedRecord, QuarantineRow } from './rows.js';

/** Runs the transaction; returns the canonical bytes of the records written. */
export type CommitTransaction = (
  records: readonly PreparedRecord[],
  sizes: readonly number[],
  quarantine: readonly QuarantineRow[],
  position: PositionRow | undefined,
  now: string,
) => number;

export interface CommitStatements {
  insertRecord: Database.Statement;
  insertEventKey: Database.Statement;
  insertQuarantine: Database.Statement;
  upsertPosition: Database.Statement;
}

export function commitTransaction(db: Database.Database, st: CommitStatements): CommitTransaction {
  return db.transaction((records: readonly PreparedRecord[], sizes: readonly number[], quarantine: readonly QuarantineRow[], position: PositionRow | undefined, now: string) => {
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const size = sizes[i]!;
      bytes += size;
      const wire = r.wireBytes ?? canonicalWireBytes(r.canonical, size);
      st.insertRecord.run(r.seq, r.id, r.canonical, r.leaf, r.mac, r.keyId, size, wire, r.receivedAt);
      if (r.eventKey) st.insertEventKey.run(r.eventKey, r.seq);
    }
    for (const q of quarantine) st.insertQuarantine.run(q.source, q.path, q.fileKey, q.offset, q.length, q.reason, q.message, now, q.field ?? null);
    if (position) st.upsertPosition.run(position.source, position.key, position.path, position.offset, position.fingerprint, now);
    return bytes;
  });
}
