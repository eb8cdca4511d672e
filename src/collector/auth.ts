import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './http-error.js';

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Bearer-token check for the admin API. Tokens are compared as SHA-256
 * digests with timingSafeEqual, so neither a token's content nor its length
 * shows in the timing, and every configured token is compared on every call.
 */
export class AdminAuth {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    for (const t of tokens) {
      if (typeof t !== 'string' || t.length === 0) {
        throw new TypeError('admin_tokens must be non-empty strings');
      }
    }
    this.digests = tokens.map(sha256);
  }

  /** Throws ApiError 401 (no usable credentials) or 403 (wrong token). */
  check(header: string | string[] | undefined): void {
    if (typeof header !== 'string') {
      throw new ApiError(401, 'unauthorized', 'missing Authorization: Bearer <token>');
    }
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (!m) throw new ApiError(401, 'unauthorized', 'Authorization must be "Bearer <token>"');
    const given = sha256(m[1]!);
    let ok = false;
    for (const d of this.digests) {
      // Non-short-circuit OR: always compare against every token.
      ok = timingSafeEqual(given, d) || ok;
    }
    if (!ok) throw new ApiError(403, 'forbidden', 'token not accepted');
  }
}
