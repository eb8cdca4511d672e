import type { SubtreeHash, SubtreeRef } from '../proofs.js';
import { checkAppendInput } from './shared.js';
import {
  proofsUnavailable,
  StoreConflictError,
  StoreError,
  type AppendBatchInput,
  type AuditStore,
  type CheckpointRow,
  type RecordQuery,
  type RecordRow,
  type StoredBatch,
  type StreamState,
  type StreamSummary,
} from './types.js';

/** Batches remembered per stream so that a resend is acknowledged, not called a fork. */
export const NULL_STORE_RECENT_BATCHES = 16;

/**
 * Verifies and discards: for load tests of the verification path and for
 * deployments that only want the collector's accept/refuse verdict.
 *
 * What it keeps, in this process's memory only: each stream's head (so the
 * next batch is still checked for continuity against the tree, chain and
 * checkpoint) and the last NULL_STORE_RECENT_BATCHES batches' identities (so
 * a sidecar's retry of a batch whose ack it missed gets 200 duplicate; a
 * sidecar ships in order and deletes what was acknowledged, so a resend is
 * always one of the newest). A restart forgets everything: the next batch of
 * a known stream is then refused as a gap, which is why this store suits
 * neither replicas nor production.
 *
 * Queries: listStreams reports the heads it holds; records and checkpoints
 * are not kept, so queryRecords, readStreamRecords, iterateStreamRecords and
 * listCheckpoints return nothing. `sealtrail verify --url` against it fails
 * for any stream with records, as it should: there is no evidence to check.
 */
export class NullAuditStore implements AuditStore {
  private readonly heads = new Map<string, StreamState>();
  private readonly recent = new Map<string, StoredBatch[]>();
  private closed = false;

  private ensureOpen(): void {
    if (this.closed) throw new StoreError('store_closed', 'null store is closed');
  }

  async getStreamState(stream: string): Promise<StreamState | undefined> {
    this.ensureOpen();
    const h = this.heads.get(stream);
    return h ? { ...h, frontier: Buffer.from(h.frontier) } : undefined;
  }

  async appendBatch(input: AppendBatchInput): Promise<void> {
    this.ensureOpen();
    checkAppendInput(input);
    const ns = input.newState;
    // No await between the check and the writes: atomic on the event loop.
    const next = this.heads.get(input.stream)?.nextBatch ?? 0;
    if (next !== input.batch) {
      throw new StoreConflictError(input.stream, input.batch, `stream head moved to batch ${next}`);
    }
    this.heads.set(input.stream, { ...ns, frontier: Buffer.from(ns.frontier) });
    const list = this.recent.get(input.stream) ?? [];
    list.push({
      stream: input.stream,
      batch: input.batch,
      firstSeq: input.firstSeq,
      lastSeq: input.lastSeq,
      checkpoint: input.checkpoint,
      digest: input.digest,
      receivedAt: input.receivedAt,
    });
    if (list.length > NULL_STORE_RECENT_BATCHES) list.shift();
    this.recent.set(input.stream, list);
  }

  async getBatch(stream: string, batch: number): Promise<StoredBatch | undefined> {
    this.ensureOpen();
    const b = this.recent.get(stream)?.find((x) => x.batch === batch);
    return b ? { ...b } : undefined;
  }

  async queryRecords(_query: RecordQuery): Promise<RecordRow[]> {
    this.ensureOpen();
    return [];
  }

  async listCheckpoints(_stream: string, _fromBatch: number, _limit: number): Promise<CheckpointRow[]> {
    this.ensureOpen();
    return [];
  }

  async listStreams(): Promise<StreamSummary[]> {
    this.ensureOpen();
    return [...this.heads.values()]
      .sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0))
      .map((h) => ({
        stream: h.stream,
        treeSize: h.treeSize,
        nextBatch: h.nextBatch,
        lastCheckpoint: h.lastCheckpoint,
        chainKeyId: h.chainKeyId,
        pinned: h.pinnedVkey !== null,
      }));
  }

  async readStreamRecords(_stream: string, _fromSeq: number, _limit: number): Promise<RecordRow[]> {
    this.ensureOpen();
    return [];
  }

  async *iterateStreamRecords(_stream: string, _fromSeq = 0): AsyncGenerator<RecordRow> {
    this.ensureOpen();
  }

  /** No records, so no record lookups, proofs or server-side verification. */
  readonly keepsRecords = false;

  async findRecordsById(_id: string, _limit: number): Promise<RecordRow[]> {
    this.ensureOpen();
    return [];
  }

  async getSubtreeHashes(_stream: string, _refs: readonly SubtreeRef[]): Promise<SubtreeHash[]> {
    this.ensureOpen();
    throw proofsUnavailable();
  }

  async getCheckpointCovering(_stream: string, _seq: number): Promise<CheckpointRow | undefined> {
    this.ensureOpen();
    return undefined;
  }

  async getCheckpointBySize(_stream: string, _treeSize: number): Promise<CheckpointRow | undefined> {
    this.ensureOpen();
    return undefined;
  }

  async ping(): Promise<void> {
    this.ensureOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.heads.clear();
    this.recent.clear();
  }
}

export function openNullStore(): NullAuditStore {
  return new NullAuditStore();
}
