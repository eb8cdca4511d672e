/**
 * Typed errors with stable codes. The `code` is part of the public contract
 * (logs, HTTP bodies, CLI output, metrics labels) and must never change for
 * an existing condition. Messages must never contain record bodies or raw
 * input: they name places (file:line:col, stream/seq, source/offset) only.
 *
 * Every class is declared with the union of the codes it may carry
 * (error-codes.ts), so `new ConfigError('config_shema', ...)` does not
 * compile; a plain SealtrailError takes any code of that file. `name` is the
 * class's own (new.target), whatever the subclass.
 */
import type { BufferCode, CanonicalCode, ConfigCode, ErrorCode, FileCode, HttpCode, InputCode, NoteCode, ProofCode } from './error-codes.js';

export class SealtrailError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Configuration or rule file problem; message names file:line:col. */
export class ConfigError extends SealtrailError<ConfigCode> {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly col: number | undefined;
  constructor(
    code: ConfigCode,
    message: string,
    where: { file?: string; line?: number; col?: number } = {},
    options?: { cause?: unknown },
  ) {
    const place = formatPlace(where);
    super(code, place ? `${place}: ${message}` : message, options);
    this.file = where.file;
    this.line = where.line;
    this.col = where.col;
  }
}

export function formatPlace(where: { file?: string; line?: number; col?: number }): string {
  if (!where.file) return '';
  if (where.line === undefined) return where.file;
  return `${where.file}:${where.line}:${where.col ?? 1}`;
}

/**
 * An input line or event that cannot become an audit record. `field` is the
 * path of the member at fault (`actor.id`, `resourceSpans[0].scopeSpans[1]
 * .spans[2].startTimeUnixNano`), never a value: it goes into quarantine rows
 * and ingest_rejected records, which must not carry input bytes.
 */
export class InputError extends SealtrailError<InputCode> {
  readonly field: string | undefined;
  constructor(code: InputCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.field = field;
  }
}

/** RFC 8785 canonicalisation refused a value (NaN, Infinity, cycles, ...). */
export class CanonicalError extends SealtrailError<CanonicalCode> {}

/** A signed note, checkpoint or verifier key is malformed or fails to verify. */
export class NoteError extends SealtrailError<NoteCode> {}

/** A Merkle proof is malformed (wrong length, index out of range). */
export class ProofError extends SealtrailError<ProofCode> {}

/**
 * A request refused with an HTTP status, by either listener: a sealed batch
 * (parseBatch, verifyBatch), any other collector request (rendered as
 * {"error":{"code","message"}}), or the sidecar's POST /v1/events. `line`
 * (1-based, of the decoded body) and `index` (0-based event) place a fault
 * inside a request body when it has one; the events endpoint puts them in
 * its answer. RateLimitedError (collector/rate-limit.ts) adds Retry-After.
 */
export class HttpError<C extends HttpCode = HttpCode> extends SealtrailError<C> {
  readonly status: number;
  /** 1-based line of the request body (after gzip decoding) */
  readonly line: number | undefined;
  /** 0-based index of the event in the request */
  readonly index: number | undefined;
  constructor(status: number, code: C, message: string, where: { line?: number; index?: number } = {}) {
    super(code, message);
    this.status = status;
    this.line = where.line;
    this.index = where.index;
  }
}

/** The local buffer refused an operation (guarded deletion, integrity, full). */
export class BufferError extends SealtrailError<BufferCode> {}

/**
 * A file or directory sealtrail was told to read or create cannot be used
 * (missing, a directory where a file belongs, permission denied, ...). The
 * message names the path and what to do; it never holds the file's content.
 */
export class FileError extends SealtrailError<FileCode> {
  readonly path: string;
  constructor(code: FileCode, path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}
