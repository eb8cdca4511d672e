/**
 * The records of a batch as COPY ... FROM STDIN text rows (pg-copy-text.ts
 * escapes every field), the fastest way into the partitioned records table.
 */
import { copyBytea, copyInt, copyRow, copyText } from './pg-copy-text.js';
import { FILTER_COLUMNS } from './record-fields.js';
import type { NewRecord, RecordIndexFields } from './types.js';

/** COPY data is written to the connection in pieces of about this many characters. */
const COPY_PIECE_CHARS = 1024 * 1024;

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

/** The COPY text rows of a batch's records, in pieces of about COPY_PIECE_CHARS. */
export function* recordCopyPieces(stream: string, batch: number, records: readonly NewRecord[]): Generator<string> {
  // One fields array for the whole batch: this runs for every record stored.
  const fields: string[] = [copyText(stream), copyInt(batch)];
  let piece = '';
  for (const r of records) {
    for (let i = 0; i < RECORD_COPY.length; i++) fields[2 + i] = RECORD_COPY[i]![1](r);
    piece += copyRow(fields);
    if (piece.length >= COPY_PIECE_CHARS) {
      yield piece;
      piece = '';
    }
  }
  if (piece !== '') yield piece;
}
