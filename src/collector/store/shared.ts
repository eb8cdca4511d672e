import { Frontier } from '../../core/merkle.js';
import { completedSubtrees, type SubtreeHash } from '../proofs.js';
import {
  StoreError,
  type AppendBatchInput,
  type CheckpointRow,
  type RecordRow,
  type StoredBatch,
  type StreamState,
  type StreamSummary,
} from './types.js';

/**
 * Pure pieces both SQL backends share: the column lists they read, the
 * mapping of their snake_case rows to the store's values, and what an append
 * derives before it writes. No SQL dialect, no I/O. Timestamps arrive as
 * text from SQLite and as Date from Postgres; both become RFC 3339 text.
 */

export const RECORD_COLUMNS = 'stream, seq, batch, time_key, canonical, leaf, mac, key_id';
export const HEAD_COLUMNS =
  'stream, next_batch, tree_size, frontier, last_checkpoint, chain_head, chain_key_id, pinned_vkey';

type DbTime = string | Date;

function isoOf(t: DbTime): string {
  return typeof t === 'string' ? t : t.toISOString();
}

export interface RecordDbRow {
  stream: string;
  seq: number;
  batch: number;
  time_key: number;
  canonical: string;
  leaf: Buffer;
  mac: string;
  key_id: string;
}

export function toRecordRow(r: RecordDbRow): RecordRow {
  return {
    stream: r.stream,
    seq: r.seq,
    batch: r.batch,
    timeKey: r.time_key,
    canonical: r.canonical,
    leaf: r.leaf,
    mac: r.mac,
    keyId: r.key_id,
  };
}

/** A stream head row as both SQL backends store it (HEAD_COLUMNS). */
export interface HeadRow {
  stream: string;
  next_batch: number;
  tree_size: number;
  frontier: Buffer;
  last_checkpoint: string | null;
  chain_head: string | null;
  chain_key_id: string | null;
  pinned_vkey: string | null;
}

export function toStreamState(h: HeadRow): StreamState {
  return {
    stream: h.stream,
    treeSize: h.tree_size,
    frontier: h.frontier,
    nextBatch: h.next_batch,
    lastCheckpoint: h.last_checkpoint,
    chainHead: h.chain_head,
    chainKeyId: h.chain_key_id,
    pinnedVkey: h.pinned_vkey,
  };
}

export type StreamHeadColumns = Omit<HeadRow, 'frontier' | 'chain_head'>;

export function streamSummaryOf(r: StreamHeadColumns): StreamSummary {
  return {
    stream: r.stream,
    treeSize: r.tree_size,
    nextBatch: r.next_batch,
    lastCheckpoint: r.last_checkpoint,
    chainKeyId: r.chain_key_id,
    pinned: r.pinned_vkey !== null,
  };
}

export interface CheckpointDbRow {
  batch: number;
  tree_size: number;
  note: string;
  received_at: DbTime;
}

export function toCheckpointRow(r: CheckpointDbRow): CheckpointRow {
  return { batch: r.batch, treeSize: r.tree_size, note: r.note, receivedAt: isoOf(r.received_at) };
}

export interface BatchDbRow {
  stream: string;
  batch: number;
  first_seq: number;
  last_seq: number;
  checkpoint: string;
  digest: string;
  received_at: DbTime;
}

export function toStoredBatch(b: BatchDbRow): StoredBatch {
  return {
    stream: b.stream,
    batch: b.batch,
    firstSeq: b.first_seq,
    lastSeq: b.last_seq,
    checkpoint: b.checkpoint,
    digest: b.digest,
    receivedAt: isoOf(b.received_at),
  };
}

/** Every backend's first check of an append: the new head must be the one this batch produces. */
export function checkAppendInput(input: AppendBatchInput): void {
  const ns = input.newState;
  if (ns.stream !== input.stream || ns.nextBatch !== input.batch + 1 || ns.treeSize !== input.lastSeq + 1) {
    throw new StoreError(
      'store_invalid_append',
      `stream ${input.stream} batch ${input.batch}: new state does not follow the batch`,
    );
  }
}

/**
 * The complete subtrees (level >= 1) a batch finishes when appended to the
 * head read inside the append's transaction (undefined: empty stream); a
 * store keeps them next to the records for O(log n) proofs. Those that
 * verification computed are used when they grew from this very head (same
 * size, same frontier bytes), which saves hashing the batch's tree again.
 */
export function batchSubtrees(
  head: Pick<HeadRow, 'tree_size' | 'frontier'> | undefined,
  input: Pick<AppendBatchInput, 'firstSeq' | 'records' | 'subtrees'>,
): readonly SubtreeHash[] {
  const given = input.subtrees;
  if (given) {
    const size = head ? head.tree_size : 0;
    const frontier = head ? head.frontier : EMPTY;
    if (size === input.firstSeq && given.baseFrontier.equals(frontier)) return given.hashes;
  }
  const before = head ? Frontier.fromBytes(head.tree_size, head.frontier) : Frontier.empty();
  return completedSubtrees(
    before,
    input.records.map((r) => r.leaf),
  );
}

const EMPTY = Buffer.alloc(0);
