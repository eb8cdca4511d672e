/**
 * The limits of the sealed-batch wire format (POST /v1/batches), in one place
 * for both ends.
 *
 * Contract: a record a sidecar accepts can never be refused by its collector
 * for its size. The collector refuses a record whose canonical text is longer
 * than its max_record_bytes (UTF-8) and a body longer than its
 * max_body_bytes; the sidecar quarantines at ingest (after redaction, before
 * it answers or commits) any record whose wire size passes
 * MAX_RECORD_WIRE_BYTES, which is at most every collector's max_record_bytes,
 * and seals batches whose bodies stay within ship.max_batch_bytes. Both body
 * sizes are at least MIN_BODY_BYTES, so one record of any size a sidecar
 * accepts, alone in a batch, fits every collector; a collector's
 * max_body_bytes must be at least its sidecars' ship.max_batch_bytes (the
 * defaults are), which only the operator can see to.
 *
 * Sizes are exact UTF-8 bytes of the body the sidecar sends: the canonical
 * text travels as a JSON string inside the batch, where each '"' and '\'
 * takes one more byte, so a record of many quotes weighs up to twice its
 * canonical bytes.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest record a sidecar accepts: UTF-8 bytes of its canonical text as a JSON string. */
export const MAX_RECORD_WIRE_BYTES = MiB;

/**
 * A collector's max_record_bytes (UTF-8 bytes of a record's canonical text):
 * never below what a sidecar accepts; by default 3 MiB, everything an older
 * sidecar (which held records to 1 Mi characters) could have sealed.
 */
export const MIN_MAX_RECORD_BYTES = MAX_RECORD_WIRE_BYTES;
export const DEFAULT_MAX_RECORD_BYTES = 3 * MiB;

/** Longest signed note (checkpoint) a collector takes, in characters. */
export const MAX_NOTE_CHARS = 16 * KiB;

/** Longest verifier key text a batch may bring along (trust on first use). */
export const MAX_VKEY_CHARS = KiB;

/** Most records in one batch a collector takes by default; the sidecar's seal.max_records is at most this. */
export const DEFAULT_MAX_BATCH_RECORDS = 100_000;

/**
 * Bytes a record takes in a batch body besides its canonical string:
 * `{"seq":<16 digits>,"canonical":…,"mac":"<64 hex>","key_id":"<128>"},`
 * is 251 bytes at most; rounded up.
 */
export const RECORD_ENVELOPE_BYTES = 320;

/**
 * Bytes of a batch body besides its records: members, a 256-character
 * stream id, three numbers, the chain head, two signed notes of at most
 * MAX_NOTE_CHARS (each character up to 3 UTF-8 bytes, '\n' escaped to two)
 * and a verifier key.
 */
export const BATCH_ENVELOPE_BYTES = 128 * KiB;

/**
 * The smallest body limit a collector may be configured with, and the
 * smallest ship.max_batch_bytes: one record of MAX_RECORD_WIRE_BYTES with
 * both envelopes, rounded up.
 */
export const MIN_BODY_BYTES = 2 * MiB;

/**
 * The largest body either end may be configured for: a batch body is one
 * JavaScript string on both ends, and V8 caps strings at about 512 Mi
 * UTF-16 code units.
 */
export const MAX_BODY_BYTES = 256 * MiB;

/** UTF-8 bytes of JSON.stringify(canonical), given the text's own UTF-8 length. */
export function canonicalWireBytes(canonical: string, utf8Bytes: number): number {
  // Canonical text holds no raw control characters and no lone surrogates, so
  // JSON.stringify escapes exactly its '"' and '\' (one byte more each).
  return utf8Bytes + 2 + countChar(canonical, '"') + countChar(canonical, '\\');
}

function countChar(s: string, c: string): number {
  let n = 0;
  for (let i = s.indexOf(c); i !== -1; i = s.indexOf(c, i + 1)) n++;
  return n;
}

/**
 * Why a sidecar must not accept this record for its size, or undefined. The
 * message names limits only, never content.
 */
export function recordSizeProblem(wireBytes: number): string | undefined {
  if (wireBytes <= MAX_RECORD_WIRE_BYTES) return undefined;
  return `the record takes ${wireBytes} bytes in a batch after redaction; the limit is ${MAX_RECORD_WIRE_BYTES}`;
}

/** Whether a collector with this max_record_bytes refuses this canonical text for its size. */
export function recordTooLong(canonical: string, maxRecordBytes: number): boolean {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: most records need no count.
  if (canonical.length * 3 <= maxRecordBytes) return false;
  return canonical.length > maxRecordBytes || Buffer.byteLength(canonical, 'utf8') > maxRecordBytes;
}
