/**
 * The protobufjs reader the receiver decodes bodies with: protobufjs's own
 * BufferReader (all wire parsing stays protobufjs's), with one method
 * replaced: how a string field's bytes become a JS string.
 *
 * protobufjs builds a string shorter than 64 bytes by concatenating
 * String.fromCharCode of 8 bytes at a time, which V8 keeps as a rope of
 * pieces, and decodes longer ones with a fatal TextDecoder over a fresh
 * subarray. Every later use of a rope (as a property key, by redaction's
 * RE2 calls, hashing, the canonical text) flattens it again or walks it, so
 * a span decoded from protobuf cost ingest about a tenth more than the same
 * span parsed from JSON. Node's Buffer makes the same string flat in one
 * native call.
 *
 * Strictness is protobufjs's: invalid UTF-8 (overlong forms, encoded
 * surrogates, truncated sequences) is refused, a byte order mark is kept.
 * The errors carry the texts decode.ts reads ("index out of range",
 * "invalid UTF-8").
 */
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';

export class FlatStringReader extends protobuf.BufferReader {
  override stringVerify(): string {
    const length = this.size();
    const start = this.pos;
    const end = start + length;
    if (end > this.len) throw new RangeError(`index out of range: ${start} + ${length} > ${this.len}`);
    this.pos = end;
    const buf = this.buf as Buffer;
    for (let i = start; i < end; i++) {
      if (buf[i]! >= 0x80) {
        if (!isUtf8(buf.subarray(start, end))) throw new Error('invalid UTF-8 in a string field');
        return buf.toString('utf8', start, end);
      }
    }
    // ASCII: latin1 reads each byte as its own character, as UTF-8 would
    return buf.toString('latin1', start, end);
  }
}

/** A reader over the body's bytes, without copying them. */
export function readerOf(body: Uint8Array): FlatStringReader {
  return new FlatStringReader(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}
