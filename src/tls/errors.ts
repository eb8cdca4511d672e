import type { TlsCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';

/**
 * A TLS file that was read but cannot be used. `path` is the file, `field`
 * the config key that named it (`collector.tls.key_file`); the message says
 * both and what to do, and never holds the file's bytes.
 */
export class TlsError extends SealtrailError<TlsCode> {
  readonly path: string | undefined;
  readonly field: string;
  constructor(code: TlsCode, field: string, path: string | undefined, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.field = field;
    this.path = path;
  }
}
