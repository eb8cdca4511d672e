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
import { PartialLine, decodeLine } from './file-lines.js';
import type { SourceLineErrorCode } from './types.js';

const NL = 0x0a;

export type StreamLineErrorCode = SourceLineErrorCode;

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
  private readonly partial: PartialLine;

  constructor(private readonly maxLineBytes: number) {
    this.partial = new PartialLine(maxLineBytes);
  }

  /** number of the last line emitted */
  get lines(): number {
    return this.lineNo;
  }

  /** bytes of the unfinished line received so far */
  get partialBytes(): number {
    return this.partial.seen;
  }

  /** Splits `chunk`, appending its complete lines to `out`. */
  push(chunk: Buffer, out: StreamLine[]): void {
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf(NL, from);
      if (nl === -1) {
        // A partial line outlives its chunk: copy so a small tail does not pin a 64 KiB read.
        this.partial.keep(chunk.subarray(from), true);
        return;
      }
      if (this.partial.seen === 0) {
        // Common case: the whole line is inside this chunk, no copy needed.
        out.push(this.make(chunk.subarray(from, nl + 1), nl + 1 - from));
      } else {
        this.partial.keep(chunk.subarray(from, nl + 1), false);
        const length = this.partial.seen;
        const bytes = this.partial.bytes();
        this.partial.clear();
        out.push(this.make(bytes, length));
      }
      from = nl + 1;
    }
  }

  /**
   * The stream ended: the unfinished line, if any, as an 'unterminated' error.
   * An unfinished line of only whitespace is dropped like any blank line.
   */
  end(): StreamLine | undefined {
    const length = this.partial.seen;
    if (length === 0) return undefined;
    const blank = this.partial.blank();
    this.partial.clear();
    if (blank) return undefined;
    const line = ++this.lineNo;
    return {
      line,
      length,
      error: { code: 'unterminated', message: `line ${line} has no terminating newline (stream ended after ${length} bytes)` },
    };
  }

  /** `bytes`: a whole line including its "\n", or undefined when known to be too long. */
  private make(bytes: Buffer | undefined, length: number): StreamLine {
    const line = ++this.lineNo;
    const d = decodeLine(bytes, this.maxLineBytes);
    if ('text' in d) return { line, length, text: d.text };
    const message =
      d.code === 'line_too_long'
        ? `line ${line} is ${length} bytes, over the ${this.maxLineBytes}-byte limit`
        : `line ${line} is not valid UTF-8`;
    return { line, length, error: { code: d.code, message } };
  }
}
