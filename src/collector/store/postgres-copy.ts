/**
 * The records of a batch as COPY ... FROM STDIN text rows (pg-copy-text.ts
 * escapes every field), the fastest way into the partitioned records table.
 */
import { copyBytea, copyInt, copyRow, copyText } from './pg-copy-text.js';
import { FILTER_COLUMNS } from './record-fields.js';
import type { NewRecord, RecordIndexFields } from './types.js';

/** COPY data is written to the connection in pieces of about this many bytes. */
const COPY_PIECE_BYTES = 1024 * 1024;

// COPY column order and how each field of a NewRecord is encoded; the COPY
// statement is generated from this one list so the two cannot drift apart.
// stored_at is left to its default, now(): the transaction's start, the same
// instant the batch row gets, so a batch never straddles partitions.
const RECORD_COPY: ReadonlyArray<[column: string, encode: (r: NewRecord) => string]> = [
  ['seq', (r) => copyInt(r.seq)],
  ['id', (r) => copyText(r.id)],
  ['time', (r) => copyText(r.time)],
  ['time_key', (r) => copyInt(r.timeKey)],
  ['received_at', (r) => copyText(r.receivedAt)],
  ...FILTER_COLUMNS.filter((f) => f.field !== 'stream').map(
    (f): [string, (r: NewRecord) => string] => [f.column, (r) => copyText(r[f.field as keyof RecordIndexFields] as string | null)],
  ),
  ['canonical', (r) => copyText(r.canonical)],
  ['leaf', (r) => copyBytea(r.leaf)],
  ['mac', (r) => copyText(r.mac)],
  ['key_id', (r) => copyText(r.keyId)],
];

export const COPY_RECORDS_SQL = `COPY sealtrail.records (stream, batch, ${RECORD_COPY.map(([c]) => c).join(', ')}) FROM STDIN`;

/**
 * The COPY text rows of a batch's records as UTF-8, in pieces of about
 * COPY_PIECE_BYTES. Each row is encoded into the piece as it is made:
 * concatenating a megabyte of rows into one string first and converting
 * that took about twice the CPU of making the rows (the string must be flattened
 * before it can be encoded). A piece, once yielded, is never written again.
 */
export function* recordCopyPieces(stream: string, batch: number, records: readonly NewRecord[]): Generator<Buffer> {
  // One fields array for the whole batch: this runs for every record stored.
  const fields: string[] = [copyText(stream), copyInt(batch)];
  let piece = Buffer.allocUnsafe(COPY_PIECE_BYTES);
  let used = 0;
  for (const r of records) {
    for (let i = 0; i < RECORD_COPY.length; i++) fields[2 + i] = RECORD_COPY[i]![1](r);
    const row = copyRow(fields);
    // A UTF-16 code unit never takes more than 3 bytes of UTF-8, so with
    // this much room write() cannot cut the row short.
    const room = row.length * 3;
    if (used + room > piece.length) {
      if (used > 0) yield piece.subarray(0, used);
      piece = Buffer.allocUnsafe(Math.max(COPY_PIECE_BYTES, room));
      used = 0;
    }
    used += piece.write(row, used, 'utf8');
  }
  if (used > 0) yield piece.subarray(0, used);
}
