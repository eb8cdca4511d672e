import type Database from 'better-sqlite3';
import { BufferError } from '../../core/errors.js';
import type { SubtreeHash, SubtreeRef } from '../proofs.js';
import { migrate, openDatabase, type Migration } from '../../sqlite/open.js';
import { FILTER_COLUMNS, filtersCanMatch } from './record-fields.js';
import {
  HEAD_COLUMNS,
  RECORD_COLUMNS,
  batchSubtrees,
  checkAppendInput,
  streamSummaryOf,
  toCheckpointRow,
  toRecordRow,
  toStoredBatch,
  toStreamState,
  type BatchDbRow,
  type CheckpointDbRow,
  type HeadRow,
  type RecordDbRow,
  type StreamHeadColumns,
} from './shared.js';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.js';
import {
  StoreConflictError,
  StoreError,
  pageStreamRecords,
  type AppendBatchInput,
  type AuditStore,
  type CheckpointRow,
  type RecordQuery,
  type RecordRow,
  type StoredBatch,
  type StreamState,
  type StreamSummary,
} from './types.js';

export interface SqliteStoreOptions {
  /** how long a writer waits for another process's lock (default 5000 ms) */
  busy_timeout_ms?: number;
  /** for tests of newer schemas; defaults to the built-in list */
  migrations?: readonly Migration[];
}

const MAX_CACHED_QUERIES = 256;
/** WAL pages after which a commit checkpoints (SQLite's default is 1,000). */
export const WAL_AUTOCHECKPOINT_PAGES = 10_000;

export class SqliteAuditStore implements AuditStore {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stmts;
  private readonly queryCache = new Map<string, Database.Statement>();
  private readonly appendTx: Database.Transaction<(input: AppendBatchInput) => void>;
  private closed = false;

  /** Opens (creating if needed) and migrates the database file; synchronous. */
  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.path = path;
    // openDatabase: mkdir, WAL, synchronous=FULL (an acknowledged batch is a
    // promise to the sidecar, which then deletes its copy), busy_timeout.
    const db = openDatabase(path);
    this.db = db;
    try {
      if (opts.busy_timeout_ms !== undefined) {
        db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(opts.busy_timeout_ms))}`);
      }
      const mode = db.pragma('journal_mode', { simple: true });
      if (path !== ':memory:' && String(mode).toLowerCase() !== 'wal') {
        throw new StoreError('store_open_failed', `${path}: cannot enable WAL (journal_mode is ${String(mode)})`);
      }
      // Index pages of recent time ranges stay hot across batches.
      db.pragma('cache_size = -65536');
      // A checkpoint copies each page in the WAL back into the database
      // file once, however many commits changed it. A filter index with many
      // distinct values (trace ids) has most of its leaf pages changed by
      // every batch, so checkpointing after some ten batches of 1,000
      // records rather than after each (SQLite's default threshold) copies
      // those pages up to ten times less often (bench/collector-ingest.ts
      // measures it). Durability is the WAL's, which synchronous=FULL
      // syncs at every commit, so it is unchanged; the price is a WAL file
      // of up to ~40 MiB (4 KiB pages) plus the last transaction.
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      try {
        migrate(db, opts.migrations ?? SQLITE_MIGRATIONS);
      } catch (err) {
        // An older build must not write into a schema it does not understand.
        if (err instanceof BufferError && err.code === 'schema_too_new') {
          throw new StoreError('store_schema_newer', err.message, { cause: err });
        }
        throw err;
      }
    } catch (err) {
      db.close();
      throw err;
    }

    this.stmts = {
      head: db.prepare(
        `SELECT ${HEAD_COLUMNS} FROM stream_heads WHERE stream = ? ORDER BY next_batch DESC LIMIT 1`,
      ),
      insertHead: db.prepare(
        `INSERT INTO stream_heads (${HEAD_COLUMNS}, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertBatch: db.prepare(
        `INSERT INTO batches (stream, batch, first_seq, last_seq, checkpoint, digest, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertCheckpoint: db.prepare(
        `INSERT INTO checkpoints (stream, batch, tree_size, note, received_at) VALUES (?, ?, ?, ?, ?)`,
      ),
      insertRecord: db.prepare(
        `INSERT INTO records (stream, seq, batch, id, time, time_key, received_at, tenant, actor_id, event_type,
           tool, outcome, model, trace_id, session_id, agent_id, resource_id, resource_type, approval,
           data_classification, canonical, leaf, mac, key_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      getBatch: db.prepare(
        `SELECT stream, batch, first_seq, last_seq, checkpoint, digest, received_at
         FROM batches WHERE stream = ? AND batch = ?`,
      ),
      checkpoints: db.prepare(
        `SELECT batch, tree_size, note, received_at FROM checkpoints
         WHERE stream = ? AND batch >= ? ORDER BY batch LIMIT ?`,
      ),
      streams: db.prepare(
        `SELECT h.stream, h.next_batch, h.tree_size, h.last_checkpoint, h.chain_key_id, h.pinned_vkey
         FROM stream_heads h
         JOIN (SELECT stream, MAX(next_batch) AS nb FROM stream_heads GROUP BY stream) m
           ON h.stream = m.stream AND h.next_batch = m.nb
         ORDER BY h.stream`,
      ),
      streamRecords: db.prepare(
        `SELECT ${RECORD_COLUMNS} FROM records WHERE stream = ? AND seq >= ? ORDER BY seq LIMIT ?`,
      ),
      insertSubtree: db.prepare(`INSERT INTO subtrees (stream, level, idx, hash) VALUES (?, ?, ?, ?)`),
      subtree: db.prepare(`SELECT hash FROM subtrees WHERE stream = ? AND level = ? AND idx = ?`),
      leaf: db.prepare(`SELECT leaf FROM records WHERE stream = ? AND seq = ?`),
      byId: db.prepare(`SELECT ${RECORD_COLUMNS} FROM records WHERE id = ? ORDER BY stream, seq LIMIT ?`),
      checkpointCovering: db.prepare(
        `SELECT batch, tree_size, note, received_at FROM checkpoints
         WHERE stream = ? AND tree_size > ? ORDER BY tree_size, batch LIMIT 1`,
      ),
      checkpointBySize: db.prepare(
        `SELECT batch, tree_size, note, received_at FROM checkpoints
         WHERE stream = ? AND tree_size = ? ORDER BY batch LIMIT 1`,
      ),
    };

    const s = this.stmts;
    this.appendTx = db.transaction((input: AppendBatchInput) => {
      // Optimistic check inside the write transaction: another process may
      // have appended since our caller read the state and verified against it.
      const head = s.head.get(input.stream) as HeadRow | undefined;
      const next = head ? head.next_batch : 0;
      if (next !== input.batch) {
        throw new StoreConflictError(input.stream, input.batch, `stream head moved to batch ${next}`);
      }
      const ns = input.newState;
      s.insertBatch.run(
        input.stream,
        input.batch,
        input.firstSeq,
        input.lastSeq,
        input.checkpoint,
        input.digest,
        input.receivedAt,
      );
      s.insertCheckpoint.run(input.stream, input.batch, ns.treeSize, input.checkpoint, input.receivedAt);
      const ins = s.insertRecord;
      for (const r of input.records) {
        ins.run(
          input.stream,
          r.seq,
          input.batch,
          r.id,
          r.time,
          r.timeKey,
          r.receivedAt,
          r.tenant,
          r.actorId,
          r.eventType,
          r.tool,
          r.outcome,
          r.model,
          r.traceId,
          r.sessionId,
          r.agentId,
          r.resourceId,
          r.resourceType,
          r.approval,
          r.dataClassification,
          r.canonical,
          r.leaf,
          r.mac,
          r.keyId,
        );
      }
      // The complete subtrees this batch finishes, for O(log n) proofs.
      for (const t of batchSubtrees(head, input)) {
        s.insertSubtree.run(input.stream, t.level, t.index, t.hash);
      }
      s.insertHead.run(
        input.stream,
        ns.nextBatch,
        ns.treeSize,
        ns.frontier,
        ns.lastCheckpoint,
        ns.chainHead,
        ns.chainKeyId,
        ns.pinnedVkey,
        input.receivedAt,
      );
    });
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('store_closed', `${this.path}: store is closed`);
  }

  async getStreamState(stream: string): Promise<StreamState | undefined> {
    this.ensureOpen();
    const h = this.stmts.head.get(stream) as HeadRow | undefined;
    return h ? toStreamState(h) : undefined;
  }

  async appendBatch(input: AppendBatchInput): Promise<void> {
    this.ensureOpen();
    checkAppendInput(input);
    try {
      // IMMEDIATE takes the write lock up front, so the head read inside the
      // transaction cannot be stale by the time the inserts run.
      this.appendTx.immediate(input);
    } catch (err) {
      if (err instanceof StoreConflictError) throw err;
      // A unique-key clash means another process inserted the same batch or
      // head concurrently: same meaning as the explicit check.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) {
        throw new StoreConflictError(input.stream, input.batch, 'batch or seq already stored');
      }
      throw err;
    }
  }

  async getBatch(stream: string, batch: number): Promise<StoredBatch | undefined> {
    this.ensureOpen();
    const b = this.stmts.getBatch.get(stream, batch) as BatchDbRow | undefined;
    return b ? toStoredBatch(b) : undefined;
  }

  async queryRecords(query: RecordQuery): Promise<RecordRow[]> {
    this.ensureOpen();
    const f = query.filters;
    if (!filtersCanMatch(f)) return [];
    const desc = query.order === 'desc';
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: query.limit };
    // Only the fixed column names of FILTER_COLUMNS reach SQL text; filter
    // values are always bound parameters.
    for (const { field, column } of FILTER_COLUMNS) {
      const v = f[field];
      if (v !== undefined) {
        where.push(`${column} = @${field}`);
        params[field] = v;
      }
    }
    if (f.fromTimeKey !== undefined) {
      where.push('time_key >= @fromTimeKey');
      params.fromTimeKey = f.fromTimeKey;
    }
    if (f.toTimeKey !== undefined) {
      where.push('time_key < @toTimeKey');
      params.toTimeKey = f.toTimeKey;
    }
    if (query.after) {
      // Expanded row-value comparison; the leading time_key bound keeps it
      // usable as an index range in either direction.
      where.push(
        desc
          ? '(time_key <= @afterTime AND (time_key < @afterTime OR stream < @afterStream OR (stream = @afterStream AND seq < @afterSeq)))'
          : '(time_key >= @afterTime AND (time_key > @afterTime OR stream > @afterStream OR (stream = @afterStream AND seq > @afterSeq)))',
      );
      params.afterTime = query.after.timeKey;
      params.afterStream = query.after.stream;
      params.afterSeq = query.after.seq;
    }
    const dir = desc ? ' DESC' : '';
    const sql =
      `SELECT ${RECORD_COLUMNS} FROM records` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY time_key${dir}, stream${dir}, seq${dir} LIMIT @limit`;
    let stmt = this.queryCache.get(sql);
    if (!stmt) {
      // Filters, order, bounds and cursor combine into some 10^5 statement
      // texts; callers can pick any, so the cache is bounded.
      if (this.queryCache.size >= MAX_CACHED_QUERIES) this.queryCache.clear();
      stmt = this.db.prepare(sql);
      this.queryCache.set(sql, stmt);
    }
    return (stmt.all(params) as RecordDbRow[]).map(toRecordRow);
  }

  async listCheckpoints(stream: string, fromBatch: number, limit: number): Promise<CheckpointRow[]> {
    this.ensureOpen();
    return (this.stmts.checkpoints.all(stream, fromBatch, limit) as CheckpointDbRow[]).map(toCheckpointRow);
  }

  async listStreams(): Promise<StreamSummary[]> {
    this.ensureOpen();
    const rows = this.stmts.streams.all() as StreamHeadColumns[];
    return rows.map(streamSummaryOf);
  }

  async readStreamRecords(stream: string, fromSeq: number, limit: number): Promise<RecordRow[]> {
    this.ensureOpen();
    return (this.stmts.streamRecords.all(stream, fromSeq, limit) as RecordDbRow[]).map(toRecordRow);
  }

  iterateStreamRecords(stream: string, fromSeq = 0): AsyncIterable<RecordRow> {
    return pageStreamRecords(this, stream, fromSeq);
  }

  readonly keepsRecords = true;

  async findRecordsById(id: string, limit: number): Promise<RecordRow[]> {
    this.ensureOpen();
    return (this.stmts.byId.all(id, limit) as RecordDbRow[]).map(toRecordRow);
  }

  async getSubtreeHashes(stream: string, refs: readonly SubtreeRef[]): Promise<SubtreeHash[]> {
    this.ensureOpen();
    const out: SubtreeHash[] = [];
    for (const r of refs) {
      const row =
        r.level === 0
          ? (this.stmts.leaf.get(stream, r.index) as { leaf: Buffer } | undefined)?.leaf
          : (this.stmts.subtree.get(stream, r.level, r.index) as { hash: Buffer } | undefined)?.hash;
      if (row) out.push({ level: r.level, index: r.index, hash: row });
    }
    return out;
  }

  async getCheckpointCovering(stream: string, seq: number): Promise<CheckpointRow | undefined> {
    this.ensureOpen();
    const r = this.stmts.checkpointCovering.get(stream, seq) as CheckpointDbRow | undefined;
    return r ? toCheckpointRow(r) : undefined;
  }

  async getCheckpointBySize(stream: string, treeSize: number): Promise<CheckpointRow | undefined> {
    this.ensureOpen();
    const r = this.stmts.checkpointBySize.get(stream, treeSize) as CheckpointDbRow | undefined;
    return r ? toCheckpointRow(r) : undefined;
  }

  async ping(): Promise<void> {
    this.ensureOpen();
    // Reads the database header from the file, so a file gone bad is seen.
    this.db.pragma('schema_version', { simple: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

/** Opens a SQLite audit store at `path` (created and migrated if needed). */
export function openSqliteStore(path: string, opts: SqliteStoreOptions = {}): SqliteAuditStore {
  return new SqliteAuditStore(path, opts);
}
