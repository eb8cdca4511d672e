/**
 * Typed errors with stable codes. The `code` is part of the public contract
 * (logs, HTTP bodies, CLI output, metrics labels) and must never change for
 * an existing condition. Messages must never contain record bodies or raw
 * input: they name places (file:line:col, stream/seq, source/offset) only.
 */
export class SealtrailError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Configuration or rule file problem; message names file:line:col. */
export class ConfigError extends SealtrailError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly col: number | undefined;
  constructor(
    code: string,
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

/** An input line or event that cannot become an audit record. */
export class InputError extends SealtrailError {}

/** RFC 8785 canonicalisation refused a value (NaN, Infinity, cycles, ...). */
export class CanonicalError extends SealtrailError {}

/** A signed note, checkpoint or verifier key is malformed or fails to verify. */
export class NoteError extends SealtrailError {}

/** A Merkle proof is malformed (wrong length, index out of range). */
export class ProofError extends SealtrailError {}

/** A sealed batch was refused; `status` is the HTTP status the collector answers. */
export class BatchError extends SealtrailError {
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

/** Verification of a stream failed at a given place. */
export class VerifyError extends SealtrailError {
  readonly stream: string;
  readonly seq: number | undefined;
  constructor(code: string, stream: string, seq: number | undefined, message: string) {
    super(code, `stream ${stream}${seq === undefined ? '' : ` seq ${seq}`}: ${message}`);
    this.stream = stream;
    this.seq = seq;
  }
}

/** The local buffer refused an operation (guarded deletion, integrity, full). */
export class BufferError extends SealtrailError {}

/**
 * A file or directory sealtrail was told to read or create cannot be used
 * (missing, a directory where a file belongs, permission denied, ...). The
 * message names the path and what to do; it never holds the file's content.
 */
export class FileError extends SealtrailError {
  readonly path: string;
  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}
