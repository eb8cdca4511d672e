import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiCode } from '../core/error-codes.js';
import { HttpError } from '../core/errors.js';
import type { CollectorToken } from './options.js';
import { RateLimitedError, RateLimiter, type RateLimits } from './rate-limit.js';
import type { RecordFilters } from './store/types.js';

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Who is asking: an admin sees everything, a reader one tenant's records. */
export type Principal =
  | { id: string; role: 'admin'; tenant?: undefined }
  | { id: string; role: 'reader'; tenant: string };

/** What check() reads from a request (a FastifyRequest fits). */
export interface AuthRequest {
  headers: { authorization?: string | string[] | undefined };
  ip: string;
}

interface Credential {
  digest: Buffer;
  principal: Principal;
}

/** Longer than any token we would issue; a longer header is refused without hashing it. */
export const MAX_TOKEN_CHARS = 4096;
export const MIN_TOKEN_CHARS = 16;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

export interface AuthOptions {
  /** plain-text admin tokens (the original form) */
  admin_tokens: readonly string[];
  /** hashed tokens with roles */
  tokens?: readonly CollectorToken[];
  rate_limit?: RateLimits;
}

/**
 * Bearer-token check for the query API (the class keeps its original name;
 * it now knows reader tokens too). Every presented token is hashed with
 * SHA-256 and compared with timingSafeEqual against every configured
 * digest, plain-text admin tokens included (they are hashed at start), so
 * neither content nor length of a token shows in the timing and the config
 * need hold only digests.
 *
 * Order of checks: header shape (401), the client IP's failed-auth budget
 * (429), the token (403), the token's request budget (429).
 */
export class AdminAuth {
  private readonly creds: Credential[] = [];
  private readonly limiters: { admin: RateLimiter; reader: RateLimiter; failures: RateLimiter } | undefined;

  constructor(opts: AuthOptions | readonly string[]) {
    const o: AuthOptions = Array.isArray(opts) ? { admin_tokens: opts as readonly string[] } : (opts as AuthOptions);
    o.admin_tokens.forEach((t, i) => {
      if (typeof t !== 'string' || t.length < MIN_TOKEN_CHARS || t.length > MAX_TOKEN_CHARS) {
        throw new TypeError(`admin_tokens must be strings of ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} characters`);
      }
      this.creds.push({ digest: sha256(t), principal: { id: `admin_tokens[${i}]`, role: 'admin' } });
    });
    const ids = new Set<string>();
    (o.tokens ?? []).forEach((t, i) => {
      const at = `tokens[${i}]`;
      if (typeof t.id !== 'string' || t.id.length === 0) throw new TypeError(`${at}.id must be a non-empty string`);
      if (ids.has(t.id)) throw new TypeError(`${at}.id: duplicate id "${t.id}"`);
      ids.add(t.id);
      if (typeof t.sha256 !== 'string' || !SHA256_HEX.test(t.sha256)) {
        throw new TypeError(`${at}.sha256 must be 64 hex digits (the SHA-256 of the token)`);
      }
      let principal: Principal;
      if (t.role === 'admin') {
        if (t.tenant !== undefined) throw new TypeError(`${at}: an admin token sees every tenant; remove "tenant"`);
        principal = { id: t.id, role: 'admin' };
      } else if (t.role === 'reader') {
        // A reader without a tenant would be an admin by another name.
        if (typeof t.tenant !== 'string' || t.tenant.length === 0) throw new TypeError(`${at}: a reader token needs "tenant"`);
        principal = { id: t.id, role: 'reader', tenant: t.tenant };
      } else {
        throw new TypeError(`${at}.role must be admin or reader`);
      }
      const digest = Buffer.from(t.sha256, 'hex');
      if (this.creds.some((c) => c.digest.equals(digest))) throw new TypeError(`${at}: the same token is configured twice`);
      this.creds.push({ digest, principal });
    });
    const rl = o.rate_limit;
    this.limiters = rl
      ? { admin: new RateLimiter(rl.admin), reader: new RateLimiter(rl.reader), failures: new RateLimiter(rl.failures) }
      : undefined;
  }

  /** How many credentials are configured (0: the query API refuses everything). */
  get size(): number {
    return this.creds.length;
  }

  /**
   * The principal behind the request's bearer token. Throws HttpError 401
   * (no usable credentials), 403 (token not accepted) or RateLimitedError.
   */
  check(req: AuthRequest): Principal {
    try {
      const given = this.presented(req.headers.authorization);
      // Refused before the token is looked at: an address that keeps
      // guessing learns nothing more until its budget refills.
      const wait = this.limiters?.failures.wait(req.ip) ?? 0;
      if (wait > 0) throw new RateLimitedError('too many failed authentications from this address', wait);
      const principal = this.match(given);
      const limiter = this.limiters?.[principal.role];
      const retry = limiter?.take(principal.id) ?? 0;
      if (retry > 0) throw new RateLimitedError('request rate limit of this token exceeded', retry);
      return principal;
    } catch (err) {
      if (err instanceof HttpError && (err.status === 401 || err.status === 403)) this.limiters?.failures.take(req.ip);
      throw err;
    }
  }

  /** check(), then 403 unless the token is an admin's. For routes that span tenants. */
  requireAdmin(req: AuthRequest): Principal {
    const p = this.check(req);
    if (p.role !== 'admin') {
      throw new HttpError(403, 'admin_required', 'this route spans tenants and needs an admin token');
    }
    return p;
  }

  private presented(header: string | string[] | undefined): string {
    if (typeof header !== 'string') {
      throw new HttpError(401, 'unauthorized', 'missing Authorization: Bearer <token>');
    }
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (!m) throw new HttpError(401, 'unauthorized', 'Authorization must be "Bearer <token>"');
    return m[1]!;
  }

  private match(token: string): Principal {
    // No configured token is shorter or longer than these bounds, so the
    // length alone decides without leaking anything about a real token, and
    // a megabyte header is not hashed.
    if (token.length < MIN_TOKEN_CHARS || token.length > MAX_TOKEN_CHARS) throw forbidden();
    const given = sha256(token);
    let found: Principal | undefined;
    for (const c of this.creds) {
      // No early exit: every credential is compared on every call.
      if (timingSafeEqual(given, c.digest)) found ??= c.principal;
    }
    if (!found) throw forbidden();
    return found;
  }
}

function forbidden(): HttpError<ApiCode> {
  return new HttpError(403, 'forbidden', 'token not accepted');
}

/**
 * Restricts `filters` to what `principal` may see: a reader's query always
 * carries its tenant, whatever the request asked. Asking for another tenant
 * is refused (403 tenant_forbidden) rather than answered empty, so a client
 * bug shows up as an error and not as "no records".
 */
export function scopeFilters(principal: Principal, filters: RecordFilters): void {
  if (principal.role === 'admin') return;
  if (filters.tenant !== undefined && filters.tenant !== principal.tenant) {
    throw new HttpError(403, 'tenant_forbidden', 'this token may only query its own tenant');
  }
  filters.tenant = principal.tenant;
}
