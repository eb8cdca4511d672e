/**
 * Splits a byte stream (one socket connection) into numbered NDJSON lines.
 *
 * Unlike LineSplitter (file-lines.ts), which positions lines by absolute byte
 * offset so a file can be resumed, a stream cannot be re-read: a line is
 * positioned by its 1-based number on the connection, which is also what the
 * client is told in its ack. Error codes are the file source's so that
 * quarantine reasons and metrics mean the same thing for every source.
 *
 * Bytes of an unfinished line are kept only up to maxLineBytes (+2 for the
 * terminator); past that the line is known to be too long and the rest is
 * counted, not stored, so a peer sending an endless line cannot exhaust memory.
 */
import { isUtf8 } from 'node:buffer';

const NL = 0x0a;
const CR = 0x0d;

export type StreamLineErrorCode = 'line_too_long' | 'invalid_utf8' | 'unterminated';

export interface StreamLine {
  /** 1-based line number on the stream (blank lines count too) */
  line: number;
  /** bytes including the "\n" (none for an unterminated line) */
  length: number;
  /** the line without "\n" and a trailing "\r", decoded; absent when `error` is set */
  text?: string;
  error?: { code: StreamLineErrorCode; message: string };
}

export class NdjsonLines {
  private lineNo = 0;
  private seen = 0;
  private pieces: Buffer[] = [];
  private stored = 0;
  private overflow = false;

  constructor(private readonly maxLineBytes: number) {}

  /** number of the last line emitted */
  get lines(): number {
    return this.lineNo;
  }

  /** bytes of the unfinished line received so far */
  get partialBytes(): number {
    return this.seen;
  }

  /** Splits `chunk`, appending its complete lines to `out`. */
  push(chunk: Buffer, out: StreamLine[]): void {
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(NL, from);
      if (nl === -1) {
        this.keep(chunk.subarray(from), true);
        return;
      }
      if (this.seen === 0) {
        // Common case: the whole line is inside this chunk, no copy needed.
        out.push(this.make(chunk.subarray(from, nl + 1), false));
      } else {
        this.keep(chunk.subarray(from, nl + 1), false);
        out.push(this.finish());
      }
      from = nl + 1;
    }
  }

  /**
   * The stream ended: the unfinished line, if any, as an 'unterminated' error.
   * An unfinished line of only whitespace is dropped like any blank line.
   */
  end(): StreamLine | undefined {
    if (this.seen === 0) return undefined;
    const length = this.seen;
    const blank =
      !this.overflow &&
      this.pieces.every((p) => p.every((b) => b === 0x20 || b === 0x09 || b === CR));
    this.reset();
    if (blank) return undefined;
    const line = ++this.lineNo;
    return {
      line,
      length,
      error: { code: 'unterminated', message: `line ${line} has no terminating newline (stream ended after ${length} bytes)` },
    };
  }

  private reset(): void {
    this.seen = 0;
    this.pieces = [];
    this.stored = 0;
    this.overflow = false;
  }

  private keep(bytes: Buffer, copy: boolean): void {
    this.seen += bytes.length;
    if (this.overflow) return;
    if (this.stored + bytes.length > this.maxLineBytes + 2) {
      this.overflow = true;
      this.pieces = [];
      this.stored = 0;
      return;
    }
    // A partial line outlives its chunk: copy so a small tail does not pin a 64 KiB read.
    this.pieces.push(copy ? Buffer.from(bytes) : bytes);
    this.stored += bytes.length;
  }

  private finish(): StreamLine {
    const length = this.seen;
    let line: StreamLine;
    if (this.overflow) {
      line = this.tooLong(++this.lineNo, length);
    } else {
      const all = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.stored);
      line = this.make(all, true);
    }
    this.reset();
    return line;
  }

  /** `bytes` is a whole line including its "\n". */
  private make(bytes: Buffer, counted: boolean): StreamLine {
    const length = counted ? this.seen : bytes.length;
    const line = ++this.lineNo;
    let end = bytes.length - 1;
    if (end > 0 && bytes[end - 1] === CR) end--;
    if (end > this.maxLineBytes) return this.tooLong(line, length);
    const content = bytes.subarray(0, end);
    if (!isUtf8(content)) {
      return { line, length, error: { code: 'invalid_utf8', message: `line ${line} is not valid UTF-8` } };
    }
    return { line, length, text: content.toString('utf8') };
  }

  private tooLong(line: number, length: number): StreamLine {
    return {
      line,
      length,
      error: { code: 'line_too_long', message: `line ${line} is ${length} bytes, over the ${this.maxLineBytes}-byte limit` },
    };
  }
}
