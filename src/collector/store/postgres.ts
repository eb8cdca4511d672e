import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { isConnectionError, poolConfig, redactPostgresUrl, sqlState, unavailable, type PostgresStoreOptions, type StoreLogger } from './postgres-connection.js';
import { COPY_RECORDS_SQL, recordCopyPieces } from './postgres-copy.js';
import { PG_DEFAULTS } from './postgres-defaults.js';
import { HEAD_CONFLICT_SQLSTATE, POSTGRES_MIGRATIONS } from './postgres-migrations.js';
import { checkSchema, migratePostgres } from './postgres-schema.js';
import type { SubtreeHash, SubtreeRef } from '../proofs.js';
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

/**
 * The production backend. Durability and safety contracts:
 *
 * - An appendBatch that resolves has committed (Postgres COMMIT, so the
 *   server's synchronous_commit decides what a crash can lose; keep it on).
 * - Replicas: every append of a stream runs under a transaction-scoped
 *   advisory lock keyed by the stream, then re-reads the head, so the second
 *   of two racing collectors sees the first's commit and gets
 *   StoreConflictError with nothing written. The lock is advisory because a
 *   row lock (SELECT ... FOR UPDATE) needs UPDATE privilege, which the app
 *   role deliberately lacks. Behind it, the database itself refuses a fork,
 *   a gap or a rollback: primary keys on (stream, batch) and (stream,
 *   next_batch), and triggers that admit only the next batch, only a head
 *   extending the previous one, and only records inside a stored batch.
 * - The app role can only SELECT and INSERT; UPDATE, DELETE and TRUNCATE are
 *   revoked, and triggers refuse them for every role (docs/postgres.md).
 * - URLs are never logged or put into errors with their password.
 */

const { Pool } = pg;

export { migratePostgres, redactPostgresUrl, type PostgresStoreOptions, type StoreLogger };

/** Rows per subtree INSERT: unnest needs one parameter per column, not per row. */
const INSERT_CHUNK_ROWS = 5000;

function monthOf(d: Date): string {
  return d.toISOString().slice(0, 7);
}

export class PostgresAuditStore implements AuditStore {
  /** the app URL without its password */
  readonly displayUrl: string;
  private readonly pool: pg.Pool;
  private readonly logger: StoreLogger | undefined;
  /** the UTC month (by this process's clock) for which partitions were last ensured */
  private partitionsMonth = '';
  private readonly latestVersion: number;
  private closed = false;

  /** Use openPostgresStore: it checks the schema before the store is used. */
  constructor(opts: PostgresStoreOptions) {
    this.displayUrl = redactPostgresUrl(opts.url);
    this.logger = opts.logger;
    this.latestVersion = (opts.migrations ?? POSTGRES_MIGRATIONS).reduce((m, x) => Math.max(m, x.version), 0);
    this.pool = new Pool(
      poolConfig(
        opts.url,
        opts.poolSize ?? PG_DEFAULTS.poolSize,
        opts.statementTimeoutMs ?? PG_DEFAULTS.statementTimeoutMs,
        opts.connectTimeoutMs ?? PG_DEFAULTS.connectTimeoutMs,
      ),
    );
    // An idle client losing its connection emits here; unhandled it would
    // crash the process. The pool replaces the client on next use.
    this.pool.on('error', (err) => {
      this.logger?.error({ code: sqlState(err), store: this.displayUrl }, `postgres pool: ${err.message}`);
    });
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('store_closed', `postgres ${this.displayUrl}: store is closed`);
  }

  /**
   * Every read goes through here: a lost or refused connection becomes
   * StoreError store_unavailable (the API answers 503 with Retry-After, not
   * 500), named without the URL's password.
   */
  private async query<R extends QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    this.ensureOpen();
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      throw isConnectionError(err) ? unavailable(this.displayUrl, err) : err;
    }
  }

  /** The role this store's connections run as. */
  async currentRole(): Promise<string> {
    try {
      return (await this.query<{ r: string }>('SELECT current_user AS r'))[0]!.r;
    } catch (err) {
      throw err instanceof StoreError ? err : unavailable(this.displayUrl, err);
    }
  }

  /** Checks the schema version and the app role's privileges; called once by openPostgresStore. */
  async checkSchema(): Promise<void> {
    await checkSchema({ read: (sql) => this.query(sql), displayUrl: this.displayUrl, latest: this.latestVersion, logger: this.logger });
    await this.ensurePartitions(true);
  }

  /**
   * Partitions for the current and next month (by the database's clock),
   * re-checked when this process's month changes and whenever an insert
   * finds no partition (clock skew at a month boundary).
   */
  private async ensurePartitions(force = false): Promise<void> {
    const month = monthOf(new Date());
    if (!force && month === this.partitionsMonth) return;
    await this.query('SELECT sealtrail.ensure_records_partitions()');
    this.partitionsMonth = month;
  }

  async getStreamState(stream: string): Promise<StreamState | undefined> {
    const rows = await this.query<HeadRow>(
      `SELECT ${HEAD_COLUMNS} FROM sealtrail.stream_heads WHERE stream = $1 ORDER BY next_batch DESC LIMIT 1`,
      [stream],
    );
    return rows[0] ? toStreamState(rows[0]) : undefined;
  }

  async appendBatch(input: AppendBatchInput): Promise<void> {
    this.ensureOpen();
    checkAppendInput(input);
    await this.ensurePartitions();
    try {
      await this.appendOnce(input);
    } catch (err) {
      // check_violation "no partition of relation found for row": the month
      // turned over by the database's clock before ours. Nothing was written.
      if (sqlState(err) !== '23514' || !/partition/i.test((err as Error).message)) throw err;
      await this.ensurePartitions(true);
      await this.appendOnce(input);
    }
  }

  private async appendOnce(input: AppendBatchInput): Promise<void> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(this.displayUrl, err);
    }
    let discard = false;
    // The pool listens for a client's 'error' only while it is idle; a
    // connection lost while we hold it (server restart, terminated backend,
    // reset mid-COPY) would otherwise be an unhandled 'error' event and end
    // the process. The failing query rejects as well and is answered below.
    const onError = (): void => {
      discard = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      try {
        await this.appendInTransaction(client, input);
        await client.query('COMMIT');
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          // The connection is gone or broken: do not return it to the pool.
          discard = true;
        }
        throw err;
      }
    } catch (err) {
      throw this.mapAppendError(input, err);
    } finally {
      client.removeListener('error', onError);
      client.release(discard);
    }
  }

  private async appendInTransaction(client: PoolClient, input: AppendBatchInput): Promise<void> {
    const { stream, batch } = input;
    // Serialises appends of this stream across every collector on this
    // database until COMMIT/ROLLBACK. The head is read only after it is held:
    // under READ COMMITTED each statement sees what committed before it began.
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('sealtrail/stream/' || $1, 0))`, [stream]);
    const head = await client.query<Pick<HeadRow, 'next_batch' | 'tree_size' | 'frontier'>>(
      'SELECT next_batch, tree_size, frontier FROM sealtrail.stream_heads WHERE stream = $1 ORDER BY next_batch DESC LIMIT 1',
      [stream],
    );
    const next = head.rows[0]?.next_batch ?? 0;
    if (next !== batch) throw new StoreConflictError(stream, batch, `stream head moved to batch ${next}`);

    const ns = input.newState;
    await client.query(
      `WITH s AS (
         INSERT INTO sealtrail.streams (stream) SELECT $1 WHERE $2::int8 = 0 ON CONFLICT (stream) DO NOTHING
       ), c AS (
         INSERT INTO sealtrail.checkpoints (stream, batch, tree_size, note, received_at) VALUES ($1, $2, $7, $5, $6)
       )
       INSERT INTO sealtrail.batches (stream, batch, first_seq, last_seq, checkpoint, digest, received_at)
       VALUES ($1, $2, $3, $4, $5, $8, $6)`,
      [stream, batch, input.firstSeq, input.lastSeq, input.checkpoint, input.receivedAt, ns.treeSize, input.digest],
    );

    // COPY, not INSERT: the server parses plain rows instead of one array
    // literal per column, and the statement triggers (records_in_batch)
    // fire for it all the same.
    const records = input.records;
    await pipeline(Readable.from(recordCopyPieces(stream, batch, records)), client.query(copyFrom(COPY_RECORDS_SQL)));

    // The complete subtrees this batch finishes, for O(log n) proofs.
    const subtrees = batchSubtrees(head.rows[0], input);
    for (let i = 0; i < subtrees.length; i += INSERT_CHUNK_ROWS) {
      const chunk = subtrees.slice(i, i + INSERT_CHUNK_ROWS);
      await client.query(
        `INSERT INTO sealtrail.subtrees (stream, level, idx, hash)
         SELECT $1, u.level, u.idx, decode(u.hash, 'hex') FROM unnest($2::int2[], $3::int8[], $4::text[]) AS u(level, idx, hash)`,
        [stream, chunk.map((t) => t.level), chunk.map((t) => t.index), chunk.map((t) => t.hash.toString('hex'))],
      );
    }

    await client.query(
      `INSERT INTO sealtrail.stream_heads (${HEAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [stream, ns.nextBatch, ns.treeSize, ns.frontier, ns.lastCheckpoint, ns.chainHead, ns.chainKeyId, ns.pinnedVkey],
    );
  }

  private mapAppendError(input: AppendBatchInput, err: unknown): unknown {
    if (err instanceof StoreConflictError || err instanceof StoreError) return err;
    const state = sqlState(err);
    // unique_violation: another writer stored this batch, head or seq first;
    // our head trigger's refusal; serialization_failure and deadlock_detected
    // (possible if someone runs us under SERIALIZABLE): all mean "the head
    // moved", and the route re-reads it to answer duplicate or fork.
    if (state === '23505' || state === HEAD_CONFLICT_SQLSTATE || state === '40001' || state === '40P01') {
      return new StoreConflictError(input.stream, input.batch, `concurrent writer (sqlstate ${state})`);
    }
    // statement_timeout or lock_timeout, typically waiting for the stream
    // lock behind another replica's large batch. The transaction rolled back,
    // so this is "try again": the route re-reads and answers duplicate, fork
    // or 503 with Retry-After, exactly as for a lost race.
    if (state === '57014' || state === '55P03') {
      return new StoreConflictError(input.stream, input.batch, `timed out, nothing written (sqlstate ${state})`);
    }
    if (isConnectionError(err)) return unavailable(this.displayUrl, err);
    return err;
  }

  async getBatch(stream: string, batch: number): Promise<StoredBatch | undefined> {
    const rows = await this.query<BatchDbRow>(
      `SELECT stream, batch, first_seq, last_seq, checkpoint, digest, received_at
       FROM sealtrail.batches WHERE stream = $1 AND batch = $2`,
      [stream, batch],
    );
    return rows[0] ? toStoredBatch(rows[0]) : undefined;
  }

  async queryRecords(query: RecordQuery): Promise<RecordRow[]> {
    this.ensureOpen();
    const f = query.filters;
    if (!filtersCanMatch(f)) return [];
    const desc = query.order === 'desc';
    const where: string[] = [];
    const values: unknown[] = [];
    const param = (v: unknown): string => {
      values.push(v);
      return `$${values.length}`;
    };
    // Only the fixed column names of FILTER_COLUMNS reach SQL text; filter
    // values are always bound parameters.
    for (const { field, column } of FILTER_COLUMNS) {
      const v = f[field];
      if (v !== undefined) where.push(`${column} = ${param(v)}`);
    }
    if (f.fromTimeKey !== undefined) where.push(`time_key >= ${param(f.fromTimeKey)}`);
    if (f.toTimeKey !== undefined) where.push(`time_key < ${param(f.toTimeKey)}`);
    if (query.after) {
      // The row comparison is exact; the separate time_key bound lets the
      // (column, time_key) filter indexes use it as a range too.
      const t = param(query.after.timeKey);
      const s = param(query.after.stream);
      const q = param(query.after.seq);
      where.push(desc ? `time_key <= ${t} AND (time_key, stream, seq) < (${t}, ${s}, ${q})` : `time_key >= ${t} AND (time_key, stream, seq) > (${t}, ${s}, ${q})`);
    }
    const dir = desc ? ' DESC' : '';
    const sql =
      `SELECT ${RECORD_COLUMNS} FROM sealtrail.records` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ` ORDER BY time_key${dir}, stream${dir}, seq${dir} LIMIT ${param(query.limit)}`;
    return (await this.query<RecordDbRow>(sql, values)).map(toRecordRow);
  }

  async listCheckpoints(stream: string, fromBatch: number, limit: number): Promise<CheckpointRow[]> {
    const rows = await this.query<CheckpointDbRow>(
      `SELECT batch, tree_size, note, received_at FROM sealtrail.checkpoints
       WHERE stream = $1 AND batch >= $2 ORDER BY batch LIMIT $3`,
      [stream, fromBatch, limit],
    );
    return rows.map(toCheckpointRow);
  }

  async listStreams(): Promise<StreamSummary[]> {
    const rows = await this.query<StreamHeadColumns>(
      `SELECT h.stream, h.next_batch, h.tree_size, h.last_checkpoint, h.chain_key_id, h.pinned_vkey
       FROM sealtrail.streams s
       CROSS JOIN LATERAL (
         SELECT * FROM sealtrail.stream_heads x WHERE x.stream = s.stream ORDER BY x.next_batch DESC LIMIT 1
       ) h
       ORDER BY s.stream`,
    );
    return rows.map(streamSummaryOf);
  }

  async readStreamRecords(stream: string, fromSeq: number, limit: number): Promise<RecordRow[]> {
    const rows = await this.query<RecordDbRow>(
      `SELECT ${RECORD_COLUMNS} FROM sealtrail.records WHERE stream = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
      [stream, fromSeq, limit],
    );
    return rows.map(toRecordRow);
  }

  iterateStreamRecords(stream: string, fromSeq = 0): AsyncIterable<RecordRow> {
    return pageStreamRecords(this, stream, fromSeq);
  }

  readonly keepsRecords = true;

  async findRecordsById(id: string, limit: number): Promise<RecordRow[]> {
    const rows = await this.query<RecordDbRow>(
      `SELECT ${RECORD_COLUMNS} FROM sealtrail.records WHERE id = $1 ORDER BY stream, seq LIMIT $2`,
      [id, limit],
    );
    return rows.map(toRecordRow);
  }

  async getSubtreeHashes(stream: string, refs: readonly SubtreeRef[]): Promise<SubtreeHash[]> {
    const out: SubtreeHash[] = [];
    const leaves = refs.filter((r) => r.level === 0).map((r) => r.index);
    const inner = refs.filter((r) => r.level > 0);
    if (leaves.length > 0) {
      const rows = await this.query<{ seq: number; leaf: Buffer }>(
        `SELECT seq, leaf FROM sealtrail.records WHERE stream = $1 AND seq = ANY($2::int8[])`,
        [stream, leaves],
      );
      for (const r of rows) out.push({ level: 0, index: r.seq, hash: r.leaf });
    }
    if (inner.length > 0) {
      const rows = await this.query<{ level: number; idx: number; hash: Buffer }>(
        `SELECT t.level, t.idx, t.hash FROM sealtrail.subtrees t
         JOIN unnest($2::int2[], $3::int8[]) AS u(level, idx) ON t.level = u.level AND t.idx = u.idx
         WHERE t.stream = $1`,
        [stream, inner.map((r) => r.level), inner.map((r) => r.index)],
      );
      for (const r of rows) out.push({ level: r.level, index: r.idx, hash: r.hash });
    }
    return out;
  }

  async getCheckpointCovering(stream: string, seq: number): Promise<CheckpointRow | undefined> {
    const rows = await this.query<CheckpointDbRow>(
      `SELECT batch, tree_size, note, received_at FROM sealtrail.checkpoints
       WHERE stream = $1 AND tree_size > $2 ORDER BY tree_size, batch LIMIT 1`,
      [stream, seq],
    );
    return rows[0] ? toCheckpointRow(rows[0]) : undefined;
  }

  async getCheckpointBySize(stream: string, treeSize: number): Promise<CheckpointRow | undefined> {
    const rows = await this.query<CheckpointDbRow>(
      `SELECT batch, tree_size, note, received_at FROM sealtrail.checkpoints
       WHERE stream = $1 AND tree_size = $2 ORDER BY batch LIMIT 1`,
      [stream, treeSize],
    );
    return rows[0] ? toCheckpointRow(rows[0]) : undefined;
  }

  /** The read openPostgresStore starts with, and with its error mapping: any failure is store_unavailable. */
  async ping(): Promise<void> {
    await this.currentRole();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * Opens the Postgres store: migrates first when opts.migrateUrl is given
 * (granting the app role of opts.url), then refuses to return a store whose
 * schema is not exactly this build's (StoreError store_schema_missing,
 * store_schema_outdated, store_schema_newer).
 */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresAuditStore> {
  const store = new PostgresAuditStore(opts);
  try {
    if (opts.migrateUrl !== undefined) {
      const app = await store.currentRole();
      const { version, owner } = await migratePostgres(opts.migrateUrl, app, {
        ...(opts.migrations ? { migrations: opts.migrations } : {}),
        ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      });
      if (owner === app) {
        opts.logger?.warn(
          { role: app },
          'collector.store.url and migrate_url use the same role: the collector could alter what it stores; use an app role with SELECT and INSERT only',
        );
      }
      opts.logger?.info({ version, owner, app }, 'postgres schema is current');
    }
    await store.checkSchema();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}
