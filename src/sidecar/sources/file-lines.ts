/**
 * Incremental line splitting over byte blocks with absolute file offsets.
 *
 * Bytes of an unfinished line are kept only up to maxLineBytes (+1 for a
 * possible "\r"); past that the line is known to be too long and the rest of
 * it is counted, not stored, so one huge line cannot exhaust memory.
 */
import { isUtf8 } from 'node:buffer';
import type { SourceLine } from './file-source.js';

const NL = 0x0a;
const CR = 0x0d;

export interface SplitterState {
  readonly start: number;
  readonly seen: number;
  readonly pieces: readonly Buffer[];
  readonly stored: number;
  readonly overflow: boolean;
}

export class LineSplitter {
  /** absolute offset where the current unfinished line starts */
  private start = 0;
  /** bytes of the unfinished line seen so far (stored or not) */
  private seen = 0;
  private pieces: Buffer[] = [];
  private stored = 0;
  private overflow = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Forget any unfinished line and continue at `offset` (which must be a line start). */
  reset(offset: number): void {
    this.start = offset;
    this.seen = 0;
    this.pieces = [];
    this.stored = 0;
    this.overflow = false;
  }

  /** offset of the first byte not yet turned into a line */
  get lineStart(): number {
    return this.start;
  }

  /** offset of the next byte to feed */
  get position(): number {
    return this.start + this.seen;
  }

  /** length of the unfinished line fed so far */
  get partialBytes(): number {
    return this.seen;
  }

  /**
   * Splits `block` (whose first byte is at `position`). `emit` is called per
   * complete line; when it returns false, splitting stops right after that
   * line. Returns how many bytes of the block were consumed; bytes after the
   * last newline count as consumed (they are remembered as the unfinished line)
   * unless splitting stopped early.
   */
  feed(block: Buffer, emit: (line: SourceLine) => boolean): number {
    let from = 0;
    while (from < block.length) {
      const nl = block.indexOf(NL, from);
      if (nl === -1) {
        this.keep(block.subarray(from));
        return block.length;
      }
      this.keep(block.subarray(from, nl + 1));
      const line = this.finish();
      from = nl + 1;
      if (!emit(line)) return from;
    }
    return block.length;
  }

  /** State to go back to if the bytes fed next turn out to be stale. */
  snapshot(): SplitterState {
    return { start: this.start, seen: this.seen, pieces: [...this.pieces], stored: this.stored, overflow: this.overflow };
  }

  restore(state: SplitterState): void {
    this.start = state.start;
    this.seen = state.seen;
    this.pieces = [...state.pieces];
    this.stored = state.stored;
    this.overflow = state.overflow;
  }

  /** The unfinished line as an 'unterminated' error (its bytes are given up), or undefined. */
  takeUnterminated(): SourceLine | undefined {
    if (this.seen === 0) return undefined;
    const line: SourceLine = {
      offset: this.start,
      length: this.seen,
      error: { code: 'unterminated', message: `line at offset ${this.start} has no terminating newline` },
    };
    this.reset(this.start + this.seen);
    return line;
  }

  private keep(bytes: Buffer): void {
    this.seen += bytes.length;
    if (this.overflow) return;
    if (this.stored + bytes.length > this.maxLineBytes + 2) {
      // +2: the terminator ("\r\n") does not count against the limit
      this.overflow = true;
      this.pieces = [];
      this.stored = 0;
      return;
    }
    // copy: the caller reuses its read buffer
    this.pieces.push(Buffer.from(bytes));
    this.stored += bytes.length;
  }

  private finish(): SourceLine {
    const offset = this.start;
    const length = this.seen;
    let line: SourceLine;
    if (this.overflow) {
      line = tooLong(offset, length, this.maxLineBytes);
    } else {
      const all = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.stored);
      let end = all.length - 1; // drop "\n"
      if (end > 0 && all[end - 1] === CR) end--;
      const content = all.subarray(0, end);
      if (content.length > this.maxLineBytes) {
        line = tooLong(offset, length, this.maxLineBytes);
      } else if (!isUtf8(content)) {
        line = {
          offset,
          length,
          error: { code: 'invalid_utf8', message: `line at offset ${offset} is not valid UTF-8` },
        };
      } else {
        let text = content.toString('utf8');
        // A byte order mark is only meaningful at the very start of a file.
        if (offset === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        line = { offset, length, text };
      }
    }
    this.reset(offset + length);
    return line;
  }
}

function tooLong(offset: number, length: number, max: number): SourceLine {
  return {
    offset,
    length,
    error: { code: 'line_too_long', message: `line at offset ${offset} is ${length} bytes, over the ${max}-byte limit` },
  };
}
