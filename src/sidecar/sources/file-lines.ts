/**
 * Incremental line splitting over byte blocks with absolute file offsets.
 *
 * Bytes of an unfinished line are kept only up to maxLineBytes (+2 for the
 * terminator); past that the line is known to be too long and the rest of
 * it is counted, not stored, so one huge line cannot exhaust memory.
 */
import { isUtf8 } from 'node:buffer';
import type { SourceLine } from './types.js';

const NL = 0x0a;
const CR = 0x0d;

/**
 * Bytes of an unfinished line, shared by LineSplitter and NdjsonLines
 * (ndjson-lines.ts). They are kept up to maxLineBytes + 2 (the terminator
 * "\r\n" does not count against the limit); past that the line is known to
 * be too long and the rest of it is only counted.
 */
export class PartialLine {
  /** bytes of the unfinished line seen so far (stored or not) */
  seen = 0;
  private pieces: Buffer[] = [];
  private stored = 0;
  private overflow = false;

  constructor(private readonly maxLineBytes: number) {}

  /** `copy`: the bytes outlive the caller's buffer (a reused read buffer, a tail that must not pin a whole chunk) */
  keep(bytes: Buffer, copy: boolean): void {
    this.seen += bytes.length;
    if (this.overflow) return;
    if (this.stored + bytes.length > this.maxLineBytes + 2) {
      this.overflow = true;
      this.pieces = [];
      this.stored = 0;
      return;
    }
    this.pieces.push(copy ? Buffer.from(bytes) : bytes);
    this.stored += bytes.length;
  }

  /** the bytes kept, or undefined when the line is already known to be too long */
  bytes(): Buffer | undefined {
    if (this.overflow) return undefined;
    return this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.stored);
  }

  /** whether the bytes kept are only spaces, tabs and "\r" (false once too long) */
  blank(): boolean {
    return !this.overflow && this.pieces.every((p) => p.every((b) => b === 0x20 || b === 0x09 || b === CR));
  }

  clear(): void {
    this.seen = 0;
    this.pieces = [];
    this.stored = 0;
    this.overflow = false;
  }

  clone(): PartialLine {
    const c = new PartialLine(this.maxLineBytes);
    c.seen = this.seen;
    c.pieces = [...this.pieces];
    c.stored = this.stored;
    c.overflow = this.overflow;
    return c;
  }
}

export type DecodedLine = { text: string } | { code: 'line_too_long' | 'invalid_utf8' };

/**
 * A complete line: `bytes` including its "\n" (undefined when PartialLine
 * found it too long). Drops "\n" and a trailing "\r", checks the limit and
 * UTF-8.
 */
export function decodeLine(bytes: Buffer | undefined, maxLineBytes: number): DecodedLine {
  if (bytes === undefined) return { code: 'line_too_long' };
  let end = bytes.length - 1; // drop "\n"
  if (end > 0 && bytes[end - 1] === CR) end--;
  if (end > maxLineBytes) return { code: 'line_too_long' };
  const content = bytes.subarray(0, end);
  if (!isUtf8(content)) return { code: 'invalid_utf8' };
  return { text: content.toString('utf8') };
}

export interface SplitterState {
  readonly start: number;
  readonly partial: PartialLine;
}

export class LineSplitter {
  /** absolute offset where the current unfinished line starts */
  private start = 0;
  private partial: PartialLine;

  constructor(private readonly maxLineBytes: number) {
    this.partial = new PartialLine(maxLineBytes);
  }

  /** Forget any unfinished line and continue at `offset` (which must be a line start). */
  reset(offset: number): void {
    this.start = offset;
    this.partial.clear();
  }

  /** offset of the first byte not yet turned into a line */
  get lineStart(): number {
    return this.start;
  }

  /** offset of the next byte to feed */
  get position(): number {
    return this.start + this.partial.seen;
  }

  /** length of the unfinished line fed so far */
  get partialBytes(): number {
    return this.partial.seen;
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
      // copy: the caller reuses its read buffer
      if (nl === -1) {
        this.partial.keep(block.subarray(from), true);
        return block.length;
      }
      this.partial.keep(block.subarray(from, nl + 1), true);
      const line = this.finish();
      from = nl + 1;
      if (!emit(line)) return from;
    }
    return block.length;
  }

  /** State to go back to if the bytes fed next turn out to be stale. */
  snapshot(): SplitterState {
    return { start: this.start, partial: this.partial.clone() };
  }

  restore(state: SplitterState): void {
    this.start = state.start;
    this.partial = state.partial.clone();
  }

  /** The unfinished line as an 'unterminated' error (its bytes are given up), or undefined. */
  takeUnterminated(): SourceLine | undefined {
    const length = this.partial.seen;
    if (length === 0) return undefined;
    const line: SourceLine = {
      offset: this.start,
      length,
      error: { code: 'unterminated', message: `line at offset ${this.start} has no terminating newline` },
    };
    this.reset(this.start + length);
    return line;
  }

  private finish(): SourceLine {
    const offset = this.start;
    const length = this.partial.seen;
    const d = decodeLine(this.partial.bytes(), this.maxLineBytes);
    this.reset(offset + length);
    if ('code' in d) {
      const message =
        d.code === 'line_too_long'
          ? `line at offset ${offset} is ${length} bytes, over the ${this.maxLineBytes}-byte limit`
          : `line at offset ${offset} is not valid UTF-8`;
      return { offset, length, error: { code: d.code, message } };
    }
    // A byte order mark is only meaningful at the very start of a file.
    const text = offset === 0 && d.text.charCodeAt(0) === 0xfeff ? d.text.slice(1) : d.text;
    return { offset, length, text };
  }
}
