/**
 * What sources hand to ingest and what they are told back. Kept apart from
 * every source (and from ingest) so that the line splitters, the sources and
 * Ingest depend on these shapes, never on one another.
 */

/** Why a line of bytes has no text; the same codes for files and streams, so quarantine reasons and metrics agree. */
export type SourceLineErrorCode = 'line_too_long' | 'invalid_utf8' | 'unterminated';

/**
 * One input line (or event), placed by `offset`: a byte offset in a file,
 * the client's 1-based line number on a socket, the event's index in an
 * HTTP request. `Code` is the error codes the producer can give; ingest takes
 * any (they become quarantine reasons).
 */
export interface SourceLine<Code extends string = SourceLineErrorCode> {
  offset: number;
  /** bytes including the newline (for an event: its UTF-8 bytes) */
  length: number;
  /** the line without its "\n" (and without a trailing "\r"), decoded UTF-8; absent when `error` or `value` is set */
  text?: string;
  /**
   * An event a source already decoded (an OTLP receiver's span, in
   * sealtrail's input shape): ingest takes it instead of parsing `text`.
   * Never set together with `text`.
   */
  value?: unknown;
  /**
   * Every string in `value` is known to be well-formed UTF-16 (it was
   * decoded from UTF-8, as protobuf strings are), so ingest need not walk
   * it for lone surrogates.
   */
  wellFormed?: true;
  /** where `value` sat in what the source decoded (`resourceSpans[0].scopeSpans[0].spans[3]`): refusals name their field under it */
  path?: string;
  error?: { code: Code; message: string };
}

/**
 * Thrown while a chunk's lines are read (a source may map them lazily, as
 * ingest reaches each) when its input turns out to be refused whole: ingest
 * then commits nothing of the chunk, and the commit path passes the error
 * on as the input's fault, not as a failed commit.
 */
export class ChunkRefused extends Error {}

/** A line as Ingest takes it, from any source. */
export type IngestLine = SourceLine<string>;

/**
 * What became of each line committed: the seq it was stored as, the reason
 * it was quarantined, or blank (not stored, not answered). A socket or HTTP
 * client is told exactly this.
 */
export type LineOutcome =
  /**
   * `records` is present when the line became other than one record (an
   * OTLP/JSON line: one per span), seqs seq … seq+records-1; `duplicate`
   * when its event was stored before (same event_id), as record `seq`
   */
  | { seq: number; records?: number; duplicate?: true }
  | { error: { code: string; message: string; field?: string } }
  /** blank, or of its format but holding no event (an OTLP request without spans) */
  | { blank: true };

export interface FileKey {
  /** `${dev}:${ino}` */
  key: string;
  path: string;
}

/** A file source's read position, committed with the records read up to it. */
export interface StoredPosition {
  key: string;
  path: string;
  offset: number;
  /**
   * hex SHA-256 of the file's first min(offset, 256) bytes at the time of
   * commit; past 256, ":" and the hex SHA-256 of the 256 bytes before `offset`
   * (see positionFingerprint). Opaque to the caller.
   */
  fingerprint: string;
}

/** Backed by SQLite by the caller; synchronous. */
export interface PositionStore {
  get(source: string, key: string): StoredPosition | undefined;
}

export interface LineChunk {
  /** source id */
  source: string;
  file: FileKey;
  /**
   * consecutive, in file order, starting at the file's committed offset.
   * Empty when only the position moves: a copy of a file already read
   * (copytruncate) starts where the original's reading ended, and
   * `startAt: 'end'` skips what a file held at the first start.
   */
  lines: SourceLine[];
  /** what to commit together with these lines (offset = end of last line) */
  position: StoredPosition;
}
