import { createSecretKey, type KeyObject } from 'node:crypto';
import { parseCanonical } from '../core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../core/chain.js';
import { originForStream, parseCheckpoint, type Checkpoint } from '../core/checkpoint.js';
import { HttpError } from '../core/errors.js';
import { Frontier, leafHashOfText } from '../core/merkle.js';
import { openNote, type NoteVerifier } from '../core/note.js';
import { extractIndexFields } from '../core/record-index.js';
import { timeKey } from '../core/time-key.js';
import type { SealedBatch } from '../core/types.js';
import { batchDigest, isParsedBatch, malformedBatch, parseBatch, type BatchLimits, type ParsedBatch } from '../core/wire-batch.js';
import type { AppendBatchInput, NewRecord, StreamState, SubtreeHash } from './store/types.js';
import { appendLeaves } from './proofs.js';
import { isPlainObject } from '../core/plain-object.js';

/**
 * Pure verification of a sealed batch against the stored head of its stream:
 * the collector's decision. The wire shape (parseBatch) and the batch's
 * identity (batchDigest) are core/wire-batch.ts's; this adds what needs the
 * stream's keys and stored head. Nothing here does I/O: the route resolves
 * keys and state, this decides. Messages name stream, batch and seq only;
 * record text, MAC values and attacker-chosen strings never appear in them
 * (they end up in logs).
 */

export interface BatchKeys {
  /** verifiers for this stream's checkpoints (configured or pinned) */
  verifiers: readonly NoteVerifier[];
  /** chain keys by key id; records under other key ids are only cross-checked */
  hmacKeys: ReadonlyMap<string, Uint8Array>;
  /** a key to pin in the new state (trust on first use) */
  pinVkey?: string;
}

/**
 * A record as verified and ready to store. The parsed object is not kept: it
 * is only needed to extract the index fields, and holding every parsed record
 * of a multi-megabyte batch until the insert commits would double its memory.
 */
export type VerifiedRecord = NewRecord;

export interface VerifiedBatch {
  batch: ParsedBatch;
  checkpoint: Checkpoint;
  /** hex SHA-256 of the canonical wire JSON (see batchDigest) */
  digest: string;
  records: VerifiedRecord[];
  newState: StreamState;
  /** how many records had their MAC recomputed (key held) */
  macsChecked: number;
  /** the complete subtrees this batch finishes, from the frontier of `state` (AppendBatchInput.subtrees) */
  subtrees: { baseFrontier: Buffer; hashes: readonly SubtreeHash[] };
}

/** What the store is given for a verified batch (AuditStore.appendBatch). */
export function appendInputOf(v: VerifiedBatch, receivedAt = new Date().toISOString()): AppendBatchInput {
  const b = v.batch;
  return {
    stream: b.stream,
    batch: b.batch,
    firstSeq: b.first_seq,
    lastSeq: b.last_seq,
    checkpoint: b.checkpoint,
    digest: v.digest,
    receivedAt,
    records: v.records,
    newState: v.newState,
    subtrees: v.subtrees,
  };
}

/**
 * Opens the checkpoint note with the stream's verifiers and checks its origin.
 * Used on its own before raising a fork alert, so that only a batch signed by
 * the stream's key can trigger one.
 */
export function verifyCheckpointSignature(batch: SealedBatch, verifiers: readonly NoteVerifier[]): Checkpoint {
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  if (verifiers.length === 0) {
    throw new HttpError(422, 'batch_bad_signature', `${where}: no verifier key for this stream`);
  }
  let text: string;
  try {
    text = openNote(batch.checkpoint, [...verifiers]).text;
  } catch {
    throw new HttpError(422, 'batch_bad_signature', `${where}: checkpoint is not signed by a key of this stream`);
  }
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(text);
  } catch {
    throw malformedBatch(where, 'checkpoint is not a valid tlog-checkpoint');
  }
  if (cp.origin !== originForStream(batch.stream)) {
    throw new HttpError(422, 'batch_origin_mismatch', `${where}: checkpoint origin is not ${originForStream(batch.stream)}`);
  }
  return cp;
}

/**
 * Verifies `body` as the next batch of its stream. `state` is the stored head
 * (undefined for a stream never seen). Throws HttpError; returns what the
 * store needs, including the head after this batch.
 */
export function verifyBatch(
  body: unknown,
  state: StreamState | undefined,
  keys: BatchKeys,
  limits: BatchLimits = {},
): VerifiedBatch {
  const batch = isParsedBatch(body) ? body : parseBatch(body, limits);
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  if (state && state.stream !== batch.stream) {
    throw new Error(`${where}: state of stream ${state.stream} passed for another stream`);
  }

  const checkpoint = verifyCheckpointSignature(batch, keys.verifiers);

  const nextBatch = state?.nextBatch ?? 0;
  if (batch.batch < nextBatch) {
    throw new HttpError(409, 'batch_fork', `${where}: batch number already used (next is ${nextBatch})`);
  }
  if (batch.batch > nextBatch) {
    throw new HttpError(422, 'batch_gap', `${where}: expected batch ${nextBatch}`);
  }
  const treeSize = state?.treeSize ?? 0;
  if (batch.first_seq !== treeSize) {
    throw new HttpError(422, 'batch_seq_gap', `${where}: first_seq ${batch.first_seq} but stored tree size is ${treeSize}`);
  }
  if (batch.prev_checkpoint !== (state?.lastCheckpoint ?? null)) {
    throw new HttpError(409, 'batch_fork', `${where}: prev_checkpoint differs from the stored checkpoint of batch ${nextBatch - 1}`);
  }
  if (checkpoint.size !== batch.last_seq + 1) {
    throw new HttpError(
      422,
      'batch_root_mismatch',
      `${where}: checkpoint size ${checkpoint.size} but last_seq + 1 is ${batch.last_seq + 1}`,
    );
  }

  const records: VerifiedRecord[] = new Array(batch.records.length);
  for (let i = 0; i < batch.records.length; i++) {
    const w = batch.records[i]!;
    const at = `${where} seq ${w.seq}`;
    // Undefined for anything that is not its own RFC 8785 form (malformed,
    // odd numbers, deep nesting, lone surrogates, unsorted or repeated keys).
    const record = parseCanonical(w.canonical);
    if (!isPlainObject(record)) {
      throw new HttpError(422, 'batch_not_canonical', `${at}: record text is not an RFC 8785 canonical JSON object`);
    }
    if (record.stream !== batch.stream || record.seq !== w.seq) {
      throw new HttpError(422, 'batch_record_mismatch', `${at}: record's stream/seq differ from its place in the batch`);
    }
    const time = record.time;
    const tk = typeof time === 'string' ? timeKey(time) : undefined;
    if (tk === undefined || typeof time !== 'string') {
      throw new HttpError(422, 'batch_record_invalid', `${at}: record "time" is not an RFC 3339 timestamp`);
    }
    records[i] = {
      seq: w.seq,
      canonical: w.canonical,
      leaf: leafHashOfText(w.canonical),
      mac: w.mac,
      keyId: w.key_id,
      ...extractIndexFields(record, time, tk),
    };
  }

  const base = state ? Frontier.fromBytes(state.treeSize, state.frontier) : Frontier.empty();
  const { frontier, subtrees } = appendLeaves(
    base,
    records.map((r) => r.leaf),
  );
  if (!frontier.root().equals(checkpoint.root)) {
    throw new HttpError(422, 'batch_root_mismatch', `${where}: records do not hash to the checkpoint root from the stored tree`);
  }

  let prev: Buffer = state?.chainHead ? Buffer.from(state.chainHead, 'hex') : CHAIN_GENESIS;
  let macsChecked = 0;
  // Key objects made once per batch, not imported again for every MAC.
  const keyObjects = new Map<string, KeyObject | null>();
  for (const r of records) {
    const mac = Buffer.from(r.mac, 'hex');
    let key = keyObjects.get(r.keyId);
    if (key === undefined) {
      const raw = keys.hmacKeys.get(r.keyId);
      key = raw ? createSecretKey(raw) : null;
      keyObjects.set(r.keyId, key);
    }
    if (key) {
      if (!chainNext(key, prev, r.leaf).equals(mac)) {
        throw new HttpError(
          422,
          'batch_chain_broken',
          `${where} seq ${r.seq}: mac does not continue the chain under key ${r.keyId}`,
        );
      }
      macsChecked++;
    }
    prev = mac;
  }
  const last = records[records.length - 1]!;
  if (batch.chain_head !== last.mac) {
    throw new HttpError(422, 'batch_chain_broken', `${where}: chain_head is not the mac of seq ${last.seq}`);
  }

  return {
    batch,
    checkpoint,
    digest: batchDigest(batch),
    records,
    macsChecked,
    subtrees: { baseFrontier: state ? state.frontier : Buffer.alloc(0), hashes: subtrees },
    newState: {
      stream: batch.stream,
      treeSize: frontier.size,
      frontier: frontier.toBytes(),
      nextBatch: batch.batch + 1,
      lastCheckpoint: batch.checkpoint,
      chainHead: last.mac,
      chainKeyId: last.keyId,
      pinnedVkey: state?.pinnedVkey ?? keys.pinVkey ?? null,
    },
  };
}
