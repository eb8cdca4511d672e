import { createHash } from 'node:crypto';
import type { BatchCode } from './error-codes.js';
import { HttpError } from './errors.js';
import type { SealedBatch, WireRecord } from './types.js';
import { KEY_ID, STREAM_ID } from './wire-ids.js';
import { DEFAULT_MAX_BATCH_RECORDS, DEFAULT_MAX_RECORD_BYTES, MAX_NOTE_CHARS, MAX_VKEY_CHARS, recordTooLong } from './wire-limits.js';
import { isPlainObject } from './plain-object.js';

/**
 * The sealed batch as it travels (POST /v1/batches): its shape and its
 * identity, for whoever reads one. Pure: no I/O besides node:crypto.
 *
 * Contract:
 * - parseBatch refuses, with HttpError 422 `batch_malformed`, anything that
 *   is not exactly the wire shape (unknown members, wrong types, ids outside
 *   core/wire-ids.ts, sizes past core/wire-limits.ts, seqs that are not
 *   first_seq..last_seq in order) and returns a fresh object holding only the
 *   known members, so nothing else a client sent rides along into the digest
 *   or a store. It judges shape only: signatures, the tree and the chain are
 *   the collector's decision (collector/verify-batch.ts).
 * - batchDigest is the identity of a batch for idempotent resends: equal for
 *   the same batch whether or not it repeats its `vkey`.
 * - Messages name stream, batch and seq only; record text, MAC
 *   values and attacker-chosen strings never appear in them (they end up in logs).
 */

/** The wire batch plus the optional trust-on-first-use key of batch 0. */
export interface ParsedBatch extends SealedBatch {
  vkey?: string;
}

/** What a reader of batches allows beyond the wire format's fixed limits. */
export interface BatchLimits {
  /** most records in one batch (default DEFAULT_MAX_BATCH_RECORDS) */
  maxRecords?: number;
  /** UTF-8 bytes of one record's canonical text (collector max_record_bytes) */
  maxRecordBytes?: number;
}

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

// Objects parseBatch produced: the collector's route parses first (it needs
// stream and batch number to pick keys and state) and verification must not
// pay twice.
const parsedBatches = new WeakSet<object>();

/** True for an object parseBatch returned, which need not be parsed again. */
export function isParsedBatch(v: unknown): v is ParsedBatch {
  return typeof v === 'object' && v !== null && parsedBatches.has(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The refusal of a batch whose shape is wrong; `where` names stream, batch and seq as far as known. */
export function malformedBatch(where: string, what: string): HttpError<BatchCode> {
  return new HttpError(422, 'batch_malformed', `${where}: ${what}`);
}

/**
 * Checks types, formats, sizes and seq contiguity of an untrusted body and
 * returns a fresh object holding only the known fields.
 */
export function parseBatch(body: unknown, limits: BatchLimits = {}): ParsedBatch {
  const maxRecords = limits.maxRecords ?? DEFAULT_MAX_BATCH_RECORDS;
  const maxRecordBytes = limits.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (!isPlainObject(body)) throw malformedBatch('batch', 'body must be a JSON object');
  for (const k of Object.keys(body)) {
    if (!BATCH_FIELDS.has(k)) {
      // Field names are attacker-chosen: only echo ones that look like ours.
      throw malformedBatch('batch', /^[a-z_]{1,32}$/.test(k) ? `unknown field "${k}"` : 'unknown field');
    }
  }
  if (body.v !== 1) throw malformedBatch('batch', 'field "v" must be 1');
  const stream = body.stream;
  if (typeof stream !== 'string' || !STREAM_ID.test(stream)) {
    throw malformedBatch('batch', 'field "stream" must be 1-256 of [A-Za-z0-9._:@+-], not starting with "-"');
  }
  const batch = body.batch;
  if (!isIndex(batch)) throw malformedBatch(`stream ${stream}`, 'field "batch" must be a non-negative safe integer');
  const where = `stream ${stream} batch ${batch}`;
  const firstSeq = body.first_seq;
  const lastSeq = body.last_seq;
  if (!isIndex(firstSeq)) throw malformedBatch(where, 'field "first_seq" must be a non-negative safe integer');
  if (!isIndex(lastSeq) || lastSeq < firstSeq) {
    throw malformedBatch(where, 'field "last_seq" must be a safe integer >= first_seq');
  }
  const records = body.records;
  if (!Array.isArray(records)) throw malformedBatch(where, 'field "records" must be an array');
  if (records.length === 0) throw malformedBatch(where, 'field "records" must not be empty');
  if (records.length > maxRecords) throw malformedBatch(where, `more than ${maxRecords} records`);
  if (records.length !== lastSeq - firstSeq + 1) {
    throw malformedBatch(where, `has ${records.length} records but first_seq..last_seq spans ${lastSeq - firstSeq + 1}`);
  }
  const out: WireRecord[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r: unknown = records[i];
    const seq = firstSeq + i;
    const at = `${where} seq ${seq}`;
    if (!isPlainObject(r)) throw malformedBatch(at, 'record must be an object');
    const keys = Object.keys(r);
    if (keys.length !== RECORD_FIELDS.length || !RECORD_FIELDS.every((k) => Object.hasOwn(r, k))) {
      throw malformedBatch(at, 'record must have exactly seq, canonical, mac, key_id');
    }
    if (r.seq !== seq) throw malformedBatch(at, 'records must have contiguous seq first_seq..last_seq');
    const canonical = r.canonical;
    if (typeof canonical !== 'string' || canonical.length === 0 || recordTooLong(canonical, maxRecordBytes)) {
      throw malformedBatch(at, `field "canonical" must be a non-empty string of at most ${maxRecordBytes} bytes (collector max_record_bytes)`);
    }
    if (typeof r.mac !== 'string' || !HEX32.test(r.mac)) throw malformedBatch(at, 'field "mac" must be 64 lowercase hex digits');
    if (typeof r.key_id !== 'string' || !KEY_ID.test(r.key_id)) {
      throw malformedBatch(at, 'field "key_id" must match [A-Za-z0-9][A-Za-z0-9._:@+/-]{0,127}');
    }
    out[i] = { seq, canonical, mac: r.mac, key_id: r.key_id };
  }
  if (typeof body.chain_head !== 'string' || !HEX32.test(body.chain_head)) {
    throw malformedBatch(where, 'field "chain_head" must be 64 lowercase hex digits');
  }
  const prev = body.prev_checkpoint;
  if (prev !== null && (typeof prev !== 'string' || prev.length === 0 || prev.length > MAX_NOTE_CHARS)) {
    throw malformedBatch(where, `field "prev_checkpoint" must be null or a signed note of at most ${MAX_NOTE_CHARS} characters`);
  }
  const cp = body.checkpoint;
  if (typeof cp !== 'string' || cp.length === 0 || cp.length > MAX_NOTE_CHARS) {
    throw malformedBatch(where, `field "checkpoint" must be a signed note of at most ${MAX_NOTE_CHARS} characters`);
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
      throw malformedBatch(where, `field "vkey" must be a verifier key of at most ${MAX_VKEY_CHARS} characters`);
    }
    parsed.vkey = body.vkey;
  }
  parsedBatches.add(parsed);
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
