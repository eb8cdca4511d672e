import type Database from 'better-sqlite3';
import { CHAIN_GENESIS } from '../../core/chain.js';
import { formatCheckpoint, originForStream } from '../../core/checkpoint.js';
import { BufferError } from '../../core/errors.js';
import { Frontier } from '../../core/merkle.js';
import { signNote, type NoteSigner } from '../../core/note.js';
import type { SealedBatch, WireRecord } from '../../core/types.js';
import { CONFIG_STREAM_ID } from '../../core/wire-ids.js';
import {
  BATCH_ENVELOPE_BYTES,
  MAX_RECORD_WIRE_BYTES,
  RECORD_ENVELOPE_BYTES,
} from '../../core/wire-limits.js';
import { migrate, openDatabase } from '../../sqlite/open.js';
import { commitTransaction, type CommitTransaction } from './commit-tx.js';
import { DiskSpaceGuard } from './disk-space.js';
import { MIGRATIONS } from './migrations.js';
import { toBatchRow, type BatchRow, type ChainCursor, type PositionRow, type PreparedRecord, type QuarantineRow, type RawBatch } from './rows.js';

export type { BatchRow, ChainCursor, PositionRow, PreparedRecord, QuarantineRow } from './rows.js';

const STREAM_ID = new RegExp(CONFIG_STREAM_ID);

/**
 * Event ids are remembered for the last this-many records of the stream:
 * a client resends what it got no answer for as soon as it reconnects, so
 * a duplicate arrives within seconds, long before a hundred thousand other
 * records; the table stays a few megabytes.
 */
export const EVENT_KEYS_KEPT = 100_000;

/**
 * The sidecar's local SQLite WAL buffer: the only place records live between
 * being read and being acknowledged by the collector.
 *
 * Contracts:
 * - commit() writes records, quarantine rows and the source position they were
 *   read up to in ONE transaction, so after any crash the position and the
 *   records agree (nothing lost, nothing duplicated).
 * - Records leave only through ack(), after the collector acknowledged the
 *   batch that holds them; the triggers in migrations.ts refuse any other
 *   deletion or any update.
 * - A record's event_id key is written in the same transaction as the
 *   record, so after a crash between commit and answer the resent event is
 *   found (seqOfEvent) and not stored twice.
 * - The buffer never fills its disk by itself: commit() refuses new records
 *   (error code `buffer_disk_low`, a disk-full error for the sidecar) while
 *   the free space would not let a WAL checkpoint and the acknowledgement of
 *   the batches finish. Otherwise a buffer that filled its disk could never
 *   record an ack (an ack writes WAL frames too) nor checkpoint, so it could
 *   never free space, even with the collector back. See disk-space.ts.
 */
export class AuditBuffer {
  readonly db: Database.Database;
  readonly stream: string;
  readonly path: string;
  /** true when open() created this buffer (and so this stream) just now */
  readonly created: boolean;
  private cursor: ChainCursor;
  private sealedThrough: number; // highest sealed seq, -1 when none
  private frontier: Frontier;
  private nextBatch: number;
  private lastCheckpoint: string | null;
  private recordCount: number;
  private byteCount: number;
  private readonly disk: DiskSpaceGuard;
  private readonly commitTx: CommitTransaction;

  private readonly stmts: {
    insertRecord: Database.Statement;
    upsertPosition: Database.Statement;
    getPosition: Database.Statement;
    insertQuarantine: Database.Statement;
    unsealed: Database.Statement;
    insertBatch: Database.Statement;
    nextToShip: Database.Statement;
    batchRecords: Database.Statement;
    insertAck: Database.Statement;
    deleteRecords: Database.Statement;
    deleteSuperseded: Database.Statement;
    rangeSize: Database.Statement;
    oldestRecord: Database.Statement;
    quarantineCount: Database.Statement;
    insertEventKey: Database.Statement;
    seqOfEventKey: Database.Statement;
    pruneEventKeys: Database.Statement;
  };

  private constructor(
    db: Database.Database,
    path: string,
    stream: string,
    created: boolean,
    private readonly eventKeysKept: number,
  ) {
    this.db = db;
    this.created = created;
    this.path = path;
    this.stream = stream;
    this.stmts = {
      insertRecord: db.prepare(
        'INSERT INTO records (seq, id, canonical, leaf, mac, key_id, bytes, wire_bytes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      upsertPosition: db.prepare(
        `INSERT INTO positions (source, key, path, offset, fingerprint, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (source, key) DO UPDATE SET path = excluded.path, offset = excluded.offset,
           fingerprint = excluded.fingerprint, updated_at = excluded.updated_at`,
      ),
      getPosition: db.prepare('SELECT source, key, path, offset, fingerprint FROM positions WHERE source = ? AND key = ?'),
      insertQuarantine: db.prepare(
        'INSERT INTO quarantine (source, path, file_key, offset, length, reason, message, at, field) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      unsealed: db.prepare('SELECT seq, leaf, mac, key_id, bytes, wire_bytes FROM records WHERE seq > ? ORDER BY seq LIMIT ?'),
      insertBatch: db.prepare(
        `INSERT INTO batches (batch, first_seq, last_seq, tree_size, frontier, chain_head, key_id, checkpoint, prev_checkpoint, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      nextToShip: db.prepare(
        'SELECT * FROM batches WHERE batch NOT IN (SELECT batch FROM acks) ORDER BY batch LIMIT 1',
      ),
      batchRecords: db.prepare(
        'SELECT seq, canonical, mac, key_id FROM records WHERE seq BETWEEN ? AND ? ORDER BY seq',
      ),
      insertAck: db.prepare('INSERT OR IGNORE INTO acks (batch, acked_at) VALUES (?, ?)'),
      deleteRecords: db.prepare('DELETE FROM records WHERE seq BETWEEN ? AND ?'),
      deleteSuperseded: db.prepare(
        'DELETE FROM batches WHERE batch < ? AND batch IN (SELECT batch FROM acks)',
      ),
      rangeSize: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM records WHERE seq BETWEEN ? AND ?'),
      oldestRecord: db.prepare('SELECT received_at FROM records ORDER BY seq LIMIT 1'),
      quarantineCount: db.prepare('SELECT COUNT(*) AS n FROM quarantine'),
      insertEventKey: db.prepare('INSERT INTO event_ids (key, seq) VALUES (?, ?)'),
      seqOfEventKey: db.prepare('SELECT seq FROM event_ids WHERE key = ?').pluck(),
      pruneEventKeys: db.prepare('DELETE FROM event_ids WHERE seq < ?'),
    };

    this.commitTx = commitTransaction(db, this.stmts);

    const last = db.prepare('SELECT * FROM batches ORDER BY batch DESC LIMIT 1').get() as RawBatch | undefined;
    this.sealedThrough = last ? last.last_seq : -1;
    this.frontier = last ? Frontier.fromBytes(last.tree_size, last.frontier) : Frontier.empty();
    this.nextBatch = last ? last.batch + 1 : 0;
    this.lastCheckpoint = last ? last.checkpoint : null;
    const head = db.prepare('SELECT seq, mac FROM records ORDER BY seq DESC LIMIT 1').get() as
      | { seq: number; mac: Buffer }
      | undefined;
    if (head) {
      this.cursor = { nextSeq: head.seq + 1, prevMac: head.mac };
    } else if (last) {
      this.cursor = { nextSeq: last.last_seq + 1, prevMac: last.chain_head };
    } else {
      this.cursor = { nextSeq: 0, prevMac: CHAIN_GENESIS };
    }
    const counts = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM records').get() as {
      n: number;
      b: number;
    };
    this.recordCount = counts.n;
    this.byteCount = counts.b;
    const unacked = db
      .prepare(
        `SELECT COALESCE(MAX((SELECT COALESCE(SUM(r.bytes), 0) FROM records r WHERE r.seq BETWEEN b.first_seq AND b.last_seq)), 0) AS m
         FROM batches b WHERE b.batch NOT IN (SELECT batch FROM acks)`,
      )
      .get() as { m: number };
    this.disk = new DiskSpaceGuard(db, path, unacked.m);
  }

  /**
   * Opens (creating if needed) the buffer at `path`. A new buffer is a new
   * stream: `newStreamId` is called only when the file has none yet. If
   * `expectStream` is given it must match the stored id.
   */
  static open(path: string, opts: { newStreamId: () => string; expectStream?: string; eventKeysKept?: number }): AuditBuffer {
    const db = openDatabase(path);
    try {
      migrate(db, MIGRATIONS);
      let row = db.prepare("SELECT value FROM meta WHERE key = 'stream'").get() as { value: string } | undefined;
      const created = !row;
      if (!row) {
        const id = opts.newStreamId();
        if (!STREAM_ID.test(id)) throw new BufferError('stream_id_invalid', `stream id must match ${STREAM_ID}`);
        const now = new Date().toISOString();
        db.transaction(() => {
          db.prepare("INSERT INTO meta (key, value) VALUES ('stream', ?), ('created_at', ?)").run(id, now);
        })();
        row = { value: id };
      }
      if (opts.expectStream !== undefined && opts.expectStream !== row.value) {
        throw new BufferError(
          'buffer_stream_mismatch',
          `buffer ${path} belongs to stream ${row.value}, but the config asks for ${opts.expectStream}; a new stream needs a new buffer`,
        );
      }
      return new AuditBuffer(db, path, row.value, created, opts.eventKeysKept ?? EVENT_KEYS_KEPT);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  chainCursor(): ChainCursor {
    return { nextSeq: this.cursor.nextSeq, prevMac: this.cursor.prevMac };
  }

  getPosition(source: string, key: string): PositionRow | undefined {
    return this.stmts.getPosition.get(source, key) as PositionRow | undefined;
  }

  /**
   * Persists records (which must continue the chain cursor exactly), quarantine
   * rows and the source position in one durable transaction.
   */
  commit(records: readonly PreparedRecord[], position?: PositionRow, quarantine: readonly QuarantineRow[] = []): void {
    let expected = this.cursor.nextSeq;
    for (const r of records) {
      if (r.seq !== expected) {
        throw new BufferError('seq_gap', `record seq ${r.seq} does not continue the stream at ${expected}`);
      }
      expected++;
    }
    const sizes = records.map((r) => r.bytes ?? Buffer.byteLength(r.canonical));
    this.disk.ensureRoom(this.disk.commitCost(sizes, quarantine.length), this.recordCount);
    const now = new Date().toISOString();
    let bytes = 0;
    this.disk.write(() => {
      bytes = this.commitTx(records, sizes, quarantine, position, now);
    }, false);
    const last = records[records.length - 1];
    if (last) this.cursor = { nextSeq: last.seq + 1, prevMac: last.mac };
    this.recordCount += records.length;
    this.byteCount += bytes;
  }

  unsealedCount(): number {
    return this.cursor.nextSeq - 1 - this.sealedThrough;
  }

  /**
   * Seals up to maxRecords unsealed records into the next batch with a signed
   * checkpoint, stopping before the batch's body (wireBatch as JSON) would
   * pass maxBodyBytes (config keeps it at least MIN_BODY_BYTES, so that any
   * record fits; a smaller one means a record per batch). A record over the wire
   * limit (only a buffer written before the limit existed can hold one) is
   * sealed alone, so a collector's refusal of it never holds back the good
   * records sealed before it. Returns the batch row or null when nothing is
   * unsealed.
   */
  seal(signer: NoteSigner, maxRecords: number, maxBodyBytes: number): BatchRow | null {
    if (this.unsealedCount() <= 0) return null;
    const rows = this.stmts.unsealed.all(this.sealedThrough, maxRecords) as Array<{
      seq: number;
      leaf: Buffer;
      mac: Buffer;
      key_id: string;
      bytes: number;
      wire_bytes: number | null;
    }>;
    if (rows.length === 0) return null;
    const frontier = this.frontier.clone();
    const budget = maxBodyBytes - BATCH_ENVELOPE_BYTES;
    let bytes = 0;
    let wire = 0;
    let taken = 0;
    for (const r of rows) {
      const w = (r.wire_bytes ?? 2 * r.bytes + 2) + RECORD_ENVELOPE_BYTES;
      const alone = w > MAX_RECORD_WIRE_BYTES + RECORD_ENVELOPE_BYTES;
      if (taken > 0 && (wire + w > budget || alone)) break;
      frontier.append(r.leaf);
      bytes += r.bytes;
      wire += w;
      taken++;
      if (alone) break;
    }
    const lastRow = rows[taken - 1]!;
    const firstSeq = rows[0]!.seq;
    if (firstSeq !== this.sealedThrough + 1) {
      throw new BufferError('seq_gap', `unsealed records start at ${firstSeq}, expected ${this.sealedThrough + 1}`);
    }
    const text = formatCheckpoint({
      origin: originForStream(this.stream),
      size: frontier.size,
      root: frontier.root(),
      extensions: [],
    });
    const note = signNote(text, [signer]);
    const row: BatchRow = {
      batch: this.nextBatch,
      firstSeq,
      lastSeq: lastRow.seq,
      treeSize: frontier.size,
      chainHead: lastRow.mac,
      keyId: lastRow.key_id,
      checkpoint: note,
      prevCheckpoint: this.lastCheckpoint,
      createdAt: new Date().toISOString(),
    };
    this.disk.write(() => this.db.transaction(() => {
      this.stmts.insertBatch.run(
        row.batch,
        row.firstSeq,
        row.lastSeq,
        row.treeSize,
        frontier.toBytes(),
        row.chainHead,
        row.keyId,
        row.checkpoint,
        row.prevCheckpoint,
        row.createdAt,
      );
    })(), true);
    this.disk.sealed(bytes);
    this.frontier = frontier;
    this.sealedThrough = row.lastSeq;
    this.nextBatch++;
    this.lastCheckpoint = note;
    return row;
  }

  /** The oldest sealed batch the collector has not acknowledged. */
  nextToShip(): BatchRow | undefined {
    const r = this.stmts.nextToShip.get() as RawBatch | undefined;
    return r ? toBatchRow(r) : undefined;
  }

  wireBatch(row: BatchRow, vkey?: string): SealedBatch & { vkey?: string } {
    const recs = this.stmts.batchRecords.all(row.firstSeq, row.lastSeq) as Array<{
      seq: number;
      canonical: string;
      mac: Buffer;
      key_id: string;
    }>;
    if (recs.length !== row.lastSeq - row.firstSeq + 1) {
      throw new BufferError(
        'batch_incomplete',
        `batch ${row.batch} should hold seq ${row.firstSeq}..${row.lastSeq} but the buffer has ${recs.length} of them`,
      );
    }
    const records: WireRecord[] = recs.map((r) => ({
      seq: r.seq,
      canonical: r.canonical,
      mac: r.mac.toString('hex'),
      key_id: r.key_id,
    }));
    const body: SealedBatch & { vkey?: string } = {
      v: 1,
      stream: this.stream,
      batch: row.batch,
      first_seq: row.firstSeq,
      last_seq: row.lastSeq,
      records,
      chain_head: row.chainHead.toString('hex'),
      prev_checkpoint: row.prevCheckpoint,
      checkpoint: row.checkpoint,
    };
    if (vkey !== undefined) body.vkey = vkey;
    return body;
  }

  /**
   * The collector acknowledged `row`: record the ack, then delete its records
   * and any older batch rows, all in one transaction. This is the only path by
   * which anything leaves the buffer.
   */
  ack(row: BatchRow): void {
    let freedBytes = 0;
    let freed = 0;
    this.disk.write(() => this.db.transaction(() => {
      this.stmts.insertAck.run(row.batch, new Date().toISOString());
      const r = this.stmts.rangeSize.get(row.firstSeq, row.lastSeq) as { n: number; b: number };
      freed = r.n;
      freedBytes = r.b;
      this.stmts.deleteRecords.run(row.firstSeq, row.lastSeq);
      this.stmts.deleteSuperseded.run(row.batch);
      this.stmts.pruneEventKeys.run(row.lastSeq + 1 - this.eventKeysKept);
    })(), true);
    this.recordCount -= freed;
    this.byteCount -= freedBytes;
    this.disk.acked();
  }

  /** The seq a record with this event key was stored as, while its key is kept (the last EVENT_KEYS_KEPT records, counted at each ack). */
  seqOfEvent(key: Buffer): number | undefined {
    return this.stmts.seqOfEventKey.get(key) as number | undefined;
  }

  stats(): { records: number; bytes: number; unsealed: number; nextSeq: number; nextBatch: number } {
    return {
      records: this.recordCount,
      bytes: this.byteCount,
      unsealed: this.unsealedCount(),
      nextSeq: this.cursor.nextSeq,
      nextBatch: this.nextBatch,
    };
  }

  /** received_at of the oldest record still waiting for an acknowledgement. */
  oldestUnacked(): string | undefined {
    const r = this.stmts.oldestRecord.get() as
      | { received_at: string }
      | undefined;
    return r?.received_at;
  }

  quarantineCount(): number {
    return (this.stmts.quarantineCount.get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
