import type { StoreCode } from '../../core/error-codes.js';
import { SealtrailError } from '../../core/errors.js';
import type { EqualityFilter, RecordIndexFields } from '../../core/record-index.js';
import type { SubtreeHash, SubtreeRef } from '../proofs.js';

export type { RecordIndexFields } from '../../core/record-index.js';
export type { SubtreeHash, SubtreeRef } from '../proofs.js';

/**
 * Storage contract of the collector. Backend-neutral on purpose: everything is
 * async and described in values (no SQL, no handles), so a Postgres backend
 * and a null backend can implement it unchanged. A store only persists what
 * verify-batch accepted; it never judges cryptography itself.
 */

/** The head of a stream after its last accepted batch. */
export interface StreamState {
  stream: string;
  /** number of leaves (== next expected seq) */
  treeSize: number;
  /** Frontier.toBytes() of the tree of size treeSize */
  frontier: Buffer;
  nextBatch: number;
  /** signed-note text of the last accepted checkpoint, null before batch 0 */
  lastCheckpoint: string | null;
  /** hex mac of the last record, null before batch 0 */
  chainHead: string | null;
  chainKeyId: string | null;
  /** verifier key pinned by trust-on-first-use, null for configured streams */
  pinnedVkey: string | null;
}

export interface NewRecord extends RecordIndexFields {
  seq: number;
  /** exact RFC 8785 text as received (never re-serialised) */
  canonical: string;
  leaf: Buffer;
  /** hex */
  mac: string;
  keyId: string;
}

/** A stored batch: its place in the stream, checkpoint and identity digest. */
export interface StoredBatch {
  stream: string;
  batch: number;
  firstSeq: number;
  lastSeq: number;
  /** signed-note text */
  checkpoint: string;
  /** hex SHA-256 of the batch's canonical wire JSON, for idempotent resends */
  digest: string;
  /** collector time, RFC 3339 */
  receivedAt: string;
}

export interface AppendBatchInput extends StoredBatch {
  records: readonly NewRecord[];
  /** the head after this batch; its nextBatch must be batch + 1 */
  newState: StreamState;
  /**
   * The complete subtrees this batch finishes, as verification derived them
   * from the head it verified against (a tree of firstSeq leaves whose
   * frontier is `baseFrontier`). A store takes them only when the head it
   * reads inside its append transaction is that tree; otherwise, or when
   * absent, it derives them from that head itself.
   */
  subtrees?: { baseFrontier: Buffer; hashes: readonly SubtreeHash[] };
}

/**
 * Equality filters (core/record-index.ts EQUALITY_FILTERS, one member per
 * filter); every given filter must match (AND). Values are compared exactly
 * (binary, case-sensitive). A value that could never have been indexed (see
 * core/record-index.ts indexable()) matches nothing.
 */
export interface RecordFilters extends Partial<Record<EqualityFilter, string>> {
  /** inclusive, epoch microseconds (see RecordIndexFields.timeKey) */
  fromTimeKey?: number;
  /** exclusive, epoch microseconds */
  toTimeKey?: number;
}

/**
 * Keyset position: results start strictly after it in the query's order of
 * (timeKey, stream, seq), i.e. greater when ascending, smaller when descending.
 * Streams compare by code point (binary), in every backend.
 */
export interface RecordKey {
  timeKey: number;
  stream: string;
  seq: number;
}

export type RecordOrder = 'asc' | 'desc';

export interface RecordQuery {
  filters: RecordFilters;
  after?: RecordKey;
  /** direction of (timeKey, stream, seq); default 'asc' */
  order?: RecordOrder;
  limit: number;
}

export interface RecordRow {
  stream: string;
  seq: number;
  batch: number;
  timeKey: number;
  canonical: string;
  leaf: Buffer;
  mac: string;
  keyId: string;
}

export interface CheckpointRow {
  batch: number;
  treeSize: number;
  note: string;
  receivedAt: string;
}

export interface StreamSummary {
  stream: string;
  treeSize: number;
  nextBatch: number;
  lastCheckpoint: string | null;
  chainKeyId: string | null;
  /** true when the verifier key was pinned on first use */
  pinned: boolean;
}

export interface AuditStore {
  /** undefined when the stream has never had a batch accepted */
  getStreamState(stream: string): Promise<StreamState | undefined>;
  /**
   * Atomically stores the records, the batch, its checkpoint and the new head.
   * Throws StoreConflictError when the stream's head is no longer
   * input.batch (another writer got there first); nothing is written then.
   */
  appendBatch(input: AppendBatchInput): Promise<void>;
  getBatch(stream: string, batch: number): Promise<StoredBatch | undefined>;
  /** ordered by (timeKey, stream, seq) in query.order (default ascending); at most query.limit rows */
  queryRecords(query: RecordQuery): Promise<RecordRow[]>;
  /** ordered by batch; fromBatch inclusive */
  listCheckpoints(stream: string, fromBatch: number, limit: number): Promise<CheckpointRow[]>;
  /** ordered by stream id */
  listStreams(): Promise<StreamSummary[]>;
  /** ordered by seq; fromSeq inclusive */
  readStreamRecords(stream: string, fromSeq: number, limit: number): Promise<RecordRow[]>;
  /** every record of the stream from fromSeq on, in seq order, fetched in pages */
  iterateStreamRecords(stream: string, fromSeq?: number): AsyncIterable<RecordRow>;
  /**
   * False for a store that keeps no records (null store): the record,
   * proof and verification routes then answer 501 proofs_unavailable.
   */
  readonly keepsRecords: boolean;
  /**
   * Records whose `id` field equals `id` (ids are written by agents, so not
   * guaranteed unique across streams), ordered by (stream, seq), at most `limit`.
   */
  findRecordsById(id: string, limit: number): Promise<RecordRow[]>;
  /**
   * Stored roots of complete subtrees of the stream's Merkle tree: level 0 is
   * the leaf hash of record `index`; higher levels are kept by appendBatch
   * (see proofs.ts completedSubtrees). Absent from the result when not stored
   * (beyond the tree, or written by a version that did not keep them).
   * One indexed read per ref: a proof needs O(log n) of them.
   */
  getSubtreeHashes(stream: string, refs: readonly SubtreeRef[]): Promise<SubtreeHash[]>;
  /** The first checkpoint (in batch order) whose tree size is greater than seq, i.e. the checkpoint of seq's batch. */
  getCheckpointCovering(stream: string, seq: number): Promise<CheckpointRow | undefined>;
  /** The checkpoint that signs the tree of exactly treeSize leaves, if one is stored. */
  getCheckpointBySize(stream: string, treeSize: number): Promise<CheckpointRow | undefined>;
  /**
   * Resolves when the store answers a read now (the readiness probe, GET
   * /readyz); rejects with StoreError store_unavailable / store_closed when
   * it cannot. Cheap: no table is scanned.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Refused by stores that keep no records (keepsRecords false). */
export function proofsUnavailable(): StoreError {
  return new StoreError('proofs_unavailable', 'this collector store keeps no records, so it has no proofs to give');
}

/** Optimistic concurrency check failed: another writer advanced the stream. */
export class StoreConflictError extends SealtrailError<'store_conflict'> {
  readonly stream: string;
  readonly batch: number;
  constructor(stream: string, batch: number, message: string) {
    super('store_conflict', `stream ${stream} batch ${batch}: ${message}`);
    this.stream = stream;
    this.batch = batch;
  }
}

/** The store cannot be opened or used (schema newer than this build, corrupt file). */
export class StoreError extends SealtrailError<StoreCode> {}

/** Shared by backends: pages through readStreamRecords so no cursor stays open across awaits. */
export async function* pageStreamRecords(
  store: Pick<AuditStore, 'readStreamRecords'>,
  stream: string,
  fromSeq = 0,
  pageSize = 1000,
): AsyncGenerator<RecordRow> {
  let next = fromSeq;
  for (;;) {
    const page = await store.readStreamRecords(stream, next, pageSize);
    for (const row of page) yield row;
    if (page.length < pageSize) return;
    next = page[page.length - 1]!.seq + 1;
  }
}
