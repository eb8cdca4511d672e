/**
 * Rows in the text format of Postgres COPY FROM STDIN: fields separated by a
 * tab, rows ended by a newline, NULL as \N, and within a field a backslash,
 * tab, newline and carriage return escaped (PostgreSQL docs, COPY, "Text
 * Format"). Pure: the store streams what this returns.
 *
 * Values reach here verified, but their strings are still attacker-chosen
 * (index columns come from record fields), so every string field goes
 * through copyText; only integers and hex we produced ourselves skip it.
 * A NUL cannot be encoded at all; index values holding one are already
 * NULL (core/record-index.ts indexable), and canonical text has none raw,
 * since RFC 8785 escapes every control character. copyText refuses one
 * anyway rather than let the server cut the field short.
 */
import { SealtrailError } from '../../core/errors.js';

const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const ESCAPES = /[\\\t\n\r]/g;
const ESCAPED: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value the COPY text format cannot carry; code copy_unencodable. */
export class CopyEncodeError extends SealtrailError<'copy_unencodable'> {
  constructor(message: string) {
    super('copy_unencodable', message);
  }
}

/** A text field; null becomes \N. */
export function copyText(v: string | null): string {
  if (v === null) return '\\N';
  if (!NEEDS_ESCAPE.test(v)) return v;
  if (v.includes('\0')) throw new CopyEncodeError('COPY text cannot carry a NUL character');
  return v.replace(ESCAPES, (c) => ESCAPED[c]!);
}

/**
 * A bigint field (seq, batch, time key). Time keys of far years lie beyond
 * 2^53 (time-key.ts: rounded, still ordered) and before 1970 below zero, so
 * any integral double inside int8 is accepted; below 1e21 String() writes
 * such a number as plain digits, never with an exponent.
 */
export function copyInt(v: number): string {
  if (!Number.isInteger(v) || Math.abs(v) >= 2 ** 63) throw new CopyEncodeError('COPY bigint field is not an integer inside int8');
  return String(v);
}

/** A bytea field in hex input form; the backslash itself is escaped for the text format. */
export function copyBytea(v: Uint8Array): string {
  return '\\\\x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

/** One row: the fields as encoded above, joined. */
export function copyRow(fields: readonly string[]): string {
  return fields.join('\t') + '\n';
}
