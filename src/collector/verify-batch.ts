import { createHash, createSecretKey, type KeyObject } from 'node:crypto';
import { parseCanonical } from '../core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../core/chain.js';
import { originForStream, parseCheckpoint, type Checkpoint } from '../core/checkpoint.js';
import { BatchError } from '../core/errors.js';
import { Frontier, leafHashOfText } from '../core/merkle.js';
import { openNote, type NoteVerifier } from '../core/note.js';
import type { SealedBatch, WireRecord } from '../core/types.js';
import { KEY_ID, STREAM_ID } from '../core/wire-ids.js';
import { DEFAULT_MAX_BATCH_RECORDS, DEFAULT_MAX_RECORD_BYTES, MAX_NOTE_CHARS, MAX_VKEY_CHARS, recordTooLong } from '../core/wire-limits.js';
import { extractIndexFields } from './store/record-fields.js';
import type { AppendBatchInput, NewRecord, StreamState } from './store/types.js';
import { timeKey } from '../core/time-key.js';

/**
 * Pure verification of a sealed batch against the stored head of its stream.
 * Nothing here does I/O: the route resolves keys and state, this decides.
 * Messages name stream, batch and seq only; record text, MAC values and
 * attacker-chosen strings never appear in them (they end up in logs).
 */

const HEX32 = /^[0-9a-f]{64}$/;

const BATCH_FIELDS = new Set([
  'v',
  'stream',
  'batch',
  'first_seq',
  'last_seq',
  'records',
  'chain_head',
  'prev_checkpoint',
  'checkpoint',
  'vkey',
]);
const RECORD_FIELDS = ['seq', 'canonical', 'mac', 'key_id'];

/** The wire batch plus the optional trust-on-first-use key of batch 0. */
export interface ParsedBatch extends SealedBatch {
  vkey?: string;
}

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
  };
}

export interface VerifyLimits {
  maxRecords?: number;
  /** UTF-8 bytes of one record's canonical text (collector max_record_bytes) */
  maxRecordBytes?: number;
}

// Objects parseBatch produced: the route parses first (it needs stream and
// batch number to pick keys and state) and verifyBatch must not pay twice.
const validated = new WeakSet<object>();

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function malformed(where: string, what: string): BatchError {
  return new BatchError(422, 'batch_malformed', `${where}: ${what}`);
}

/**
 * Checks types, formats, sizes and seq contiguity of an untrusted body and
 * returns a fresh object holding only the known fields (so nothing else a
 * client sent can ride along into the digest or the store).
 */
export function parseBatch(body: unknown, limits: VerifyLimits = {}): ParsedBatch {
  const maxRecords = limits.maxRecords ?? DEFAULT_MAX_BATCH_RECORDS;
  const maxRecordBytes = limits.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!isPlainObject(body)) throw malformed('batch', 'body must be a JSON object');
  for (const k of Object.keys(body)) {
    if (!BATCH_FIELDS.has(k)) {
      // Field names are attacker-chosen: only echo ones that look like ours.
      throw malformed('batch', /^[a-z_]{1,32}$/.test(k) ? `unknown field "${k}"` : 'unknown field');
    }
  }
  if (body.v !== 1) throw malformed('batch', 'field "v" must be 1');
  const stream = body.stream;
  if (typeof stream !== 'string' || !STREAM_ID.test(stream)) {
    throw malformed('batch', 'field "stream" must be 1-256 of [A-Za-z0-9._:@+-], not starting with "-"');
  }
  const batch = body.batch;
  if (!isIndex(batch)) throw malformed(`stream ${stream}`, 'field "batch" must be a non-negative safe integer');
  const where = `stream ${stream} batch ${batch}`;
  const firstSeq = body.first_seq;
  const lastSeq = body.last_seq;
  if (!isIndex(firstSeq)) throw malformed(where, 'field "first_seq" must be a non-negative safe integer');
  if (!isIndex(lastSeq) || lastSeq < firstSeq) {
    throw malformed(where, 'field "last_seq" must be a safe integer >= first_seq');
  }
  const records = body.records;
  if (!Array.isArray(records)) throw malformed(where, 'field "records" must be an array');
  if (records.length === 0) throw malformed(where, 'field "records" must not be empty');
  if (records.length > maxRecords) throw malformed(where, `more than ${maxRecords} records`);
  if (records.length !== lastSeq - firstSeq + 1) {
    throw malformed(where, `has ${records.length} records but first_seq..last_seq spans ${lastSeq - firstSeq + 1}`);
  }
  const out: WireRecord[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r: unknown = records[i];
    const seq = firstSeq + i;
    const at = `${where} seq ${seq}`;
    if (!isPlainObject(r)) throw malformed(at, 'record must be an object');
    const keys = Object.keys(r);
    if (keys.length !== RECORD_FIELDS.length || !RECORD_FIELDS.every((k) => Object.hasOwn(r, k))) {
      throw malformed(at, 'record must have exactly seq, canonical, mac, key_id');
    }
    if (r.seq !== seq) throw malformed(at, 'records must have contiguous seq first_seq..last_seq');
    const canonical = r.canonical;
    if (typeof canonical !== 'string' || canonical.length === 0 || recordTooLong(canonical, maxRecordBytes)) {
      throw malformed(at, `field "canonical" must be a non-empty string of at most ${maxRecordBytes} bytes (collector max_record_bytes)`);
    }
    if (typeof r.mac !== 'string' || !HEX32.test(r.mac)) throw malformed(at, 'field "mac" must be 64 lowercase hex digits');
    if (typeof r.key_id !== 'string' || !KEY_ID.test(r.key_id)) {
      throw malformed(at, 'field "key_id" must match [A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}');
    }
    out[i] = { seq, canonical, mac: r.mac, key_id: r.key_id };
  }
  if (typeof body.chain_head !== 'string' || !HEX32.test(body.chain_head)) {
    throw malformed(where, 'field "chain_head" must be 64 lowercase hex digits');
  }
  const prev = body.prev_checkpoint;
  if (prev !== null && (typeof prev !== 'string' || prev.length === 0 || prev.length > MAX_NOTE_CHARS)) {
    throw malformed(where, `field "prev_checkpoint" must be null or a signed note of at most ${MAX_NOTE_CHARS} characters`);
  }
  const cp = body.checkpoint;
  if (typeof cp !== 'string' || cp.length === 0 || cp.length > MAX_NOTE_CHARS) {
    throw malformed(where, `field "checkpoint" must be a signed note of at most ${MAX_NOTE_CHARS} characters`);
  }
  const parsed: ParsedBatch = {
    v: 1,
    stream,
    batch,
    first_seq: firstSeq,
    last_seq: lastSeq,
    records: out,
    chain_head: body.chain_head,
    prev_checkpoint: prev,
    checkpoint: cp,
  };
  if (body.vkey !== undefined) {
    if (typeof body.vkey !== 'string' || body.vkey.length === 0 || body.vkey.length > MAX_VKEY_CHARS) {
      throw malformed(where, `field "vkey" must be a verifier key of at most ${MAX_VKEY_CHARS} characters`);
    }
    parsed.vkey = body.vkey;
  }
  validated.add(parsed);
  return parsed;
}

/**
 * Hex SHA-256 over the RFC 8785 form of the wire batch without `vkey`: the
 * identity of a batch for idempotent resends. `vkey` is left out because a
 * resend may or may not repeat it and it is not covered by the signature.
 *
 * Streamed instead of canonicalize(batch): the shape is fixed (validated
 * safe integers and strings, members in RFC 8785 order below), RFC 8785
 * serialises strings exactly as JSON.stringify does, and this avoids building
 * a second copy of a multi-megabyte body. A test pins it to canonicalize().
 */
export function batchDigest(batch: SealedBatch): string {
  const h = createHash('sha256');
  h.update(
    `{"batch":${batch.batch},"chain_head":${JSON.stringify(batch.chain_head)},` +
      `"checkpoint":${JSON.stringify(batch.checkpoint)},"first_seq":${batch.first_seq},` +
      `"last_seq":${batch.last_seq},"prev_checkpoint":${JSON.stringify(batch.prev_checkpoint)},"records":[`,
  );
  const records = batch.records;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    h.update(
      `${i === 0 ? '' : ','}{"canonical":${JSON.stringify(r.canonical)},"key_id":${JSON.stringify(r.key_id)},` +
        `"mac":${JSON.stringify(r.mac)},"seq":${r.seq}}`,
    );
  }
  h.update(`],"stream":${JSON.stringify(batch.stream)},"v":${batch.v}}`);
  return h.digest('hex');
}

/**
 * Opens the checkpoint note with the stream's verifiers and checks its origin.
 * Used on its own before raising a fork alert, so that only a batch signed by
 * the stream's key can trigger one.
 */
export function verifyCheckpointSignature(batch: SealedBatch, verifiers: readonly NoteVerifier[]): Checkpoint {
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  if (verifiers.length === 0) {
    throw new BatchError(422, 'batch_bad_signature', `${where}: no verifier key for this stream`);
  }
  let text: string;
  try {
    text = openNote(batch.checkpoint, [...verifiers]).text;
  } catch {
    throw new BatchError(422, 'batch_bad_signature', `${where}: checkpoint is not signed by a key of this stream`);
  }
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(text);
  } catch {
    throw malformed(where, 'checkpoint is not a valid tlog-checkpoint');
  }
  if (cp.origin !== originForStream(batch.stream)) {
    throw new BatchError(422, 'batch_origin_mismatch', `${where}: checkpoint origin is not ${originForStream(batch.stream)}`);
  }
  return cp;
}

/**
 * Verifies `body` as the next batch of its stream. `state` is the stored head
 * (undefined for a stream never seen). Throws BatchError; returns what the
 * store needs, including the head after this batch.
 */
export function verifyBatch(
  body: unknown,
  state: StreamState | undefined,
  keys: BatchKeys,
  limits: VerifyLimits = {},
): VerifiedBatch {
  const batch =
    typeof body === 'object' && body !== null && validated.has(body) ? (body as ParsedBatch) : parseBatch(body, limits);
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  if (state && state.stream !== batch.stream) {
    throw new Error(`${where}: state of stream ${state.stream} passed for another stream`);
  }

  const checkpoint = verifyCheckpointSignature(batch, keys.verifiers);

  const nextBatch = state?.nextBatch ?? 0;
  if (batch.batch < nextBatch) {
    throw new BatchError(409, 'batch_fork', `${where}: batch number already used (next is ${nextBatch})`);
  }
  if (batch.batch > nextBatch) {
    throw new BatchError(422, 'batch_gap', `${where}: expected batch ${nextBatch}`);
  }
  const treeSize = state?.treeSize ?? 0;
  if (batch.first_seq !== treeSize) {
    throw new BatchError(422, 'batch_seq_gap', `${where}: first_seq ${batch.first_seq} but stored tree size is ${treeSize}`);
  }
  if (batch.prev_checkpoint !== (state?.lastCheckpoint ?? null)) {
    throw new BatchError(409, 'batch_fork', `${where}: prev_checkpoint differs from the stored checkpoint of batch ${nextBatch - 1}`);
  }
  if (checkpoint.size !== batch.last_seq + 1) {
    throw new BatchError(
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
      throw new BatchError(422, 'batch_not_canonical', `${at}: record text is not an RFC 8785 canonical JSON object`);
    }
    if (record.stream !== batch.stream || record.seq !== w.seq) {
      throw new BatchError(422, 'batch_record_mismatch', `${at}: record's stream/seq differ from its place in the batch`);
    }
    const time = record.time;
    const tk = typeof time === 'string' ? timeKey(time) : undefined;
    if (tk === undefined || typeof time !== 'string') {
      throw new BatchError(422, 'batch_record_invalid', `${at}: record "time" is not an RFC 3339 timestamp`);
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

  const frontier = state ? Frontier.fromBytes(state.treeSize, state.frontier) : Frontier.empty();
  for (const r of records) frontier.append(r.leaf);
  if (!frontier.root().equals(checkpoint.root)) {
    throw new BatchError(422, 'batch_root_mismatch', `${where}: records do not hash to the checkpoint root from the stored tree`);
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
        throw new BatchError(
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
    throw new BatchError(422, 'batch_chain_broken', `${where}: chain_head is not the mac of seq ${last.seq}`);
  }

  return {
    batch,
    checkpoint,
    digest: batchDigest(batch),
    records,
    macsChecked,
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
